// Package web is the gateway's page and browser client library, embedded in
// the binary: no build step, plain HTML, CSS and JavaScript.
package web

import (
	"embed"
	"net/http"
)

//go:embed index.html client.js static
var files embed.FS

// Handler serves the page at /, the client library at /client.js and the
// page's assets under /static/. The page and the library are revalidated on
// every load (a new binary may bring new ones); they are small.
func Handler() http.Handler {
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/" {
			w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'")
			http.ServeFileFS(w, r, files, "index.html")
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}
