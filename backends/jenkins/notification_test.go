package jenkins_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/jenkins"
)

func readNotification(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("jenkinstest", "testdata", "notification", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestParseRecordedNotifications(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		phase  string
		status string
		final  bool
	}{
		{"started.json", "STARTED", "", false},
		{"completed-failure.json", "COMPLETED", "FAILURE", false},
		{"finalized-failure.json", "FINALIZED", "FAILURE", true},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			n, err := jenkins.ParseNotification(readNotification(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if n.Build.Phase != tc.phase || n.Build.Status != tc.status || n.Final() != tc.final {
				t.Fatalf("phase %q status %q final %v", n.Build.Phase, n.Build.Status, n.Final())
			}
			path, err := n.JobPath()
			if err != nil || path != "platform-api-verify" || n.Build.Number != 87 {
				t.Fatalf("job %q #%d, %v", path, n.Build.Number, err)
			}
			if n.Build.Parameters["GERRIT_CHANGE_NUMBER"] != "1503" || n.Build.Parameters["GERRIT_CHANGE_OWNER_EMAIL"] != "ann@example.com" {
				t.Fatalf("parameters = %v", n.Build.Parameters)
			}
		})
	}
	a, _ := jenkins.ParseNotification(readNotification(t, "completed-failure.json"))
	b, _ := jenkins.ParseNotification(readNotification(t, "finalized-failure.json"))
	again, _ := jenkins.ParseNotification(readNotification(t, "finalized-failure.json"))
	if a.Key() == b.Key() || b.Key() != again.Key() {
		t.Fatal("keys must tell phases apart and be stable across deliveries")
	}
}

func TestNotificationEdgeCases(t *testing.T) {
	t.Parallel()
	good := func(url string) string {
		return `{"name":"x","url":"` + url + `","build":{"number":3,"phase":"FINALIZED","status":"SUCCESS","parameters":{"B":true,"N":7,"S":"s","Z":null}}}`
	}
	n, err := jenkins.ParseNotification([]byte(good("job/team/job/api%20build/")))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := n.JobPath(); p != "team/api build" {
		t.Fatalf("JobPath = %q", p)
	}
	if n.Build.Parameters["B"] != "true" || n.Build.Parameters["N"] != "7" || n.Build.Parameters["S"] != "s" {
		t.Fatalf("parameters = %v", n.Build.Parameters)
	}
	for _, bad := range []string{
		`[]`, `{}`, `{"name":"x","url":"job/x/","build":{"number":0,"phase":"FINALIZED"}}`,
		`{"name":"x","url":"job/x/","build":{"number":1,"phase":"DONE"}}`,
		good("view/all/"), good("job/"), good("job/a/job/..%2F/"),
	} {
		if _, err := jenkins.ParseNotification([]byte(bad)); err == nil {
			t.Errorf("ParseNotification(%s) accepted", bad)
		}
	}
}

func TestBuildChanges(t *testing.T) {
	t.Parallel()
	var free, flow jenkins.Build
	decodeFile(t, filepath.Join("jenkinstest", "testdata", "build-failure.json"), &free)
	decodeFile(t, filepath.Join("jenkinstest", "testdata", "build-workflow.json"), &flow)
	if c := free.Changes(); len(c) != 1 || c[0].AuthorEmail != "alice@example.com" || c[0].Author.FullName != "Alice Example" {
		t.Fatalf("freestyle changes = %+v", c)
	}
	if c := flow.Changes(); len(c) != 1 || c[0].AuthorEmail != "bob@example.com" {
		t.Fatalf("pipeline changes = %+v", c)
	}
	if len(free.Culprits) != 1 || free.Culprits[0].FullName != "Alice Example" {
		t.Fatalf("culprits = %+v", free.Culprits)
	}
}

func FuzzParseNotification(f *testing.F) {
	for _, name := range []string{"started.json", "finalized-failure.json"} {
		raw, err := os.ReadFile(filepath.Join("jenkinstest", "testdata", "notification", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := jenkins.ParseNotification(raw)
		if err != nil {
			return
		}
		path, err := n.JobPath()
		if err != nil {
			t.Fatalf("parsed notification with a bad job path: %v", err)
		}
		if _, err := jenkins.JobPath(path); err != nil {
			t.Fatalf("JobPath %q is not a valid job name: %v", path, err)
		}
	})
}
