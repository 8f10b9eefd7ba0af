package runtime

import (
	"context"
	"sync"
	"time"
)

// ConnectTimeout bounds the making of a connection to an engine or a
// service manager, whoever waits for it (a variable for tests).
var ConnectTimeout = 30 * time.Second

// Shared is a connection every namespace's calls share (to an engine, to
// the service manager), made on first use and again once it is found
// broken. It lives by a context of its own, not by its first caller's
// (whose end would take it away from the others' calls). One attempt to
// make it runs at a time, bounded by ConnectTimeout; each caller waits for
// it only as long as its own context allows, so that a service that
// accepts and never answers costs every call its own deadline at most.
type Shared[C comparable] struct {
	mu      sync.Mutex
	conn    C
	have    bool
	stop    context.CancelFunc // ends conn's context
	attempt *attempt[C]
}

type attempt[C comparable] struct {
	done chan struct{}
	conn C
	err  error
}

// Get returns the connection, made with dial (its context is the
// connection's life) when there is none or alive says it is gone.
func (s *Shared[C]) Get(ctx context.Context, alive func(C) bool, dial func(life context.Context) (C, error), discard func(C)) (C, error) {
	s.mu.Lock()
	if s.have && (alive == nil || alive(s.conn)) {
		c := s.conn
		s.mu.Unlock()
		return c, nil
	}
	var zero C
	if s.have { // gone: ended, so that what it holds goes too
		s.stop()
		s.conn, s.have, s.stop = zero, false, nil
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return zero, err
	}
	a := s.attempt
	if a == nil {
		a = &attempt[C]{done: make(chan struct{})}
		s.attempt = a
		go s.make(a, dial, discard)
	}
	s.mu.Unlock()
	select {
	case <-a.done:
		return a.conn, a.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// make runs one attempt: past ConnectTimeout its context ends, which
// gives up what the dial waits for.
func (s *Shared[C]) make(a *attempt[C], dial func(context.Context) (C, error), discard func(C)) {
	life, stop := context.WithCancel(context.Background())
	timer := time.AfterFunc(ConnectTimeout, stop)
	c, err := dial(life)
	if !timer.Stop() && err == nil {
		// made as its time ran out: its context has ended
		if discard != nil {
			discard(c)
		}
		err = context.DeadlineExceeded
	}
	s.mu.Lock()
	s.attempt = nil
	if err == nil {
		s.conn, s.have, s.stop = c, true, stop
	} else {
		stop()
	}
	a.conn, a.err = c, err
	s.mu.Unlock()
	close(a.done)
}

// Forget drops the connection without ending it (a call on it found it
// broken): calls still on it finish as they would, and the next Get makes
// another.
func (s *Shared[C]) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero C
	s.conn, s.have, s.stop = zero, false, nil
}

// Current is the connection, if there is one (it may be broken).
func (s *Shared[C]) Current() (C, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn, s.have
}

// Close ends the connection (close closes it, then its context ends).
func (s *Shared[C]) Close(close func(C)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.have {
		if close != nil {
			close(s.conn)
		}
		s.stop()
		var zero C
		s.conn, s.have, s.stop = zero, false, nil
	}
}
