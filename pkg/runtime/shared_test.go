package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// conn is a connection of the tests: alive until its life ends or it is
// closed.
type conn struct {
	life   context.Context
	closed atomic.Bool
}

func (c *conn) alive() bool { return c.life.Err() == nil && !c.closed.Load() }

// TestSharedConnection: one attempt at a time, whose making each caller
// waits for only within its own context; the connection outlives the
// caller that made it; one found gone is ended and made again; one
// forgotten is not ended.
func TestSharedConnection(t *testing.T) {
	var s Shared[*conn]
	var dials atomic.Int32
	release := make(chan struct{})
	dial := func(life context.Context) (*conn, error) {
		dials.Add(1)
		select {
		case <-release:
			return &conn{life: life}, nil
		case <-life.Done():
			return nil, life.Err()
		}
	}
	alive := (*conn).alive

	// a caller whose context ends first gets its context's error, and
	// so does one whose context is over already, while the attempt goes on
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Get(short, alive, dial, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller past its deadline: %v", err)
	}
	over, stop := context.WithCancel(context.Background())
	stop()
	if _, err := s.Get(over, alive, dial, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller already over: %v", err)
	}
	// callers meanwhile join the attempt under way
	var wg sync.WaitGroup
	got := make([]*conn, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = s.Get(context.Background(), alive, dial, nil)
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them wait
	close(release)
	wg.Wait()
	if n := dials.Load(); n != 1 {
		t.Errorf("%d attempts made for callers that waited together, want 1", n)
	}
	for i, c := range got {
		if c == nil || c != got[0] {
			t.Fatalf("caller %d got %p, caller 0 %p", i, c, got[0])
		}
	}
	first := got[0]
	// the first caller's context has ended long ago: the connection
	// lives on
	if !first.alive() {
		t.Fatal("the connection ended with a caller's context")
	}
	// found gone: ended (its context) and made again
	first.closed.Store(true)
	second, err := s.Get(context.Background(), alive, dial, nil)
	if err != nil || second == first || first.life.Err() == nil {
		t.Fatalf("a closed connection: got %p (%v), the old one's context %v", second, err, first.life.Err())
	}
	// forgotten: made again, the old one not ended
	s.Forget()
	third, err := s.Get(context.Background(), alive, dial, nil)
	if err != nil || third == second || !second.alive() {
		t.Fatalf("after Forget: got %p (%v), the old one alive %v", third, err, second.alive())
	}
	s.Close(func(c *conn) { c.closed.Store(true) })
	if third.alive() {
		t.Error("Close left the connection alive")
	}
}

// TestSharedConnectTimeout: an attempt no one waits for ends at
// ConnectTimeout (its context ends, so the dial gives up), and the next
// caller makes another.
func TestSharedConnectTimeout(t *testing.T) {
	defer func(d time.Duration) { ConnectTimeout = d }(ConnectTimeout)
	ConnectTimeout = 100 * time.Millisecond
	var s Shared[*conn]
	var dials atomic.Int32
	hang := func(life context.Context) (*conn, error) {
		dials.Add(1)
		<-life.Done()
		return nil, life.Err()
	}
	if _, err := s.Get(context.Background(), nil, hang, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("an attempt past ConnectTimeout: %v", err)
	}
	ok := func(life context.Context) (*conn, error) { dials.Add(1); return &conn{life: life}, nil }
	c, err := s.Get(context.Background(), nil, ok, nil)
	if err != nil || c == nil || dials.Load() != 2 {
		t.Fatalf("the next caller: %v %v, %d attempts", c, err, dials.Load())
	}
}
