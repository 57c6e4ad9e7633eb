package gateway

import (
	"maps"
	"sync"
	"time"

	"github.com/eventsource/eventsource/ordjson"
)

// listener is one subscription: a GET /events stream, or one key of a
// session. Its callbacks run on the hub's caller (the commit reader, the
// ticker, a session changing its keys) and must never block.
type listener struct {
	key     listenKey
	session string // the owning session; "" for GET /events
	// canRead, for a token limited to some domains (nil: all), filters
	// what a pid key delivers down to readable domains, and what
	// listeners-changed shows.
	canRead func(domain string) bool
	// event delivers a matching event (event keys).
	event func(*listener, *Event)
	// server delivers a tick or listeners-changed payload.
	server func(*listener, []byte)
	// lost says that commit notifications were lost, so the live feed has
	// a hole (nil: nothing to do).
	lost func(reason string)
}

// hub indexes listeners by domain and pid and fans events out to them.
// Readers (the fan-out) share the lock; adding and removing take it alone.
type hub struct {
	mu        sync.RWMutex
	byDomain  map[string]map[*listener]struct{}
	byPid     map[string]map[*listener]struct{}
	ticks     map[*listener]struct{}
	watchers  map[*listener]struct{} // listeners-changed
	sessions  int
	keys      map[string]int // session keys and how many sessions listen to each
	bySession map[string]map[*listener]struct{}
}

func newHub() *hub {
	return &hub{
		byDomain: map[string]map[*listener]struct{}{}, byPid: map[string]map[*listener]struct{}{},
		ticks: map[*listener]struct{}{}, watchers: map[*listener]struct{}{}, keys: map[string]int{},
		bySession: map[string]map[*listener]struct{}{},
	}
}

func (h *hub) set(l *listener) (index map[string]map[*listener]struct{}, at string, flat map[*listener]struct{}) {
	switch l.key.kind {
	case keyDomain:
		return h.byDomain, l.key.f.domain, nil
	case keyPid:
		return h.byPid, l.key.f.pid, nil
	case keyTick:
		return nil, "", h.ticks
	default:
		return nil, "", h.watchers
	}
}

// add registers l; from now on it hears what matches.
func (h *hub) add(l *listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	index, at, flat := h.set(l)
	if index != nil {
		if index[at] == nil {
			index[at] = map[*listener]struct{}{}
		}
		index[at][l] = struct{}{}
	} else {
		flat[l] = struct{}{}
	}
	if l.session != "" {
		if h.bySession[l.session] == nil {
			h.bySession[l.session] = map[*listener]struct{}{}
		}
		h.bySession[l.session][l] = struct{}{}
		h.keys[l.key.raw]++
		h.listenersChanged()
	}
}

// remove unregisters l; it is safe to call twice.
func (h *hub) remove(l *listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(l)
}

// removeSession unregisters every listener of a session.
func (h *hub) removeSession(session string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.bySession[session] {
		h.removeLocked(l)
	}
}

func (h *hub) removeLocked(l *listener) {
	index, at, flat := h.set(l)
	if index != nil {
		if _, ok := index[at][l]; !ok {
			return
		}
		delete(index[at], l)
		if len(index[at]) == 0 {
			delete(index, at)
		}
	} else {
		if _, ok := flat[l]; !ok {
			return
		}
		delete(flat, l)
	}
	if l.session != "" {
		delete(h.bySession[l.session], l)
		if len(h.bySession[l.session]) == 0 {
			delete(h.bySession, l.session)
		}
		if h.keys[l.key.raw]--; h.keys[l.key.raw] <= 0 {
			delete(h.keys, l.key.raw)
		}
		h.listenersChanged()
	}
}

// sessionOpened and sessionClosed keep the session count of
// listeners-changed.
func (h *hub) sessionOpened() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sessions++
	h.listenersChanged()
}

func (h *hub) sessionClosed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sessions--
	h.listenersChanged()
}

// listenersChanged tells the watchers. h.mu held.
func (h *hub) listenersChanged() {
	if len(h.watchers) == 0 {
		return
	}
	var all []byte // the payload of watchers that read every domain
	for l := range h.watchers {
		if l.canRead == nil {
			if all == nil {
				all = listenersPayload(h.sessions, maps.Clone(h.keys))
			}
			l.server(l, all)
			continue
		}
		l.server(l, listenersPayload(h.sessions, visibleKeys(h.keys, l.canRead)))
	}
}

// visibleKeys are the keys a watcher that reads only some domains may see:
// those of its domains, and the server's own. A pid key says nothing of
// its domain, and may name another subject's customer: it is left out.
func visibleKeys(keys map[string]int, canRead func(string) bool) map[string]int {
	out := map[string]int{}
	for raw, n := range keys {
		k, err := parseKey(raw)
		switch {
		case err != nil, k.kind == keyPid:
		case k.kind == keyDomain && !canRead(k.f.domain):
		default:
			out[raw] = n
		}
	}
	return out
}

func listenersPayload(sessions int, keys map[string]int) []byte {
	payload, _ := jsonMarshal(struct {
		Key      string         `json:"key"`
		Sessions int            `json:"sessions"`
		Keys     map[string]int `json:"keys"`
	}{listenersChangedKey, sessions, keys})
	return payload
}

// dispatch hands each event to the listeners it matches.
func (h *hub) dispatch(events []*Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, ev := range events {
		for l := range h.byDomain[ev.Domain] {
			if l.key.f.match(ev) {
				l.event(l, ev)
			}
		}
		for l := range h.byPid[ev.Pid] {
			if l.canRead == nil || l.canRead(ev.Domain) {
				l.event(l, ev)
			}
		}
	}
}

// hasEventListeners reports whether any listener waits for events.
func (h *hub) hasEventListeners() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.byDomain) > 0 || len(h.byPid) > 0
}

// tick sends the time to the tick listeners.
func (h *hub) tick(now time.Time) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.ticks) == 0 {
		return
	}
	payload := []byte(`{"key":"tick","time":`)
	payload = ordjson.AppendString(payload, now.UTC().Format(time.RFC3339Nano))
	payload = append(payload, '}')
	for l := range h.ticks {
		l.server(l, payload)
	}
}

// lose tells every event listener that its live feed has a hole.
func (h *hub) lose(reason string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, index := range []map[string]map[*listener]struct{}{h.byDomain, h.byPid} {
		for _, set := range index {
			for l := range set {
				if l.lost != nil {
					l.lost(reason)
				}
			}
		}
	}
}

// Listeners counts the hub's listeners (streams and session keys) and
// sessions, for tests and operators.
func (g *Gateway) Listeners() (listeners, sessions int) {
	h := g.hub
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, set := range h.byDomain {
		listeners += len(set)
	}
	for _, set := range h.byPid {
		listeners += len(set)
	}
	return listeners + len(h.ticks) + len(h.watchers), h.sessions
}
