package jenkins

import (
	"context"
	"fmt"
	"strings"
)

// QueueItem is GET /queue/item/N/api/json. Its class says where it is:
// WaitingItem (quiet period), BlockedItem, BuildableItem (waiting for an
// executor), LeftItem (started or cancelled).
type QueueItem struct {
	Class     string `json:"_class"`
	ID        int64  `json:"id"`
	Blocked   bool   `json:"blocked"`
	Buildable bool   `json:"buildable"`
	Stuck     bool   `json:"stuck"`
	// Why is Jenkins' explanation while the item waits; empty once left.
	Why string `json:"why"`
	// Cancelled is set on a LeftItem that never became a build.
	Cancelled bool `json:"cancelled"`
	// Executable is the build, once a LeftItem has one. A LeftItem may
	// briefly have neither Executable nor Cancelled.
	Executable *Executable `json:"executable"`
	// URL is relative to the Jenkins root: "queue/item/42/".
	URL string `json:"url"`
}

// Executable names the build a queue item became.
type Executable struct {
	Number int    `json:"number"`
	URL    string `json:"url"`
}

// Kind is the class name without its package: "WaitingItem", "LeftItem", …
func (q QueueItem) Kind() string {
	if i := strings.LastIndexAny(q.Class, "$."); i >= 0 {
		return q.Class[i+1:]
	}
	return q.Class
}

// Left reports whether the item has left the queue.
func (q QueueItem) Left() bool { return q.Kind() == "LeftItem" || q.Cancelled || q.Executable != nil }

// QueueItem reads queue item id. Jenkins forgets items five minutes after
// they leave the queue; then this returns an *HTTPError with status 404.
func (c *Client) QueueItem(ctx context.Context, id int64) (QueueItem, error) {
	if id <= 0 {
		return QueueItem{}, fmt.Errorf("jenkins: bad queue item id %d", id)
	}
	var item QueueItem
	if err := c.getJSON(ctx, fmt.Sprintf("queue/item/%d/api/json", id), &item); err != nil {
		return QueueItem{}, err
	}
	return item, nil
}
