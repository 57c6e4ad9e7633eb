package messages

import (
	"encoding/json"
	"errors"
)

// Reason says why a stream or request ended in "error" or was refused. Logs
// and metrics always carry it; the wire carries it only for clients that set
// Request.Reason, so that the default bytes stay the original's.
type Reason string

const (
	// ReasonBadRequest: the request or its query is invalid.
	ReasonBadRequest Reason = "bad_request"
	// ReasonRefused: the server will not take the request now (admission
	// limit, draining for shutdown).
	ReasonRefused Reason = "refused"
	// ReasonTimeout: no "accepted" within the acceptance timeout.
	ReasonTimeout Reason = "timeout"
	// ReasonConflict: a persist met what is stored: its expected version is
	// not its stream's, or one of its event ids is stored with other
	// content. Nothing of it was stored.
	ReasonConflict Reason = "conflict"
	// ReasonBusy: the durable consumer is being served by another stream.
	ReasonBusy Reason = "busy"
	// ReasonDB: the database failed to run the statement.
	ReasonDB Reason = "db"
	// ReasonUnavailable: Redis dropped the connection mid-stream.
	ReasonUnavailable Reason = "unavailable"
	// ReasonShutdown: the server is stopping.
	ReasonShutdown Reason = "shutdown"
	// ReasonStopped: an operator stopped the stream.
	ReasonStopped Reason = "stopped"
	// ReasonInternal: anything else, such as a panic in a stream actor.
	ReasonInternal Reason = "internal"
)

// ErrorReply is the opt-in form of the "error" terminal. Sent by the server,
// received by clients that asked for reasons; on the wire. Message is safe to
// show: it never carries database error text.
type ErrorReply struct {
	Error   Reason `json:"error"`
	Message string `json:"message,omitempty"`
}

// ErrorPayload encodes the "error" terminal for a client: the original bytes,
// or an ErrorReply when the client opted in.
func ErrorPayload(withReason bool, reason Reason, message string) []byte {
	if !withReason {
		return ErrorJSON
	}
	b, err := json.Marshal(ErrorReply{Error: reason, Message: message})
	if err != nil { // cannot happen for these field types
		return ErrorJSON
	}
	return b
}

// Ending records how a stream ended, for logs and metrics.
type Ending string

const (
	EndingComplete  Ending = "end"        // all rows sent and "end" published
	EndingClientEnd Ending = "client_end" // the client published "end"
	EndingTimeout   Ending = "timeout"    // "timeout" published
	EndingError     Ending = "error"      // "error" published
)

// ErrConflict marks a persist refused for what is stored (ReasonConflict).
var ErrConflict = errors.New("conflict")

// ConflictError is a persist's conflict with what is stored; Message is
// safe to show a client (it names versions and event ids, never database
// text).
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string        { return "conflict: " + e.Message }
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ErrBusy marks a durable consumer that another stream holds
// (ReasonBusy).
var ErrBusy = errors.New("busy")

// ErrConsumerLost tells a stream that it no longer holds its durable
// consumer: its lease ran out and another stream took it, or an operator
// reset or deleted it. The stream must stop recording positions.
var ErrConsumerLost = errors.New("consumer lost: another stream holds it now")
