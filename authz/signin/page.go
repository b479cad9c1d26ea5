package signin

import (
	"bytes"
	"crypto/subtle"
	"html/template"
	"net/http"
	"time"
)

// cookieName is the cookie that binds a browser to the sign-in it started.
const cookieName = "deploybot_oidc_state"

// pageHTML is every page the browser sees. html/template escapes the title
// and message, which may quote the provider's error parameters.
const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>deploybot — {{.Title}}</title>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
</body>
</html>
`

func parsePage() (*template.Template, error) {
	return template.New("page").Parse(pageHTML)
}

// page answers with a small HTML page. Cache-Control is set by the handler.
func (f *Flow) page(w http.ResponseWriter, status int, title, msg string) {
	var buf bytes.Buffer
	if err := f.tmpl.Execute(&buf, struct{ Title, Message string }{title, msg}); err != nil {
		f.log.Error("signin: render page", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// cookieSpec says how the binding cookie is set: under the callback's
// directory (/oidc), Secure when the callback is https, and never for longer
// than a sign-in link lives.
type cookieSpec struct {
	path   string
	secure bool
	maxAge time.Duration
}

func (c cookieSpec) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     cookieName,
		Value:    value,
		Path:     c.path,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// set binds the browser to state for left (at least a second, at most the
// state TTL).
func (c cookieSpec) set(w http.ResponseWriter, state string, left time.Duration) {
	left = min(max(left, time.Second), c.maxAge)
	http.SetCookie(w, c.cookie(state, int(left.Seconds())))
}

// clear tells the browser to forget the binding.
func (c cookieSpec) clear(w http.ResponseWriter) {
	http.SetCookie(w, c.cookie("", -1))
}

// matches reports whether r carries the binding cookie for state.
func (c cookieSpec) matches(r *http.Request, state string) bool {
	got, err := r.Cookie(cookieName)
	if err != nil || state == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got.Value), []byte(state)) == 1
}
