package marathon_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/seed-5eb4e92e/deploybot/backends/marathon"
)

func TestCopyAs(t *testing.T) {
	t.Parallel()
	def := json.RawMessage(`{"id":"/a","labels":{"X":"1"},"instances":3,"env":{"S":{"secret":"s"}}}`)
	got, err := marathon.CopyAs(def, "/a-green", map[string]string{"Y": "2"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"env":{"S":{"secret":"s"}},"id":"/a-green","instances":0,"labels":{"X":"1","Y":"2"}}`
	if string(got) != want {
		t.Errorf("CopyAs = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		def json.RawMessage
		id  string
		n   int
	}{{def, "/A", 1}, {def, "/a", -1}, {json.RawMessage(`[]`), "/a", 1}, {json.RawMessage(`{"labels":[]}`), "/a", 1}} {
		if _, err := marathon.CopyAs(tc.def, tc.id, nil, tc.n); err == nil {
			t.Errorf("CopyAs(%s, %s, %d) accepted", tc.def, tc.id, tc.n)
		}
	}
}

func TestWithImage(t *testing.T) {
	t.Parallel()
	def := json.RawMessage(`{"id":"/a","container":{"type":"DOCKER","docker":{"image":"a:1","forcePullImage":true},"portMappings":[{"containerPort":80}]}}`)
	got, err := marathon.WithImage(def, "a:2")
	want := `{"container":{"docker":{"forcePullImage":true,"image":"a:2"},"portMappings":[{"containerPort":80}],"type":"DOCKER"},"id":"/a"}`
	if err != nil || string(got) != want {
		t.Errorf("WithImage = %s, %v; want %s", got, err, want)
	}
	for _, tc := range []struct{ def, image string }{
		{`{"id":"/a","cmd":"sleep 1"}`, "a:2"},
		{`{"id":"/a","container":{"type":"MESOS"}}`, "a:2"},
		{string(def), ""},
		{string(def), "a 2"},
	} {
		if _, err := marathon.WithImage(json.RawMessage(tc.def), tc.image); err == nil {
			t.Errorf("WithImage(%s, %q) accepted", tc.def, tc.image)
		}
	}
}

func TestForNextColour(t *testing.T) {
	t.Parallel()
	labels := `"labels":{"HAPROXY_0_PORT":"10000","HAPROXY_DEPLOYMENT_ALT_PORT":"10001","HAPROXY_GROUP":"external"}`
	tests := []struct {
		name, def, want string
	}{
		{name: "Marathon 1.5+ port mappings",
			def:  `{"container":{"portMappings":[{"containerPort":8080,"servicePort":10000},{"servicePort":10002}],"type":"DOCKER"},` + labels + `}`,
			want: `{"container":{"portMappings":[{"containerPort":8080,"servicePort":10001},{"servicePort":10002}],"type":"DOCKER"},` + labels + `}`},
		{name: "back to the public port",
			def:  `{"container":{"portMappings":[{"servicePort":10001}]},` + labels + `}`,
			want: `{"container":{"portMappings":[{"servicePort":10000}]},` + labels + `}`},
		{name: "docker port mappings (before 1.5)",
			def:  `{"container":{"docker":{"image":"x","portMappings":[{"servicePort":10000}]}},` + labels + `}`,
			want: `{"container":{"docker":{"image":"x","portMappings":[{"servicePort":10001}]}},` + labels + `}`},
		{name: "port definitions, no public port label yet",
			def:  `{"labels":{"HAPROXY_DEPLOYMENT_ALT_PORT":"10001"},"portDefinitions":[{"port":10000,"protocol":"tcp"}]}`,
			want: `{"labels":{"HAPROXY_0_PORT":"10000","HAPROXY_DEPLOYMENT_ALT_PORT":"10001"},"portDefinitions":[{"port":10001,"protocol":"tcp"}]}`},
		{name: "no alternate port", def: `{"container":{"portMappings":[{"servicePort":10000}]},"labels":{}}`},
		{name: "bad alternate port", def: `{"portDefinitions":[{"port":1}],"labels":{"HAPROXY_DEPLOYMENT_ALT_PORT":"x"}}`},
		{name: "no service port", def: `{"cmd":"x",` + labels + `}`},
	}
	for _, tc := range tests {
		got, err := marathon.ForNextColour(json.RawMessage(tc.def))
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s: accepted: %s", tc.name, got)
			}
			continue
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, []byte(tc.want))
		if err != nil || string(got) != compact.String() {
			t.Errorf("%s: ForNextColour = %s, %v\nwant %s", tc.name, got, err, compact.String())
		}
	}
}
