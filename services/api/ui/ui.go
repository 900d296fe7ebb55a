// Package ui is the investigation console: static assets embedded in the
// binary and served by the API process under /ui/. The console calls the
// public /api/v1 routes from the browser with the tenant key the user
// signed in with; the server holds no session.
package ui

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Prefix is where the console is mounted.
const Prefix = "/ui/"

// shell is the page every console path answers: the views are drawn by
// the script from the path. Its base is relative to the request's path, so
// the console works unchanged behind a proxy that mounts it under another
// prefix.
var shell = template.Must(template.ParseFS(static, "static/index.html"))

// Handler serves the console: /ui/assets/… from the embedded files, every
// other path under /ui/ the shell.
func Handler() http.Handler {
	assets, err := fs.Sub(static, "static/assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(Prefix+"assets/", http.FileServer(http.FS(assets)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w.Header())
		rest := strings.TrimPrefix(r.URL.Path, Prefix)
		if strings.HasPrefix(rest, "assets/") {
			w.Header().Set("Cache-Control", "no-cache") // revalidated: assets change with the binary
			files.ServeHTTP(w, r)
			return
		}
		var buf bytes.Buffer
		if err := shell.Execute(&buf, struct{ Base string }{baseFor(rest)}); err != nil {
			http.Error(w, "console unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	})
}

// baseFor is the relative URL of the console's root seen from the path
// rest (below /ui/): "./" at the root, "../" one level down, and so on.
func baseFor(rest string) string {
	depth := strings.Count(rest, "/") // the browser resolves against the last slash of the path as sent
	if depth == 0 {
		return "./"
	}
	return strings.Repeat("../", depth)
}

// secure sets the headers of every console answer: scripts, styles and
// connections only from this origin, no framing, no referrer (paths hold
// ids), no content sniffing.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}
