package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// privateRedis is a redis-server of the test's own, with AOF persistence
// fsynced on every write, that the test can kill and start again.
type privateRedis struct {
	bin, dir, port string
	cmd            *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("DEPLOYBOT_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server is not installed; this fault test restarts a Redis of its own")
		}
		t.Skip("redis-server is not installed; this fault test restarts a Redis of its own (CI installs it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	r := &privateRedis{bin: bin, dir: t.TempDir(), port: port}
	r.start(t)
	t.Cleanup(func() { r.kill(t) })
	return r
}

func (r *privateRedis) url() string { return "redis://127.0.0.1:" + r.port + "/0" }

func (r *privateRedis) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command(r.bin, "--port", r.port, "--bind", "127.0.0.1", "--dir", r.dir, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--logfile", "")
	r.cmd.Stdout, r.cmd.Stderr = nil, nil
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + r.port})
	defer rdb.Close()
	waitFor(t, "redis-server to answer", func() bool { return rdb.Ping(context.Background()).Err() == nil })
}

func (r *privateRedis) kill(t *testing.T) {
	t.Helper()
	if r.cmd != nil && r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill() // SIGKILL: Redis gets no chance to flush anything
		_ = r.cmd.Wait()
	}
}

// Redis is killed (SIGKILL) in the middle of a burst of commands and
// started again from its append-only file. Every command answered
// "Queued" runs exactly once; a command answered that nothing started
// should run not at all, and the test counts any that did.
func TestFaultRedisRestartDuringBurst(t *testing.T) {
	t.Parallel()
	rs := startPrivateRedis(t)
	// A job a worker held when Redis went away is taken over after the
	// visibility timeout; 2 s instead of the default minute keeps the test short.
	e := startE2EOpts(t, e2eOpts{redisURL: rs.url(), config: func(c *fileConfig) { c.Queue.Visibility = duration(2 * time.Second) }})
	const total, senders = 150, 6
	answers := make([]string, total)
	next := make(chan int)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range next {
				body := []byte(slashForm(t, fmt.Sprintf("build api burst-%d", i), "U2147483697").Encode())
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/slack/commands", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				signRequest(req, body)
				answers[i] = doText(t, req)
			}
		})
	}
	// A third of the way in, Redis dies and stays down for longer than the
	// responder's 2 s ack budget, while the commands keep coming.
	var down time.Duration
	restarted := make(chan struct{})
	for i := range total {
		if i == total/3 {
			rs.kill(t)
			go func() {
				defer close(restarted)
				start := time.Now()
				time.Sleep(2500 * time.Millisecond)
				rs.start(t)
				down = time.Since(start)
			}()
		}
		next <- i
		time.Sleep(20 * time.Millisecond) // about 50 commands a second, so the burst spans the outage
	}
	close(next)
	wg.Wait()
	<-restarted

	acked := map[int]string{}
	for i, a := range answers {
		if id := jobOf(a); id != "" {
			acked[i] = id
		}
	}
	for _, id := range acked {
		e.waitFinal(t, id)
	}
	waitFor(t, "the queue to drain", func() bool {
		n, err := e.a.q.Depth(context.Background())
		return err == nil && n == 0
	})
	ran := map[string]int{}
	for n := 1; n <= e.jenkins.Builds("platform/api-build"); n++ {
		ran[e.jenkins.BuildParams("platform/api-build", n).Get("BRANCH")]++
	}
	var lost, doubled, unackedRan int
	for i := range total {
		ref := fmt.Sprintf("burst-%d", i)
		switch _, ok := acked[i]; {
		case ok && ran[ref] == 0:
			lost++
		case ok && ran[ref] > 1:
			doubled += ran[ref] - 1
		case !ok && ran[ref] > 0:
			unackedRan++
		}
	}
	failed := 0
	for _, id := range acked {
		if rec, err := e.a.q.Record(context.Background(), id); err != nil || rec.State != queue.StateSucceeded {
			failed++
		}
	}
	t.Logf("fault: Redis SIGKILL and restart from AOF (down %s) during a burst: sent=%d acked=%d told_nothing_started=%d builds=%d not_succeeded=%d lost=%d doubled=%d ran_without_ack=%d",
		down.Round(time.Millisecond), total, len(acked), total-len(acked), e.jenkins.Builds("platform/api-build"), failed, lost, doubled, unackedRan)
	if lost != 0 || doubled != 0 || failed != 0 {
		t.Fatalf("lost %d, doubled %d, %d acked jobs not succeeded", lost, doubled, failed)
	}
	if len(acked) == total {
		t.Fatal("every command was acked though Redis was down for longer than the ack budget")
	}
}
