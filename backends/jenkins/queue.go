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

// Build is GET /job/…/N/api/json, for freestyle and Pipeline builds alike.
type Build struct {
	Class    string `json:"_class"`
	Number   int    `json:"number"`
	URL      string `json:"url"`
	Building bool   `json:"building"`
	// Result is SUCCESS, UNSTABLE, FAILURE, NOT_BUILT or ABORTED; empty
	// while the build runs.
	Result            string `json:"result"`
	Duration          int64  `json:"duration"`
	EstimatedDuration int64  `json:"estimatedDuration"`
	Timestamp         int64  `json:"timestamp"`
	FullDisplayName   string `json:"fullDisplayName"`
	QueueID           int64  `json:"queueId"`
	// ChangeSet (freestyle builds) or ChangeSets (Pipeline builds) list the
	// commits the build was the first to include.
	ChangeSet  *ChangeSet  `json:"changeSet"`
	ChangeSets []ChangeSet `json:"changeSets"`
	// Culprits are who Jenkins thinks may have broken the build: everyone
	// with a change since the last success.
	Culprits []Culprit `json:"culprits"`
}

// ChangeSet is the commits of one checkout in a build.
type ChangeSet struct {
	Kind  string       `json:"kind"`
	Items []ChangeItem `json:"items"`
}

// ChangeItem is one commit.
type ChangeItem struct {
	CommitID    string `json:"commitId"`
	AuthorEmail string `json:"authorEmail"`
	Author      struct {
		FullName string `json:"fullName"`
	} `json:"author"`
	Msg string `json:"msg"`
}

// Culprit is a Jenkins user.
type Culprit struct {
	FullName    string `json:"fullName"`
	AbsoluteURL string `json:"absoluteUrl"`
}

// Changes returns the commits of all the build's checkouts.
func (b Build) Changes() []ChangeItem {
	var out []ChangeItem
	if b.ChangeSet != nil {
		out = append(out, b.ChangeSet.Items...)
	}
	for _, cs := range b.ChangeSets {
		out = append(out, cs.Items...)
	}
	return out
}

// Build reads build number of job.
func (c *Client) Build(ctx context.Context, job string, number int) (Build, error) {
	jp, err := JobPath(job)
	if err != nil {
		return Build{}, err
	}
	if number <= 0 {
		return Build{}, fmt.Errorf("jenkins: bad build number %d", number)
	}
	var b Build
	if err := c.getJSON(ctx, fmt.Sprintf("%s%d/api/json", jp, number), &b); err != nil {
		return Build{}, err
	}
	return b, nil
}
