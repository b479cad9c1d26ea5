package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/seed-5eb4e92e/deploybot/backends/gerrit"
	"github.com/seed-5eb4e92e/deploybot/commands"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// wireStream sets up reading `gerrit stream-events` over SSH, when
// configured. Each event is queued like a webhook delivery; an event seen
// by several workers, or also delivered by the webhooks plugin, is acted on
// once.
func (a *app) wireStream(c *fileConfig) error {
	s := c.Gerrit.SSH
	if s.Addr == "" {
		return nil
	}
	key, err := os.ReadFile(s.KeyFile)
	if err != nil {
		return fmt.Errorf("gerrit ssh key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return fmt.Errorf("gerrit ssh key: %w", err)
	}
	hostKeys, err := knownhosts.New(s.KnownHostsFile)
	if err != nil {
		return fmt.Errorf("gerrit ssh known hosts: %w", err)
	}
	a.stream, err = gerrit.NewStream(gerrit.StreamConfig{Addr: s.Addr, User: s.User, Signer: signer, HostKeyCallback: hostKeys},
		a.queueGerritEvent, a.log)
	return err
}

// queueGerritEvent queues an event read from the SSH stream.
func (a *app) queueGerritEvent(ev gerrit.Event) {
	body, err := json.Marshal(ev)
	if err != nil {
		a.log.Error("cannot encode a Gerrit event", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	job := queue.Job{Request: commands.Request{Kind: "hook", Topic: "gerrit"}, Payload: body, CreatedAt: time.Now()}
	if _, err := a.q.Enqueue(ctx, job, queue.Dedupe{Key: "hook:gerrit:" + ev.Key(), TTL: 24 * time.Hour}); err != nil {
		a.log.Error("cannot queue a Gerrit event; it is lost", "type", ev.Type, "err", err)
	}
}
