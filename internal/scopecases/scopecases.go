// Package scopecases holds the queries that try to read past a caller's
// scope from every place a query reads a table (positions.json), for the
// tests of each layer that runs them: sqlbuild, the HTTP gateway and
// `eventsource sql`.
package scopecases

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed positions.json
var positionsJSON []byte

// Event is a row every test seeds.
type Event struct {
	Pid    string          `json:"pid"`
	Domain string          `json:"domain"`
	Name   string          `json:"name"`
	Data   json.RawMessage `json:"data"`
}

// Position is one query and what a caller that reads domain "a" only
// must get from it: "some" rows of domain a, or "none".
type Position struct {
	Name, Want string
	// Query names the event table {{table}}; see Text.
	Query json.RawMessage
}

// Text is the query with table for {{table}}.
func (p Position) Text(table string) string {
	return strings.ReplaceAll(string(p.Query), "{{table}}", table)
}

// Cases are the seed rows, the positions, and the strings no result may
// hold.
type Cases struct {
	Events    []Event
	Hidden    []string
	Positions []Position
}

// Load decodes positions.json.
func Load() (Cases, error) {
	var c Cases
	if err := json.Unmarshal(positionsJSON, &c); err != nil {
		return Cases{}, fmt.Errorf("scopecases: positions.json: %w", err)
	}
	return c, nil
}

// Check says what is wrong with the rows (each rendered as text) that a
// position returned, or nil.
func (c Cases) Check(p Position, rows []string) error {
	for _, row := range rows {
		for _, h := range c.Hidden {
			if strings.Contains(row, h) {
				return fmt.Errorf("row %q shows %q, outside the scope", row, h)
			}
		}
	}
	switch {
	case p.Want == "some" && len(rows) == 0:
		return fmt.Errorf("no rows, want some of domain a")
	case p.Want == "none" && len(rows) > 0:
		return fmt.Errorf("rows %q, want none", rows)
	}
	return nil
}
