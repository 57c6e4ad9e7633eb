package gateway

import (
	"net/http"

	"github.com/eventsource/eventsource/gateway/web"
)

// webHandler serves the page, /client.js and /static/ (package
// gateway/web).
func webHandler() http.Handler { return web.Handler() }
