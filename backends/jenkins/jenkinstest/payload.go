package jenkinstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

func (s *Server) base(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/"
}

func (s *Server) jobURL(j *job) string {
	var b strings.Builder
	b.WriteString(s.URL)
	for _, seg := range strings.Split(j.path, "/") {
		b.WriteString("job/" + url.PathEscape(seg) + "/")
	}
	return b.String()
}

func (s *Server) buildURL(j *job, n int) string { return fmt.Sprintf("%s%d/", s.jobURL(j), n) }

func writeTemplate(w http.ResponseWriter, name string, edit func(map[string]any)) {
	raw, err := payloads.ReadFile("testdata/" + name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	edit(m)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(m)
}

// setParameters replaces the values in the payload's ParametersAction with
// the job's parameters, in the order the job defines them, as Jenkins lists
// them. A job without parameters has no ParametersAction at all.
func setParameters(m map[string]any, names []string, params url.Values) {
	actions, _ := m["actions"].([]any)
	kept := actions[:0:0]
	for _, a := range actions {
		am, _ := a.(map[string]any)
		if am["_class"] != "hudson.model.ParametersAction" {
			kept = append(kept, a)
			continue
		}
		if len(names) == 0 {
			continue
		}
		list := make([]any, 0, len(names))
		for _, k := range names {
			list = append(list, map[string]any{"_class": "hudson.model.StringParameterValue", "name": k, "value": params.Get(k)})
		}
		am["parameters"] = list
		kept = append(kept, am)
	}
	if actions != nil {
		m["actions"] = kept
	}
}

func paramsString(params url.Values) string {
	var b strings.Builder
	for _, k := range sortedKeys(params) {
		b.WriteString("\n" + k + "=" + params.Get(k))
	}
	return b.String()
}

func sortedKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func equalValues(a, b url.Values) bool { return paramsString(a) == paramsString(b) }

func lastName(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// setChangeSet replaces the build's change set with one commit per author,
// shaped like the recorded git change set, and names the authors as
// culprits.
func setChangeSet(m map[string]any, number int, authors []string) {
	var items, culprits []any
	for i, email := range authors {
		name := strings.SplitN(email, "@", 2)[0]
		sha := fmt.Sprintf("%040x", number*100+i)
		items = append(items, map[string]any{
			"_class": "hudson.plugins.git.GitChangeSet", "affectedPaths": []any{"main.go"},
			"commitId": sha, "id": sha, "author": map[string]any{"fullName": name}, "authorEmail": email,
			"comment": "change by " + name + "\n", "msg": "change by " + name,
		})
		culprits = append(culprits, map[string]any{"fullName": name})
	}
	m["changeSet"] = map[string]any{"_class": "hudson.plugins.git.GitChangeSetList", "kind": "git", "items": items}
	m["culprits"] = culprits
}
