package client

import (
	"errors"

	"github.com/eventsource/eventsource/messages"
)

var (
	// ErrTimeout means the server sent "timeout": the client did not
	// accept a row within the server's acceptance timeout.
	ErrTimeout = errors.New("server timed out waiting for accepted")
	// ErrServer means the server sent "error". Errors returned for it are
	// *ServerError values, which match ErrServer with errors.Is.
	ErrServer = errors.New("server error")
	// ErrNoServer means nobody is subscribed to the request channel, so the
	// request was heard by no server.
	ErrNoServer = errors.New("no server subscribed to the request channel")
	// ErrClosed means the Client was closed before or during the call.
	ErrClosed = errors.New("client closed")
	// ErrInterrupted means the subscriber connection to Redis failed during
	// the call, so messages on its response channel may have been lost.
	ErrInterrupted = errors.New("redis subscriber connection interrupted")
	// ErrProtocol means the response channel carried something the protocol
	// does not allow, such as more rows than the window.
	ErrProtocol = errors.New("protocol violation on the response channel")
	// ErrInvalidQuery means the query is not a JSON object; nothing was sent.
	ErrInvalidQuery = errors.New("query must be a JSON object")
	// ErrNoDocuments means Persist was called without documents.
	ErrNoDocuments = errors.New("no documents to persist")
	// ErrConflict means a persist met what is stored: its stream was not at
	// the expected version, or one of its event ids is stored with other
	// content; nothing of it was stored. Errors returned for it are
	// *ServerError values with Reason ReasonConflict and the
	// server's Message, which match ErrServer as well. It is
	// messages.ErrConflict, so that either matches.
	ErrConflict = messages.ErrConflict
	// ErrBusy means a fetch named a durable consumer (WithConsumer) that
	// another fetch is streaming, or that the server has not yet released
	// after the last one ended; no row was sent. Errors returned for it
	// are *ServerError values with Reason ReasonBusy, which match
	// ErrServer as well. It is messages.ErrBusy, so that either matches.
	ErrBusy = messages.ErrBusy
)

// Reason is why the server ended a request with an error, as a
// *ServerError carries it. It is the server's own type (messages.Reason),
// so the constants here and the server's compare equal.
type Reason = messages.Reason

// The reasons a server gives; see ServerError.
const (
	// ReasonBadRequest: the request or its query is invalid.
	ReasonBadRequest = messages.ReasonBadRequest
	// ReasonRefused: the server will not take the request now (its limit
	// of streams, or draining for shutdown); try again.
	ReasonRefused = messages.ReasonRefused
	// ReasonTimeout: the server got no "accepted" in time (ErrTimeout).
	ReasonTimeout = messages.ReasonTimeout
	// ReasonConflict: a persist met what is stored (ErrConflict).
	ReasonConflict = messages.ReasonConflict
	// ReasonBusy: the durable consumer is being served (ErrBusy).
	ReasonBusy = messages.ReasonBusy
	// ReasonDB: the database failed to run the statement.
	ReasonDB = messages.ReasonDB
	// ReasonUnavailable: the server lost Redis mid-stream.
	ReasonUnavailable = messages.ReasonUnavailable
	// ReasonShutdown: the server is stopping.
	ReasonShutdown = messages.ReasonShutdown
	// ReasonStopped: an operator stopped the stream.
	ReasonStopped = messages.ReasonStopped
	// ReasonInternal: anything else.
	ReasonInternal = messages.ReasonInternal
)

// ServerError is the "error" terminal. Reason and Message are set only when
// the request asked for reasons: a Fetch of a client built WithReason,
// every Follow, every fetch WithConsumer, and every persist; otherwise
// both are empty.
type ServerError struct {
	Reason Reason
	// Message explains the reason; it is safe to show, and never carries
	// the database's error text.
	Message string
}

func (e *ServerError) Error() string {
	switch {
	case e.Reason == "":
		return ErrServer.Error()
	case e.Message == "":
		return ErrServer.Error() + ": " + string(e.Reason)
	}
	return ErrServer.Error() + ": " + string(e.Reason) + ": " + e.Message
}

// Is makes every ServerError match ErrServer, one whose reason is a timeout
// match ErrTimeout as well, one whose reason is a conflict ErrConflict,
// and one whose reason is busy ErrBusy, so callers can test either way.
func (e *ServerError) Is(target error) bool {
	switch target {
	case ErrServer:
		return true
	case ErrTimeout:
		return e.Reason == ReasonTimeout
	case ErrConflict:
		return e.Reason == ReasonConflict
	case ErrBusy:
		return e.Reason == ReasonBusy
	}
	return false
}
