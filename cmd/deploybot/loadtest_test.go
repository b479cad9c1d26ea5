package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack"

	"github.com/seed-5eb4e92e/deploybot/worker/queue/queuetest"
)

func runLoad(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(context.Background(), append([]string{"loadtest"}, args...), strings.NewReader(""), &out, &out,
		func(k string) string { return env[k] })
	return code, out.String()
}

func readResult(t *testing.T, path string) loadResult {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r loadResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// The tool against deploybot in its own process: every request is
// answered, every command with a job, the workers pick up and end every
// job, and the plot is an SVG with a p50 and a p99 line.
func TestLoadtestInProcess(t *testing.T) {
	redisURL, _ := queuetest.URL(t)
	dir := t.TempDir()
	res, svg := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.svg")
	code, out := runLoad(t, map[string]string{"REDIS_URL": redisURL},
		"-rate", "0", "-requests", "150", "-conns", "4", "-duration", "1m", "-clicks", "0.2", "-json", res, "-plot", svg, "-label", "test")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	t.Log(out)
	r := readResult(t, res)
	if len(r.Steps) != 1 {
		t.Fatalf("%d steps, want 1", len(r.Steps))
	}
	st := r.Steps[0]
	if st.Sent != 150 || st.OK != 150 || st.Errors != 0 || st.Clicks != 30 || st.Commands != 120 {
		t.Errorf("sent %d ok %d errors %d clicks %d commands %d; want 150 sent and ok, 30 clicks, 120 commands",
			st.Sent, st.OK, st.Errors, st.Clicks, st.Commands)
	}
	if st.Named != st.Commands {
		t.Errorf("%d answers named a job, want one per command (%d)", st.Named, st.Commands)
	}
	if st.Undrained != "" {
		t.Errorf("jobs left: %s", st.Undrained)
	}
	// Each command is a job; a click retries one of the 20 failed setup
	// builds at most once.
	for name, q := range map[string]*quantiles{"pickup": st.Pickup, "done": st.Done} {
		if q == nil || q.N < st.Commands || q.N > st.Commands+20 {
			t.Errorf("%s counted %+v, want %d to %d jobs", name, q, st.Commands, st.Commands+20)
		}
	}
	a := st.Ack
	if a.N != 150 || a.P50 <= 0 || a.P50 > a.P90 || a.P90 > a.P99 || a.P99 > a.Max {
		t.Errorf("ack quantiles out of order: %+v", a)
	}
	checkSVG(t, svg, 0, 2) // one flat-out step: a ring each for p50 and p99, no line
}

// checkSVG checks that the plot at path is SVG with lines polylines and
// marks circles, all at real coordinates.
func checkSVG(t *testing.T, path string, lines, marks int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName   xml.Name `xml:"svg"`
		Polylines []struct {
			Points string `xml:"points,attr"`
		} `xml:"polyline"`
		Circles []struct {
			X string `xml:"cx,attr"`
			Y string `xml:"cy,attr"`
		} `xml:"circle"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("plot is not XML: %v", err)
	}
	if len(doc.Polylines) != lines || len(doc.Circles) != marks {
		t.Fatalf("plot has %d lines and %d marks, want %d and %d", len(doc.Polylines), len(doc.Circles), lines, marks)
	}
	for _, c := range doc.Circles {
		if _, err := strconv.ParseFloat(c.X, 64); err != nil {
			t.Errorf("mark at x %q", c.X)
		}
		if _, err := strconv.ParseFloat(c.Y, 64); err != nil {
			t.Errorf("mark at y %q", c.Y)
		}
	}
	for _, p := range doc.Polylines {
		if strings.Contains(p.Points, "NaN") || strings.TrimSpace(p.Points) == "" {
			t.Errorf("bad points %q", p.Points)
		}
	}
}

// Against another target the tool signs as Slack does (checked here with
// slack-go's verifier) and counts what is not a 200 by its status.
func TestLoadtestCountsErrors(t *testing.T) {
	const secret = "load-secret"
	var mu sync.Mutex
	var verified, failed int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sv, err := slack.NewSecretsVerifier(r.Header, secret)
		body, _ := io.ReadAll(r.Body)
		if err == nil {
			_, _ = sv.Write(body)
			err = sv.Ensure()
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		verified++
		if verified%5 == 0 {
			failed++
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(`{"text":"Queued."}`))
	}))
	defer srv.Close()
	res := filepath.Join(t.TempDir(), "r.json")
	code, out := runLoad(t, map[string]string{"SLACK_SIGNING_SECRET": secret},
		"-target", srv.URL, "-rate", "0", "-requests", "50", "-conns", "3", "-clicks", "0", "-json", res)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	st := readResult(t, res).Steps[0]
	if verified != 50 || failed != 10 {
		t.Fatalf("server verified %d and failed %d, want 50 and 10", verified, failed)
	}
	if st.Sent != 50 || st.OK != 40 || st.Errors != 10 || st.ErrorKinds["http_500"] != 10 || st.Named != 0 {
		t.Errorf("result %+v, want 50 sent, 40 ok, 10 errors, all http_500, none naming a job", st)
	}
}

func TestLoadtestRefusesBadFlags(t *testing.T) {
	env := map[string]string{"SLACK_SIGNING_SECRET": "s"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"target off this machine", []string{"-target", "http://deploybot.example.com"}, "only sends to loopback"},
		{"target by a public IP", []string{"-target", "http://192.0.2.10:8080"}, "only sends to loopback"},
		{"listen on every interface", []string{"-serve", "-listen", "0.0.0.0:8089"}, "loopback address"},
		{"unbounded duration", []string{"-duration", "2h"}, "at most 10m0s"},
		{"negative rate", []string{"-rate", "100,-1"}, "-rate"},
		{"too many connections", []string{"-conns", "5000"}, "-conns"},
		{"plot input without output", []string{"-from", "a.json"}, "give -plot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runLoad(t, env, tc.args...)
			if code != 2 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, output %q; want 2 and %q", code, out, tc.want)
			}
		})
	}
	code, out := runLoad(t, map[string]string{}, "-target", "http://127.0.0.1:1")
	if code != 2 || !strings.Contains(out, "SLACK_SIGNING_SECRET") {
		t.Errorf("without a secret: exit %d, %q", code, out)
	}
}

// Quantiles from buckets interpolate within a bucket as Prometheus'
// histogram_quantile does.
func TestBucketQuantiles(t *testing.T) {
	// 100 observations: 50 at or under 1ms, 40 in (1ms, 2ms], 10 in (2ms, 5ms].
	b := map[float64]uint64{0.001: 50, 0.002: 90, 0.005: 100, math.Inf(1): 100}
	q := bucketQuantiles(b)
	for name, c := range map[string][2]float64{"p50": {q.P50, 1}, "p90": {q.P90, 2}, "p99": {q.P99, 4.7}} {
		if math.Abs(c[0]-c[1]) > 1e-9 {
			t.Errorf("%s = %v ms, want %v", name, c[0], c[1])
		}
	}
	if q.N != 100 {
		t.Errorf("N = %d", q.N)
	}
	if bucketQuantiles(map[float64]uint64{0.001: 0, math.Inf(1): 0}) != nil {
		t.Error("no observations should give no quantiles")
	}
}

// -from draws saved runs into one plot, a p50 and a p99 line each.
func TestLoadtestPlotsSavedRuns(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, label := range []string{"deploybot", "floor", "bolt <js>"} {
		r := loadResult{Label: label, Steps: []stepResult{
			{Rate: 500, Throughput: 500, Ack: quantiles{P50: 0.5 + float64(i), P99: 2 + float64(i)}},
			{Rate: 0, Throughput: 4000 - 1000*float64(i), Ack: quantiles{P50: 3, P99: 40}},
		}}
		b, _ := json.Marshal(r)
		f := filepath.Join(dir, label+".json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	svg := filepath.Join(dir, "all.svg")
	if code, out := runLoad(t, nil, "-from", strings.Join(files, ","), "-plot", svg); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	checkSVG(t, svg, 6, 12) // per run: a p50 and a p99 line of one step, and a ring each for flat out
}
