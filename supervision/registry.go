package supervision

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Registry is the live actor tree that operators inspect: every actor with
// its parent, kind, channel and the state its owner last reported.
//
// It is cheap enough to leave on under full load: an actor is added and
// removed once, under a lock; everything that changes per row is an atomic
// store into the actor's own Live, which only readers of the tree load.
type Registry struct {
	mu     sync.RWMutex
	actors map[string]*Live
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{actors: map[string]*Live{}} }

// Live is one actor's entry. Its owner updates it; anyone may read it. All
// methods are safe on a nil *Live, so actors run the same with no registry.
type Live struct {
	name, parent, kind, channel string
	started                     time.Time

	state      atomic.Pointer[string]
	rows       atomic.Int64
	credit     atomic.Int64
	unaccepted atomic.Int64
	deadline   atomic.Int64 // unix nanoseconds; 0: none
	lastError  atomic.Pointer[string]
}

// Add registers an actor and returns its entry.
func (r *Registry) Add(name, parent, kind, channel, state string) *Live {
	if r == nil {
		return nil
	}
	l := &Live{name: name, parent: parent, kind: kind, channel: channel, started: time.Now()}
	l.SetState(state)
	r.mu.Lock()
	r.actors[name] = l
	r.mu.Unlock()
	return l
}

// Remove drops an actor that stopped.
func (r *Registry) Remove(name string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.actors, name)
	r.mu.Unlock()
}

// SetState records what the actor is doing now.
func (l *Live) SetState(state string) {
	if l == nil {
		return
	}
	// Most calls repeat the state (a stream waits row after row): skip the
	// store, and the allocation of a new pointer with it.
	if cur := l.state.Load(); cur != nil && *cur == state {
		return
	}
	l.state.Store(&state)
}

// AddRows counts rows sent.
func (l *Live) AddRows(n int64) {
	if l != nil {
		l.rows.Add(n)
	}
}

// SetFlow records the credit left, the rows awaiting "accepted", and when
// the oldest of them times out (zero: none).
func (l *Live) SetFlow(credit, unaccepted int, deadline time.Time) {
	if l == nil {
		return
	}
	l.credit.Store(int64(credit))
	l.unaccepted.Store(int64(unaccepted))
	if deadline.IsZero() {
		l.deadline.Store(0)
	} else {
		l.deadline.Store(deadline.UnixNano())
	}
}

// SetError records the last error the actor met.
func (l *Live) SetError(err string) {
	if l != nil {
		l.lastError.Store(&err)
	}
}

// Entry is a snapshot of one actor, as operators see it.
type Entry struct {
	Name       string     `json:"name"`
	Parent     string     `json:"parent,omitempty"`
	Kind       string     `json:"kind"`
	State      string     `json:"state"`
	Channel    string     `json:"channel,omitempty"`
	RowsSent   int64      `json:"rows_sent"`
	Credit     int64      `json:"credit"`
	Unaccepted int64      `json:"unaccepted"`
	Deadline   *time.Time `json:"deadline,omitempty"`
	Started    time.Time  `json:"started"`
	AgeSeconds float64    `json:"age_seconds"`
	LastError  string     `json:"last_error,omitempty"`
}

func (l *Live) snapshot(now time.Time) Entry {
	e := Entry{
		Name: l.name, Parent: l.parent, Kind: l.kind, Channel: l.channel,
		RowsSent: l.rows.Load(), Credit: l.credit.Load(), Unaccepted: l.unaccepted.Load(),
		Started: l.started, AgeSeconds: now.Sub(l.started).Seconds(),
	}
	if s := l.state.Load(); s != nil {
		e.State = *s
	}
	if d := l.deadline.Load(); d != 0 {
		t := time.Unix(0, d).UTC()
		e.Deadline = &t
	}
	if s := l.lastError.Load(); s != nil {
		e.LastError = *s
	}
	return e
}

// Filter selects entries; empty fields match everything.
type Filter struct {
	Kind          string
	State         string
	ChannelPrefix string
}

func (f Filter) match(l *Live) bool {
	if f.Kind != "" && l.kind != f.Kind {
		return false
	}
	if f.ChannelPrefix != "" && !strings.HasPrefix(l.channel, f.ChannelPrefix) {
		return false
	}
	if f.State != "" {
		if s := l.state.Load(); s == nil || *s != f.State {
			return false
		}
	}
	return true
}

// List returns the entries that match, sorted by name, from offset on, at
// most limit of them (0: all), and how many matched in all.
func (r *Registry) List(f Filter, offset, limit int) (entries []Entry, total int) {
	if r == nil {
		return nil, 0
	}
	r.mu.RLock()
	matched := make([]*Live, 0, len(r.actors))
	for _, l := range r.actors {
		if f.match(l) {
			matched = append(matched, l)
		}
	}
	r.mu.RUnlock()
	sort.Slice(matched, func(i, j int) bool { return matched[i].name < matched[j].name })
	total = len(matched)
	if offset > total {
		offset = total
	}
	matched = matched[offset:]
	if limit > 0 && limit < len(matched) {
		matched = matched[:limit]
	}
	now := time.Now()
	entries = make([]Entry, len(matched))
	for i, l := range matched {
		entries[i] = l.snapshot(now)
	}
	return entries, total
}

// Len is the number of registered actors.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.actors)
}
