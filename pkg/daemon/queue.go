package daemon

import (
	"context"
	"sync"
	"time"
)

// Queue holds the namespaces that need a reconcile. It is a set, not a
// channel: marking a namespace that is already waiting costs nothing and
// loses nothing. A namespace becomes due once no mark has come for the
// quiet period (or, under continuous churn, after maxDelay), and is handed
// to one worker at a time; a mark that arrives while it is being worked on
// makes it due again afterwards.
type Queue struct {
	quiet, maxDelay time.Duration

	mu       sync.Mutex
	waiting  map[string]*mark
	inFlight map[string]bool
	again    map[string]bool // marked while in flight
	changed  chan struct{}   // closed and replaced on every change
	// scheduled counts marks that After will make later.
	scheduled int
}

type mark struct{ first, last time.Time }

// NewQueue returns an empty queue.
func NewQueue(quiet, maxDelay time.Duration) *Queue {
	return &Queue{
		quiet: quiet, maxDelay: maxDelay,
		waiting: map[string]*mark{}, inFlight: map[string]bool{}, again: map[string]bool{},
		changed: make(chan struct{}),
	}
}

func (q *Queue) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// Mark records that key needs a reconcile.
func (q *Queue) Mark(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	if q.inFlight[key] {
		q.again[key] = true
		return
	}
	if m, ok := q.waiting[key]; ok {
		m.last = now
	} else {
		q.waiting[key] = &mark{first: now, last: now}
	}
	q.notify()
}

// MarkNow records that key needs a reconcile without a quiet period.
func (q *Queue) MarkNow(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inFlight[key] {
		q.again[key] = true
		return
	}
	past := time.Now().Add(-q.maxDelay - q.quiet)
	q.waiting[key] = &mark{first: past, last: past}
	q.notify()
}

// Len returns how many keys are waiting or in flight.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting) + len(q.inFlight)
}

// Next blocks until a key is due and returns it, marked in flight; false
// when ctx ends. Every key returned must be given back with Done.
func (q *Queue) Next(ctx context.Context) (string, bool) {
	for {
		q.mu.Lock()
		now := time.Now()
		var best string
		var bestDue, soonest time.Time
		for key, m := range q.waiting {
			due := m.last.Add(q.quiet)
			if cap := m.first.Add(q.maxDelay); cap.Before(due) {
				due = cap
			}
			if !due.After(now) {
				if best == "" || due.Before(bestDue) || due.Equal(bestDue) && key < best {
					best, bestDue = key, due
				}
			} else if soonest.IsZero() || due.Before(soonest) {
				soonest = due
			}
		}
		if best != "" {
			delete(q.waiting, best)
			q.inFlight[best] = true
			q.mu.Unlock()
			return best, true
		}
		changed := q.changed
		q.mu.Unlock()

		var timer *time.Timer
		var fire <-chan time.Time
		if !soonest.IsZero() {
			timer = time.NewTimer(soonest.Sub(now))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return "", false
		}
	}
}

// Done gives key back after its reconcile; when it was marked meanwhile
// it is due again (after the quiet period).
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, key)
	if q.again[key] {
		delete(q.again, key)
		now := time.Now()
		q.waiting[key] = &mark{first: now, last: now}
	}
	q.notify()
}

// After marks key once d has passed (for retries with backoff), unless ctx
// ends first.
func (q *Queue) After(ctx context.Context, key string, d time.Duration) {
	q.mu.Lock()
	q.scheduled++
	q.mu.Unlock()
	t := time.NewTimer(d)
	go func() {
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			q.MarkNow(key)
		}
		q.mu.Lock()
		q.scheduled--
		q.mu.Unlock()
	}()
}

// Scheduled returns how many marks After will still make.
func (q *Queue) Scheduled() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.scheduled
}
