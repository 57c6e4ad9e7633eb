package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// apiError is what a client is told: a status, a short code and a message
// that says what is wrong and where. Anything else is internal and only
// logged.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "bad_request", format, args...)
}

func forbidden(format string, args ...any) *apiError {
	return newError(http.StatusForbidden, "forbidden", format, args...)
}

func notFound(format string, args ...any) *apiError {
	return newError(http.StatusNotFound, "not_found", format, args...)
}

func tooMany(format string, args ...any) *apiError {
	return newError(http.StatusTooManyRequests, "too_many", format, args...)
}

func unavailable(format string, args ...any) *apiError {
	return newError(http.StatusServiceUnavailable, "unavailable", format, args...)
}

var errUnauthorized = newError(http.StatusUnauthorized, "unauthorized", "a bearer token is required")

// writeError answers err as JSON; an error that is not an *apiError is
// logged and answered as internal, without its text.
func writeError(w http.ResponseWriter, logger *slog.Logger, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		logger.Error("http request failed", slog.String("reason", "internal"), slog.Any("err", err))
		ae = newError(http.StatusInternalServerError, "internal", "internal error")
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventsource"`)
	}
	if ae.status == http.StatusTooManyRequests || ae.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ae.status, struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{ae.msg, ae.code})
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may be gone; nothing to do then
}
