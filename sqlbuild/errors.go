package sqlbuild

import (
	"errors"
	"strings"
)

// ErrInvalid marks a query the builder refuses. The message is safe to send
// to the client: it names the place in the query and what is wrong there.
var ErrInvalid = errors.New("invalid query")

// QueryError is a refusal at a place in the query, written as a path:
// query.$select.$where.pid.$foo: unknown operator "$foo".
type QueryError struct {
	Path string
	Msg  string
	// Forbidden is set when the query reaches outside the caller's Scope.
	Forbidden bool
}

func (e *QueryError) Error() string { return e.Path + ": " + e.Msg }

// Unwrap makes every QueryError match ErrInvalid, and those of a query out
// of scope ErrForbidden too.
func (e *QueryError) Unwrap() []error {
	if e.Forbidden {
		return []error{ErrInvalid, ErrForbidden}
	}
	return []error{ErrInvalid}
}

// path is the place in the query being translated. It is a value type:
// appending makes a new path and leaves the caller's intact.
type path []string

func (p path) with(key string) path {
	next := make(path, len(p), len(p)+1)
	copy(next, p)
	return append(next, key)
}

func (p path) String() string { return strings.Join(p, ".") }

func (p path) errorf(msg string) error { return &QueryError{Path: p.String(), Msg: msg} }
