package mesos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRecordReader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		records []string
		err     error // after the records; nil means io.EOF
		max     uint64
	}{
		{name: "doc example", in: "20\n{\"type\":\"HEARTBEAT\"}2\n{}", records: []string{`{"type":"HEARTBEAT"}`, "{}"}},
		{name: "empty stream", in: ""},
		{name: "blank lines before a size", in: "\n\n3\nabc", records: []string{"abc"}},
		{name: "record holds newlines", in: "5\na\nb\nc", records: []string{"a\nb\nc"}},
		{name: "leading zeros", in: "003\nabc", records: []string{"abc"}},
		{name: "cut inside data", in: "10\nabc", err: io.ErrUnexpectedEOF},
		{name: "cut inside size", in: "3\nabc12", records: []string{"abc"}, err: io.ErrUnexpectedEOF},
		{name: "zero size", in: "0\n", err: errRecordFraming},
		{name: "not a digit", in: "1a\nx", err: errRecordFraming},
		{name: "carriage return", in: "3\r\nabc", err: errRecordFraming},
		{name: "too large", in: "33554433\n", err: errRecordFraming},
		{name: "overflows uint64", in: "99999999999999999999999\n", err: errRecordFraming},
		{name: "at the limit", in: "1024\n" + strings.Repeat("x", 1024), records: []string{strings.Repeat("x", 1024)}, max: 1024},
		{name: "past the limit", in: "1025\n" + strings.Repeat("x", 1025), err: errRecordFraming, max: 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// One byte at a time: chunk boundaries must not matter.
			limit := tc.max
			if limit == 0 {
				limit = maxRecord
			}
			rr := newRecordReader(iotest.OneByteReader(strings.NewReader(tc.in)), limit)
			var got []string
			var err error
			for {
				var rec []byte
				if rec, err = rr.next(); err != nil {
					break
				}
				got = append(got, string(rec))
			}
			want := tc.err
			if want == nil {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Fatalf("error %v, want %v", err, want)
			}
			if len(got) != len(tc.records) || !slices.Equal(got, tc.records) {
				t.Fatalf("records %q, want %q", short(got), short(tc.records))
			}
		})
	}
}

func short(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		out[i] = x
	}
	return out
}

// recordStream frames the recorded events the way the master writes them.
func recordStream(t testing.TB, names ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, n := range names {
		raw, err := os.ReadFile("mesostest/testdata/" + n)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d\n%s", len(raw), raw)
	}
	return b.Bytes()
}

// FuzzRecordIO feeds arbitrary bytes to the framing parser: it must never
// panic, never return a record larger than the limit, and account for
// every byte it consumed.
func FuzzRecordIO(f *testing.F) {
	f.Add(recordStream(f, "subscribed.json", "offers.json", "heartbeat.json"))
	f.Add([]byte("3\nabc\n\n2\nxy"))
	f.Add([]byte("18446744073709551615\n"))
	f.Add([]byte("0\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 1 << 10
		rr := newRecordReader(bytes.NewReader(in), limit)
		total := 0
		for {
			rec, err := rr.next()
			if err != nil {
				break
			}
			if len(rec) == 0 || len(rec) > limit {
				t.Fatalf("record of %d bytes", len(rec))
			}
			total += len(rec)
		}
		if total > len(in) {
			t.Fatalf("%d record bytes from %d input bytes", total, len(in))
		}
	})
}

// FuzzDecodeEvent feeds arbitrary records to the event decoder and the
// status conversion the run applies to them.
func FuzzDecodeEvent(f *testing.F) {
	for _, n := range []string{"subscribed.json", "offers.json", "rescind.json", "update.json", "update-failed.json",
		"update-master.json", "heartbeat.json", "error.json", "failure.json"} {
		raw, err := os.ReadFile("mesostest/testdata/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"type":"OFFERS","offers":[{"resources":[{"name":"cpus","type":"SCALAR"}]}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := decodeEvent(raw)
		if err != nil {
			return
		}
		if ev.Type == "" {
			t.Fatal("decoded an event without a type")
		}
		_ = ev.errorMessage()
		if ev.Update != nil {
			s := ev.Update.Status.status("fw")
			if c := s.ExitCode; c != nil && (*c < 0 || *c > 255) {
				t.Fatalf("exit code %d from %q", *c, s.Message)
			}
		}
		for _, o := range ev.Offers {
			_ = amounts{cpus: 1, mem: 1, disk: 1}.shortOf(o)
			_ = usable(o.Resources).take(amounts{cpus: 1, mem: 1, disk: 1})
		}
	})
}
