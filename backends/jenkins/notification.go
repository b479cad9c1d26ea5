package jenkins

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Notification is what the Notification plugin POSTs about a build (format
// JSON, protocol HTTP): one message per phase. The final result arrives
// with phase FINALIZED.
type Notification struct {
	Name string `json:"name"`
	// URL is the job's URL relative to the Jenkins root: "job/a/job/b/".
	URL   string            `json:"url"`
	Build NotificationBuild `json:"build"`
}

// NotificationBuild is the build part of a Notification.
type NotificationBuild struct {
	// FullURL is the build's absolute URL, when Jenkins knows its root URL.
	FullURL string `json:"full_url"`
	Number  int    `json:"number"`
	// QueueID is the queue item the build came from; queue IDs only grow.
	QueueID int64 `json:"queue_id"`
	// Phase is QUEUED, STARTED, COMPLETED or FINALIZED.
	Phase string `json:"phase"`
	// Status is the result (SUCCESS, FAILURE, …), absent before COMPLETED.
	Status     string            `json:"status"`
	URL        string            `json:"url"`
	SCM        NotificationSCM   `json:"scm"`
	Parameters map[string]string `json:"-"`
}

// NotificationSCM is what the plugin knows of the checkout. Culprits are
// Jenkins user IDs, not e-mail addresses, and empty for Pipeline jobs.
type NotificationSCM struct {
	URL      string   `json:"url"`
	Branch   string   `json:"branch"`
	Commit   string   `json:"commit"`
	Changes  []string `json:"changes"`
	Culprits []string `json:"culprits"`
}

// UnmarshalJSON reads the build, turning parameter values of any JSON type
// into strings (boolean and number parameters are not strings on the wire).
func (b *NotificationBuild) UnmarshalJSON(data []byte) error {
	type plain NotificationBuild
	var aux struct {
		plain
		Parameters map[string]any `json:"parameters"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*b = NotificationBuild(aux.plain)
	b.Parameters = make(map[string]string, len(aux.Parameters))
	for k, v := range aux.Parameters {
		switch v := v.(type) {
		case string:
			b.Parameters[k] = v
		case nil:
		default:
			b.Parameters[k] = fmt.Sprint(v)
		}
	}
	return nil
}

var phases = map[string]bool{"QUEUED": true, "STARTED": true, "COMPLETED": true, "FINALIZED": true}

// ParseNotification reads and checks a Notification plugin message.
func ParseNotification(data []byte) (Notification, error) {
	var n Notification
	if err := json.Unmarshal(data, &n); err != nil {
		return Notification{}, fmt.Errorf("jenkins: notification: %w", err)
	}
	switch {
	case n.Name == "" || n.URL == "":
		return Notification{}, errors.New("jenkins: notification: no job name or URL")
	case n.Build.Number <= 0:
		return Notification{}, errors.New("jenkins: notification: no build number")
	case !phases[n.Build.Phase]:
		return Notification{}, fmt.Errorf("jenkins: notification: unknown phase %q", n.Build.Phase)
	}
	if _, err := n.JobPath(); err != nil {
		return Notification{}, err
	}
	return n, nil
}

// JobPath is the job's full name, folders separated by "/", from its URL:
// "job/team/job/api-build/" is "team/api-build".
func (n Notification) JobPath() (string, error) {
	rest := strings.Trim(n.URL, "/")
	var names []string
	for rest != "" {
		seg, tail, _ := strings.Cut(rest, "/")
		if seg != "job" {
			return "", fmt.Errorf("jenkins: notification: job URL %q is not job/…/", n.URL)
		}
		name, tail2, _ := strings.Cut(tail, "/")
		unescaped, err := url.PathUnescape(name)
		if err != nil || unescaped == "" {
			return "", fmt.Errorf("jenkins: notification: job URL %q has a bad name", n.URL)
		}
		names = append(names, unescaped)
		rest = tail2
	}
	if len(names) == 0 {
		return "", fmt.Errorf("jenkins: notification: job URL %q names no job", n.URL)
	}
	path := strings.Join(names, "/")
	if _, err := JobPath(path); err != nil {
		return "", err
	}
	return path, nil
}

// Final reports whether the message carries the build's final result.
func (n Notification) Final() bool { return n.Build.Phase == "FINALIZED" && n.Build.Status != "" }

// Key identifies the message, so a re-delivery can be recognised.
func (n Notification) Key() string {
	sum := sha256.Sum256([]byte(n.URL + "\x00" + strconv.Itoa(n.Build.Number) + "\x00" + n.Build.Phase))
	return "jenkins:" + hex.EncodeToString(sum[:16])
}
