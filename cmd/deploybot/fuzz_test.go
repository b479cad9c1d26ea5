package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfig feeds any bytes to the config file parser. It must never
// panic; every problem it reports must say where and what; and a file with
// no problems must give a config the rest of the program can use.
func FuzzConfig(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "deploybot.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("listen: \":8080\"\nservices:\n  api:\n    build: {job: api-build}\n"))
	f.Add([]byte("queue:\n  dead_max_len: -1\n"))
	f.Add([]byte("worker:\n  job_timeout: forever\n"))
	f.Add([]byte("services: [1, 2]\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if bytes.Contains(raw, []byte("file")) {
			// The check reads the files a config names (secrets, CA
			// bundles); the fuzzer must not read this machine's, which
			// can block (/dev/stdin, a FIFO). Those settings are tested
			// with files of their own.
			return
		}
		l := parseConfig("fuzz.yaml", raw, noEnv)
		for _, p := range l.problems {
			if strings.TrimSpace(p.String()) == "" {
				t.Fatalf("a problem with no text for %q", raw)
			}
		}
		if len(l.problems) > 0 {
			return
		}
		if l.cfg.listenAddr() == "" {
			t.Fatalf("an accepted config with no listen address: %q", raw)
		}
		if c := catalog(&l.cfg); len(c.Services) != len(l.cfg.Services) {
			t.Fatalf("catalog has %d services, the config %d: %q", len(c.Services), len(l.cfg.Services), raw)
		}
	})
}

// FuzzRedisURL: whatever REDIS_URL holds, parsing it never panics and its
// error never repeats the password.
func FuzzRedisURL(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/15", "rediss://:s3cr3t-pass@redis.example.com:6380/0",
		"redis-sentinel://:s3cr3t-pass@s1:26379,s2:26379/0?master_name=mymaster&sentinel_password=other-pass",
		"redis-cluster://:s3cr3t-pass@n1:6379?addr=n2:6379", "redis://:s3cr3t-pass@host/notanumber",
		"redis://user:p%41ssword-long@host:port/1", "http://x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := parseRedisURL(raw)
		if err == nil {
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			return
		}
		secrets := []string{u.Query().Get("password"), u.Query().Get("sentinel_password")}
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
		for _, p := range secrets {
			if len(p) >= 6 && strings.Contains(err.Error(), p) {
				t.Fatalf("error %q repeats the password %q of %q", err, p, raw)
			}
		}
	})
}
