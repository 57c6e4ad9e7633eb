package gateway

import "net/http"

// webHandler serves the page, /client.js and /static/ (package
// gateway/web), or nil while there is none.
func webHandler() http.Handler { return nil }
