package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/seed-5eb4e92e/deploybot/bot"
	"github.com/seed-5eb4e92e/deploybot/worker/queue"
)

// loadReq is what the load tool sends: a signed slash command or a signed
// button click, as Slack would.
type loadReq struct {
	path string // /slack/commands or /slack/interactions
	body []byte
}

// loadGen builds the requests of one run. Every slash command asks for a
// build of a ref of its own, so none is answered as a duplicate; every click
// is a Retry on one of the jobs the run started first.
type loadGen struct {
	run         string // distinguishes runs: refs and trigger IDs carry it
	slash       string
	user        string
	channel     string
	team        string
	service     string
	responseURL func(i int) string
	clickShare  float64
	clickJobs   []string
}

// request is the i-th request of the run.
func (g *loadGen) request(i int) loadReq {
	// Clicks are spread evenly: request i is one when the running count of
	// clicks due, i*share, passes a whole number.
	if len(g.clickJobs) > 0 && int(float64(i+1)*g.clickShare) > int(float64(i)*g.clickShare) {
		return loadReq{path: "/slack/interactions", body: g.click(i, g.clickJobs[i%len(g.clickJobs)])}
	}
	return loadReq{path: "/slack/commands", body: g.command(i, fmt.Sprintf("build %s load-%s-%d", g.service, g.run, i))}
}

func (g *loadGen) command(i int, text string) []byte {
	v := url.Values{
		"token": {"load"}, "team_id": {g.team}, "team_domain": {"load"}, "channel_id": {g.channel},
		"channel_name": {"load"}, "user_id": {g.user}, "user_name": {"load"}, "command": {g.slash},
		"text": {text}, "api_app_id": {"A0LOADTEST"}, "trigger_id": {fmt.Sprintf("%d.%s.load", i, g.run)},
	}
	if g.responseURL != nil {
		v.Set("response_url", g.responseURL(i))
	}
	return []byte(v.Encode())
}

// click is a block_actions payload for the Retry button of job id, in the
// shape of Slack's (bot/testdata has recorded ones).
func (g *loadGen) click(i int, id string) []byte {
	type obj = map[string]any
	p := obj{
		"type": "block_actions", "api_app_id": "A0LOADTEST", "token": "load",
		"user":       obj{"id": g.user, "username": "load", "name": "load", "team_id": g.team},
		"team":       obj{"id": g.team, "domain": "load"},
		"channel":    obj{"id": g.channel, "name": "load"},
		"container":  obj{"type": "message", "message_ts": "1700000000.000100", "channel_id": g.channel, "is_ephemeral": false},
		"trigger_id": fmt.Sprintf("%d.%s.click", i, g.run),
		"actions": []obj{{
			"type": "button", "action_id": bot.ActionRetry, "block_id": "job", "value": id,
			"text": obj{"type": "plain_text", "text": "Retry", "emoji": true}, "action_ts": "1700000001.000200",
		}},
	}
	if g.responseURL != nil {
		p["response_url"] = g.responseURL(i)
	}
	payload, _ := json.Marshal(p) // maps of strings and bools
	return []byte(url.Values{"payload": {string(payload)}}.Encode())
}

// signed is req as an HTTP request to base, signed with secret at now.
func signed(ctx context.Context, base string, req loadReq, secret string, now time.Time) (*http.Request, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+req.path, bytes.NewReader(req.body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	bot.Sign(hr.Header, secret, req.body, now)
	return hr, nil
}

var jobInAnswer = regexp.MustCompile("job `([0-9A-HJKMNP-TV-Z]{26})`")

// answerJob is the job ID a deploybot answer names, or "".
func answerJob(body []byte) string {
	var ans struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(body, &ans) != nil {
		return ""
	}
	if m := jobInAnswer.FindStringSubmatch(ans.Text); m != nil && queue.ValidID(m[1]) {
		return m[1]
	}
	return ""
}

// stepResult is one step of a run: what was offered, what came back.
type stepResult struct {
	Rate       float64        `json:"rate"` // offered requests/s; 0 is flat out
	Sent       int            `json:"sent"`
	OK         int            `json:"ok"` // 200 answers
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	Commands   int            `json:"commands"`
	// Named counts answers that name a job: deploybot's "Queued … job
	// `ID`" or "Already queued"; not an answer that nothing started.
	Named      int        `json:"named"`
	Clicks     int        `json:"clicks"`
	Seconds    float64    `json:"seconds"`
	Throughput float64    `json:"throughput"` // 200 answers per second
	Ack        quantiles  `json:"ack_ms"`
	Pickup     *quantiles `json:"pickup_ms,omitempty"`
	Done       *quantiles `json:"done_ms,omitempty"`
	// Undrained says how many jobs were left when -drain ran out.
	Undrained string  `json:"undrained,omitempty"`
	RSSIdleMB float64 `json:"rss_idle_mb,omitempty"`
	RSSPeakMB float64 `json:"rss_peak_mb,omitempty"`
}

// quantiles of a latency, in milliseconds.
type quantiles struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// exactQuantiles summarises samples (nearest rank).
func exactQuantiles(samples []time.Duration) quantiles {
	if len(samples) == 0 {
		return quantiles{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		return ms(s[min(max(i, 0), len(s)-1)])
	}
	return quantiles{N: len(s), P50: at(.50), P90: at(.90), P99: at(.99), P999: at(.999), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// drive sends requests to base for the step's duration or until max were
// sent, at rate (an open loop: latency counts from when a request was due,
// so a slow target cannot hide its queueing) or, at rate 0, as fast as
// conns connections allow.
func drive(ctx context.Context, hc *http.Client, base, secret string, g *loadGen, first int, rate float64, conns, maxN int, d time.Duration) stepResult {
	res := stepResult{Rate: rate, ErrorKinds: map[string]int{}}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, min(maxN, 1<<20))
	due := make(chan time.Time, conns)
	start := time.Now()
	end := start.Add(d)
	go func() {
		defer close(due)
		for i := 0; i < maxN; i++ {
			var at time.Time // flat out: the sender takes the time
			if rate > 0 {
				at = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
				if wait := time.Until(at); wait > 0 {
					time.Sleep(wait)
				}
			}
			if time.Now().After(end) || ctx.Err() != nil {
				return
			}
			due <- at
		}
	}()
	var next int
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for at := range due {
				if at.IsZero() {
					at = time.Now()
				}
				mu.Lock()
				i := first + next
				next++
				mu.Unlock()
				req := g.request(i)
				kind, named := send(ctx, hc, base, secret, req)
				took := time.Since(at)
				mu.Lock()
				res.Sent++
				if req.path == "/slack/commands" {
					res.Commands++
				} else {
					res.Clicks++
				}
				if named {
					res.Named++
				}
				if kind == "" {
					res.OK++
					lat = append(lat, took)
				} else {
					res.Errors++
					res.ErrorKinds[kind]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.Throughput = float64(res.OK) / res.Seconds
	}
	res.Ack = exactQuantiles(lat)
	return res
}

// send sends one request and says what went wrong, "" for a 200 answer,
// and whether the answer named a job.
func send(ctx context.Context, hc *http.Client, base, secret string, req loadReq) (string, bool) {
	hr, err := signed(ctx, base, req, secret, time.Now())
	if err != nil {
		return "request", false
	}
	resp, err := hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return "cancelled", false
		}
		return "transport", false
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "http_" + strconv.Itoa(resp.StatusCode), false
	}
	return "", answerJob(body) != ""
}
