package queue

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/seed-5eb4e92e/deploybot/commands"
)

// Job is one unit of work as it travels through the queue. Its JSON form is
// what the stream holds, so fields are only ever added.
type Job struct {
	// ID is a ULID: sortable by creation time, safe in keys and URLs.
	ID      string           `json:"id"`
	Request commands.Request `json:"request"`
	// Text is the command as the user typed it, for the message thread.
	Text string `json:"text,omitempty"`
	// User is the Slack user ID of whoever asked; the worker checks their
	// permission again before it runs the job.
	User    string `json:"user"`
	Channel string `json:"channel"`
	// ResponseURL is the Slack response_url of the request, for ephemeral
	// follow-ups; it expires after 30 minutes.
	ResponseURL string `json:"response_url,omitempty"`
	// RetryOf is the ID of the job this one re-runs.
	RetryOf string `json:"retry_of,omitempty"`
	// Source is the deploy a Promote or Roll back button was on: its
	// artifact is promoted, or what ran before it put back.
	Source string `json:"source,omitempty"`
	// WaitForLock queues the job behind a lock on its environment instead
	// of refusing it.
	WaitForLock bool `json:"wait_for_lock,omitempty"`
	// ApprovedBy is who approved a job to a protected environment that
	// needs a second person.
	ApprovedBy string `json:"approved_by,omitempty"`
	// Attempt counts runs after retryable failures; the first run is 1.
	Attempt int `json:"attempt"`
	// Requeued is set when the job went back on the queue unfinished
	// (postponed behind a lock, released at shutdown): its next pickup is
	// not its first, and its wait is not counted as queue wait.
	Requeued  bool      `json:"requeued,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Payload is an event as a backend sent it (a webhook body), for jobs
	// that process one.
	Payload json.RawMessage `json:"payload,omitempty"`
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a new ULID for a job created at now: 48 bits of
// milliseconds and 80 random bits in Crockford base32.
func NewID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("queue: crypto/rand failed: " + err.Error()) // cannot happen on supported platforms
	}
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	out := make([]byte, 26)
	for i := range out {
		off := uint(5 * (25 - i))
		var v uint64
		switch {
		case off >= 64:
			v = hi >> (off - 64)
		case off > 59:
			v = lo>>off | hi<<(64-off)
		default:
			v = lo >> off
		}
		out[i] = crockford[v&31]
	}
	return string(out)
}

// ValidID reports whether s has the form of a job ID. IDs arrive in button
// values and end up in Redis keys, so they are checked first.
func ValidID(s string) bool {
	if len(s) != 26 || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') || c == 'I' || c == 'L' || c == 'O' || c == 'U' {
			return false
		}
	}
	return true
}
