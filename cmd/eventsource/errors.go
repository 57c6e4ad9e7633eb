package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"regexp"

	"github.com/redis/go-redis/v9"

	"github.com/eventsource/eventsource/client"
	"github.com/eventsource/eventsource/messages"
)

// userError is an error as the CLI words it for the user; it unwraps to
// the error it describes, so errors.Is still finds the client's sentinels.
type userError struct {
	msg string
	err error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

// reasonText says in words what each reason of an "error" terminal means.
var reasonText = map[messages.Reason]string{
	messages.ReasonBadRequest:  "the server refused the request",
	messages.ReasonRefused:     "the server turned the request away (at its limit of streams, or shutting down); try again",
	messages.ReasonTimeout:     "the server gave up waiting for this client to take a row",
	messages.ReasonConflict:    "conflict, nothing stored",
	messages.ReasonBusy:        "the consumer is busy: another fetch streams it, or the last one has just ended; try again",
	messages.ReasonDB:          "the database failed",
	messages.ReasonUnavailable: "the server lost its connection to Redis",
	messages.ReasonShutdown:    "the server shut down",
	messages.ReasonStopped:     "an operator stopped the stream",
	messages.ReasonInternal:    "the server failed",
}

// privateChannel matches the "fetch <response channel>: " that the client
// puts before its errors: the channel is the client's own business.
var privateChannel = regexp.MustCompile(`^(fetch|follow|persist) \S+: `)

// clientError words an error of a client call (fetch, persist) for the
// user: the server's reason and message, or what to do about a missing
// server or Redis, and never the private response channel the client's
// errors name. fs is the command's flag set (its name starts the
// message), conn its Redis flags, and channelFlag the name of its request
// channel flag ("fetch-channel", "persist-channel"). A nil err gives nil.
func clientError(fs *flag.FlagSet, conn *redisFlags, channelFlag string, err error) error {
	if err == nil {
		return nil
	}
	cmd := fs.Name()
	// A persist that failed on the way may have committed all the same.
	mayBeStored := ""
	if cmd == "persist" {
		mayBeStored = "; the event may have been stored: with --event-id, running the command again is safe"
	}
	var serr *client.ServerError
	var nerr *net.OpError
	var rerr redis.Error
	var msg string
	switch {
	case errors.As(err, &serr):
		msg = serverErrorText(serr)
		switch serr.Reason {
		case messages.ReasonBadRequest, messages.ReasonRefused, messages.ReasonConflict, messages.ReasonBusy:
			// Nothing was written.
		default:
			msg += mayBeStored
		}
	case errors.Is(err, client.ErrNoServer):
		on := conn.addr
		if f := fs.Lookup(channelFlag); f != nil && f.Value.String() != f.DefValue {
			on += fmt.Sprintf(" with --%s %s", channelFlag, f.Value)
		}
		msg = fmt.Sprintf("no eventsource server answered: is eventsource serve running on %s?", on)
	case errors.Is(err, client.ErrTimeout):
		msg = reasonText[messages.ReasonTimeout]
	case errors.Is(err, context.DeadlineExceeded) && conn.timeout > 0:
		msg = fmt.Sprintf("no answer within --timeout %s", conn.timeout) + mayBeStored
	case errors.Is(err, context.Canceled):
		msg = "interrupted" + mayBeStored
	case errors.Is(err, client.ErrInterrupted):
		msg = fmt.Sprintf("the connection to Redis at %s broke during the request", conn.addr) + mayBeStored
	case errors.Is(err, client.ErrProtocol):
		msg = "the server's answer broke the protocol (is it of another version?)" + mayBeStored
	case errors.Is(err, client.ErrInvalidQuery):
		msg = "the query is not a JSON object"
	case errors.As(err, &nerr):
		msg = fmt.Sprintf("cannot reach Redis at %s (%v): is Redis running there? (--redis, or REDIS_HOST and REDIS_PORT)", conn.addr, nerr.Err)
	case errors.As(err, &rerr):
		// NOAUTH, WRONGPASS and the like: Redis's own words are clear.
		msg = fmt.Sprintf("Redis at %s answered: %v", conn.addr, rerr)
	default:
		// Unknown: the client's words, less the channel.
		return &userError{msg: privateChannel.ReplaceAllString(err.Error(), "$1: "), err: err}
	}
	return &userError{msg: cmd + ": " + msg, err: err}
}

// serverErrorText is an "error" terminal in words: what its reason means,
// the reason itself (scripts and searches look for it), and the server's
// message, which is safe to show.
func serverErrorText(e *client.ServerError) string {
	if e.Reason == "" {
		return "the server failed the request (it gave no reason)"
	}
	text, ok := reasonText[e.Reason]
	if !ok {
		text = "the server failed the request"
	}
	if e.Reason == messages.ReasonConflict {
		// "conflict" is in the words already.
		return text + ": " + cmp.Or(e.Message, string(e.Reason))
	}
	s := text + " (" + string(e.Reason) + ")"
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}
