package bench

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress shows how a run goes. Start begins a phase that counts to total
// rows or persists, or, when total is 0, runs for the duration until;
// Update reports what is done (rows and persists, or milliseconds) with a
// detail such as the current rate; Done ends the phase with a summary;
// Note says anything else. Calls come from one goroutine at a time.
type Progress interface {
	Start(label string, total int64, until time.Duration)
	Update(done int64, detail string)
	Done(summary string)
	Note(msg string)
}

// NewBar returns a progress bar drawn on a terminal w.
func NewBar(w io.Writer) Progress { return &barProgress{w: w} }

// barProgress is called from the run's goroutine and a phase's sampler.
type barProgress struct {
	mu  sync.Mutex
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (b *barProgress) Start(label string, total int64, until time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	unit := ""
	if total <= 0 {
		total = max(int64(until/time.Millisecond), 1)
		unit = " (ms)"
	}
	b.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-28s", label+unit)),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionShowDescriptionAtLineEnd(),
	)
}

func (b *barProgress) Update(done int64, detail string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar == nil {
		return
	}
	_ = b.bar.Set64(min(done, b.bar.GetMax64()))
	b.bar.Describe(detail)
}

func (b *barProgress) Done(summary string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		_ = b.bar.Finish()
		_ = b.bar.Clear()
		b.bar = nil
	}
	fmt.Fprintln(b.w, summary)
}

func (b *barProgress) Note(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		_ = b.bar.Clear()
	}
	fmt.Fprintln(b.w, msg)
}

// NewLines returns progress as plain lines, for logs and pipes: one when a
// phase starts, one every few seconds, one when it ends.
func NewLines(w io.Writer) Progress { return &lineProgress{w: w, every: 5 * time.Second} }

type lineProgress struct {
	mu    sync.Mutex
	w     io.Writer
	every time.Duration
	label string
	total int64
	until time.Duration
	last  time.Time
}

func (l *lineProgress) Start(label string, total int64, until time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.label, l.total, l.until, l.last = label, total, until, time.Now()
	switch {
	case total > 0:
		fmt.Fprintf(l.w, "bench: %s: started, %d to go\n", label, total)
	case until > 0:
		fmt.Fprintf(l.w, "bench: %s: started, for %s\n", label, until)
	default:
		fmt.Fprintf(l.w, "bench: %s: started\n", label)
	}
}

func (l *lineProgress) Update(done int64, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.last) < l.every {
		return
	}
	l.last = time.Now()
	if l.total > 0 {
		fmt.Fprintf(l.w, "bench: %s: %d/%d (%.0f%%) %s\n", l.label, done, l.total, 100*float64(done)/float64(l.total), detail)
		return
	}
	fmt.Fprintf(l.w, "bench: %s: %s\n", l.label, detail)
}

func (l *lineProgress) Done(summary string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "bench: %s\n", summary)
}

func (l *lineProgress) Note(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "bench: %s\n", msg)
}

// noProgress shows nothing.
type noProgress struct{}

func (noProgress) Start(string, int64, time.Duration) {}
func (noProgress) Update(int64, string)               {}
func (noProgress) Done(string)                        {}
func (noProgress) Note(string)                        {}
