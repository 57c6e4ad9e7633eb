package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/eventsource/eventsource/ordjson"
)

// argError is a flag whose value is wrong: a misuse, for which main exits
// 2 (it wraps errUsage). Its text is one line, "--query: <what is wrong>".
type argError struct {
	flag    string
	problem string
}

func (e *argError) Error() string { return "--" + e.flag + ": " + e.problem }

func (e *argError) Unwrap() error { return errUsage }

// parseQueryArg checks the JSON query given in flag --flagName before
// anything is built or sent: it must be one JSON object that the server's
// decoder reads (no duplicate keys). It returns the object's text, or an
// *argError that says what is wrong and, for a syntax error, at which byte
// of the text (counted from 1): "--query: unexpected end of JSON input (at
// byte 11)". Report it with reportArgError.
func parseQueryArg(flagName, text string) (json.RawMessage, error) {
	raw := []byte(text)
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, &argError{flagName, "is empty: want a JSON object"}
	}
	var checked json.RawMessage
	if err := json.Unmarshal(raw, &checked); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, &argError{flagName, fmt.Sprintf("%s (at byte %d)", syntax, syntax.Offset)}
		}
		return nil, &argError{flagName, err.Error()}
	}
	// What encoding/json accepts the server's decoder may not (a key twice).
	v, err := ordjson.Decode(raw, ordjson.Limits{})
	if err != nil {
		return nil, &argError{flagName, err.Error()}
	}
	if v.Kind != ordjson.Object {
		return nil, &argError{flagName, fmt.Sprintf("a JSON %s, not an object", v.Kind)}
	}
	return json.RawMessage(bytes.TrimSpace(raw)), nil
}

// reportArgError prints a misuse found after the flags were parsed as one
// line, "eventsource <command>: <err>", without the whole usage, and
// returns err (exit 2 when it is an *argError).
func reportArgError(fs *flag.FlagSet, err error) error {
	fmt.Fprintf(fs.Output(), "eventsource %s: %v\n", fs.Name(), err)
	return err
}
