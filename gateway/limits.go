package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// readBody reads a JSON request body of at most MaxBodyBytes, within the
// body deadline admission set.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	max := g.cfg.MaxBodyBytes
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return nil, newError(http.StatusRequestEntityTooLarge, "too_large", "request body exceeds %d bytes", max)
		case bodyTimedOut(err):
			g.adm.count(limitBodyTimeout)
			return nil, newError(http.StatusRequestTimeout, "timeout", "request body not received within %s", g.cfg.ReadBodyTimeout)
		}
		return nil, badRequest("read request body: %v", err)
	}
	// The body is in: what the handler does next may take longer than
	// the deadline, and must not be cut by it.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	if len(body) == 0 {
		return nil, badRequest("request body is empty: want JSON")
	}
	return body, nil
}

// decodeStrict decodes body into v, refusing unknown fields and trailing
// data, and names the problem for the client.
func decodeStrict(body []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("%s: %s", what, jsonProblem(err))
	}
	if dec.More() {
		return badRequest("%s: unexpected data after the JSON value", what)
	}
	return nil
}

// jsonProblem rewords encoding/json's errors for clients.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%q must be %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("must be %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "int", "int64", "uint64", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return goKind
}
