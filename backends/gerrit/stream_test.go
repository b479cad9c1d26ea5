package gerrit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/backends/gerrit/gerrittest"
)

// failAfter bounds how long a test waits for something that should happen
// at once; it is a deadline for a broken test, not a speed requirement.
const failAfter = 20 * time.Second

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func line(t *testing.T, kind string, v gerrittest.EventValues) []byte {
	t.Helper()
	raw, err := gerrittest.StreamEvent(kind, v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// startStream runs a Stream against srv and returns the channel its
// handler feeds.
func startStream(t *testing.T, cfg gerrit.StreamConfig, log *slog.Logger) (*gerrit.Stream, <-chan gerrit.Event) {
	t.Helper()
	events := make(chan gerrit.Event, 100)
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	st, err := gerrit.NewStream(cfg, func(e gerrit.Event) { events <- e }, log)
	if err != nil {
		t.Fatal(err)
	}
	go st.Start()
	t.Cleanup(st.Stop)
	return st, events
}

func next(t *testing.T, events <-chan gerrit.Event) gerrit.Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(failAfter):
		t.Fatal("no event")
		return gerrit.Event{}
	}
}

func TestStreamReadsAndReconnects(t *testing.T) {
	t.Parallel()
	key := newSigner(t)
	srv, err := gerrittest.StartSSH(gerrittest.SSHOptions{
		User: "ci", Key: key.PublicKey(),
		Sessions: [][][]byte{
			{ // the recorded lines, byte for byte, and a line that is no event
				[]byte(recorded(t, "patchset-created.json")),
				[]byte("this is not JSON\n"),
				[]byte(recorded(t, "comment-added.json")),
			},
			{
				line(t, gerrittest.ChangeMerged, gerrittest.EventValues{}),
				line(t, gerrittest.RefUpdated, gerrittest.EventValues{}),
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var logs logBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	st, events := startStream(t, gerrit.StreamConfig{Addr: srv.Addr, User: "ci", Signer: key, HostKeyCallback: srv.HostKeyCallback()}, log)

	want := []string{gerrit.EventPatchSetCreated, gerrit.EventCommentAdded, gerrit.EventChangeMerged, gerrit.EventRefUpdated}
	for _, typ := range want {
		if e := next(t, events); e.Type != typ {
			t.Fatalf("got %s, want %s", e.Type, typ)
		}
	}
	// A third session stays open: events published now arrive on it.
	published := line(t, gerrittest.PatchSetCreated, gerrittest.EventValues{Number: 1504, PatchSet: 1})
	deadline := time.Now().Add(failAfter)
	for srv.Publish(published) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream never reconnected for a third session")
		}
		time.Sleep(time.Millisecond)
	}
	if e := next(t, events); e.Type != gerrit.EventPatchSetCreated || e.Change.Number != 1504 {
		t.Fatalf("published event arrived as %+v", e)
	}
	if n := srv.Sessions(); n != 3 {
		t.Fatalf("%d sessions, want 3 (two dropped, one open)", n)
	}
	st.Stop()
	srv.Publish(published)
	select {
	case e := <-events:
		t.Fatalf("handler called after Stop with %s", e.Type)
	default:
	}
	out := logs.String()
	if !strings.Contains(out, "skipping line") || !strings.Contains(out, "disconnected") || !strings.Contains(out, `"backend":"gerrit"`) {
		t.Fatalf("logs lack the skipped line or the reconnect:\n%s", out)
	}
	if strings.Contains(out, "this is not JSON") {
		t.Fatal("logs carry the content of a skipped line")
	}
}

// logBuffer is a log destination safe for the stream's goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestStreamKeepsRetryingWhenRefused(t *testing.T) {
	t.Parallel()
	key, otherKey := newSigner(t), newSigner(t)
	tests := []struct {
		name    string
		signer  ssh.Signer
		hostKey func(*gerrittest.SSHServer) ssh.HostKeyCallback
	}{
		{"unknown key", otherKey, (*gerrittest.SSHServer).HostKeyCallback},
		{"unknown host", key, func(*gerrittest.SSHServer) ssh.HostKeyCallback { return ssh.FixedHostKey(otherKey.PublicKey()) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, err := gerrittest.StartSSH(gerrittest.SSHOptions{User: "ci", Key: key.PublicKey(),
				Sessions: [][][]byte{{[]byte(recorded(t, "comment-added.json"))}}})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			st, events := startStream(t, gerrit.StreamConfig{Addr: srv.Addr, User: "ci", Signer: tc.signer, HostKeyCallback: tc.hostKey(srv)}, nil)
			deadline := time.Now().Add(failAfter)
			for srv.Rejected() < 3 {
				if time.Now().After(deadline) {
					t.Fatalf("%d attempts, want the stream to keep retrying", srv.Rejected())
				}
				time.Sleep(time.Millisecond)
			}
			st.Stop()
			if srv.Sessions() != 0 || len(events) != 0 {
				t.Fatalf("%d sessions, %d events despite the refusal", srv.Sessions(), len(events))
			}
		})
	}
}

func TestNewStreamNamedErrors(t *testing.T) {
	t.Parallel()
	key := newSigner(t)
	ok := gerrit.StreamConfig{Addr: "gerrit.example.com", User: "ci", Signer: key, HostKeyCallback: ssh.FixedHostKey(key.PublicKey())}
	handle := func(gerrit.Event) {}
	tests := []struct {
		name   string
		edit   func(*gerrit.StreamConfig)
		handle func(gerrit.Event)
		want   error
	}{
		{"no addr", func(c *gerrit.StreamConfig) { c.Addr = "" }, handle, gerrit.ErrStreamNoAddr},
		{"no user", func(c *gerrit.StreamConfig) { c.User = "" }, handle, gerrit.ErrStreamNoUser},
		{"no key", func(c *gerrit.StreamConfig) { c.Signer = nil }, handle, gerrit.ErrStreamNoSigner},
		{"no host key check", func(c *gerrit.StreamConfig) { c.HostKeyCallback = nil }, handle, gerrit.ErrStreamNoHostKey},
		{"no handler", func(*gerrit.StreamConfig) {}, nil, gerrit.ErrStreamNoHandler},
	}
	for _, tc := range tests {
		cfg := ok
		tc.edit(&cfg)
		if _, err := gerrit.NewStream(cfg, tc.handle, nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	st, err := gerrit.NewStream(ok, handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Stop() // before Start: returns at once
	st.Stop()
	st.Start() // after Stop: returns at once
}
