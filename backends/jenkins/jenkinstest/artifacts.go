package jenkinstest

import (
	"html"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
)

// listCutoff is Run.LIST_CUTOFF: with more artifacts than this, Jenkins
// does not compute display paths and sends them as null.
const listCutoff = 20

// artifactList is the build's "artifacts" as Run.getArtifacts exports them:
// files only, depth first, sorted by name (ignoring case) in each directory,
// each {displayPath, fileName, relativePath} without _class.
func artifactList(files map[string][]byte) []any {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.SortFunc(paths, comparePaths)
	var shown []string
	if len(paths) <= listCutoff {
		shown = displayPaths(paths)
	}
	out := make([]any, 0, len(paths))
	for i, p := range paths {
		var display any // null past the cutoff
		if shown != nil {
			display = shown[i]
		}
		out = append(out, map[string]any{"displayPath": display, "fileName": path.Base(p), "relativePath": p})
	}
	return out
}

// comparePaths orders as Run.addArtifacts walks the archive: each
// directory's entries sorted with VirtualFile.compareTo, which ignores case.
func comparePaths(a, b string) int {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if c := strings.Compare(strings.ToLower(as[i]), strings.ToLower(bs[i])); c != 0 {
			return c
		}
		if c := strings.Compare(as[i], bs[i]); c != 0 {
			return c
		}
	}
	return len(as) - len(bs)
}

// displayPaths is Run.ArtifactList.computeDisplayName: the shortest suffix
// of each path, in whole elements, that no other artifact shares.
func displayPaths(paths []string) []string {
	tokens := make([][]string, len(paths))
	lens := make([]int, len(paths))
	maxDepth := 0
	for i, p := range paths {
		tokens[i] = strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' })
		lens[i] = 1
		maxDepth = max(maxDepth, len(tokens[i]))
	}
	lastN := func(t []string, n int) string { return strings.Join(t[max(0, len(t)-n):], "/") }
	for depth := 0; ; depth++ {
		collision := false
		names := map[string]int{}
		for i, t := range tokens {
			name := lastN(t, lens[i])
			j, seen := names[name]
			names[name] = i
			if seen {
				collision = true
				if j >= 0 {
					lens[j]++
				}
				lens[i]++
				names[name] = -1 // taken, but later clashes do not lengthen i again
			}
		}
		if !collision || depth >= maxDepth {
			break
		}
	}
	out := make([]string, len(paths))
	for i, t := range tokens {
		out[i] = lastN(t, lens[i])
	}
	return out
}

// serveArtifact answers …/N/artifact<p> the way DirectoryBrowserSupport
// does for an archive on the controller without a resource root URL: the
// file with a CSP header, a redirect that adds "/" to a directory, a
// listing for a directory with "/", 400 for "..", and 404 otherwise
// (including before the build has archived anything).
func (s *Server) serveArtifact(w http.ResponseWriter, r *http.Request, b *build, p string) {
	if strings.Contains(strings.ReplaceAll(p, `\`, "/")+"/", "/../") {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var files map[string][]byte
	if b.finished != nil {
		files = b.finished.Artifacts
	}
	rel := strings.TrimPrefix(p, "/")
	if data, ok := files[rel]; ok && rel != "" {
		w.Header().Set("Content-Type", contentType(rel))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Header().Set("Content-Security-Policy", "sandbox allow-same-origin; default-src 'none'; img-src 'self'; style-src 'self';")
		_, _ = w.Write(data)
		return
	}
	dir := strings.TrimSuffix(rel, "/")
	var kids []string
	for f := range files {
		if dir == "" || strings.HasPrefix(f, dir+"/") {
			kid, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(f, dir), "/"), "/")
			kids = append(kids, kid)
		}
	}
	switch {
	case len(kids) == 0:
		http.NotFound(w, r)
	case !strings.HasSuffix(r.URL.Path, "/"):
		// Jenkins redirects to the absolute request URL plus "/".
		w.Header().Set("Location", strings.TrimSuffix(s.base(r), "/")+r.URL.EscapedPath()+"/")
		w.WriteHeader(http.StatusFound)
	default:
		slices.Sort(kids)
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		var sb strings.Builder
		sb.WriteString("<html><body><table class=\"fileList\">")
		for _, k := range slices.Compact(kids) {
			sb.WriteString("<tr><td><a href=\"" + html.EscapeString(k) + "\">" + html.EscapeString(k) + "</a></td></tr>")
		}
		sb.WriteString("</table></body></html>")
		_, _ = w.Write([]byte(sb.String()))
	}
}

// contentType follows DirectoryBrowserSupport: a text type gets
// charset=UTF-8. The table stands in for the servlet container's.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".txt", ".log", ".properties":
		return "text/plain;charset=UTF-8"
	case ".html":
		return "text/html;charset=UTF-8"
	case ".json":
		return "application/json"
	case ".xml":
		return "application/xml"
	default:
		return "application/octet-stream"
	}
}
