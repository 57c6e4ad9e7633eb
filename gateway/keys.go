package gateway

import (
	"strings"
)

// keyKind is what a listen key names.
type keyKind int

const (
	keyDomain           keyKind = iota + 1 // domain:D or domain:D/name:N
	keyPid                                 // pid:P
	keyTick                                // tick
	keyListenersChanged                    // listeners-changed
)

// Server-side keys: the server sends these on its own.
const (
	tickKey             = "tick"
	listenersChangedKey = "listeners-changed"
)

// maxKeyLen bounds a key: domain, name and pid are VARCHAR(200).
const maxKeyLen = 512

// filter selects events: a domain, optionally a name and a pid. An empty
// domain (pid keys) matches every domain.
type filter struct {
	domain, name, pid string
}

func (f filter) match(ev *Event) bool {
	return (f.domain == "" || f.domain == ev.Domain) && (f.name == "" || f.name == ev.Name) && (f.pid == "" || f.pid == ev.Pid)
}

// listenKey is a parsed session key.
type listenKey struct {
	raw  string
	kind keyKind
	f    filter
}

// parseKey reads domain:D, domain:D/name:N, pid:P, tick or listeners-changed.
func parseKey(raw string) (listenKey, error) {
	if raw == "" || len(raw) > maxKeyLen {
		return listenKey{}, badRequest("key must be 1 to %d bytes", maxKeyLen)
	}
	k := listenKey{raw: raw}
	switch {
	case raw == tickKey:
		k.kind = keyTick
	case raw == listenersChangedKey:
		k.kind = keyListenersChanged
	case strings.HasPrefix(raw, "pid:"):
		k.kind, k.f.pid = keyPid, strings.TrimPrefix(raw, "pid:")
		if k.f.pid == "" {
			return listenKey{}, badRequest("key %q: the pid is empty", raw)
		}
	case strings.HasPrefix(raw, "domain:"):
		k.kind = keyDomain
		k.f.domain, k.f.name, _ = strings.Cut(strings.TrimPrefix(raw, "domain:"), "/name:")
		if k.f.domain == "" || (strings.Contains(raw, "/name:") && k.f.name == "") {
			return listenKey{}, badRequest("key %q: want domain:D or domain:D/name:N with D and N not empty", raw)
		}
	default:
		return listenKey{}, badRequest("unknown key %q: want domain:D, domain:D/name:N, pid:P, tick or listeners-changed", raw)
	}
	return k, nil
}
