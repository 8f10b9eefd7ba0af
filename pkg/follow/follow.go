// Package follow follows a container engine's running containers for
// Connector selectors: the engine's event stream says which container
// changed, and that one is inspected; the whole list is read again every
// relistInterval (the safety net under the stream), and after the stream
// broke. One Engine serves every namespace that selects on that engine;
// it runs from the first Snapshot until Stop, and never outlives it.
//
// It only reads what an engine runs; it never starts, stops or changes a
// container.
package follow

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/site-controller/site-controller/pkg/runtime"
)

// How the running containers of an engine are followed for selectors: its
// event stream says which container changed, and that one is inspected;
// the whole list is read again every relistInterval (the safety net under
// the stream), and after the stream broke.
var (
	relistInterval  = 30 * time.Second
	inspectTimeout  = 5 * time.Second
	listTimeout     = 30 * time.Second
	firstListWait   = 5 * time.Second
	maxWatchBackoff = 30 * time.Second
	// healthPoll is how often containers with a health check are
	// inspected on engines that send no event when its result changes
	healthPoll = time.Second
)

// Engine follows one engine's running containers. It starts with the
// first Snapshot (the first pass that has a selector on its platform), and
// runs until Stop.
type Engine struct {
	platform string
	src      runtime.Workloads
	// changed is called when what the engine runs changed
	changed func(platform string)

	start  sync.Once
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}
	listed chan struct{} // closed by the first listing, good or not

	mu     sync.Mutex
	byID   map[string]runtime.Workload
	ok     bool  // listed at least once
	err    error // why the last listing or the stream failed; nil when fine
	marked map[string]bool
}

// New returns the follower of src's containers; changed(platform) is
// called (from its goroutine) whenever what the engine runs changed.
func New(platform string, src runtime.Workloads, changed func(string)) *Engine {
	return &Engine{platform: platform, src: src, changed: changed, done: make(chan struct{}), wake: make(chan struct{}, 1),
		listed: make(chan struct{}), marked: map[string]bool{}}
}

// Snapshot returns the running containers (the pass waits up to
// firstListWait for the first listing), whether they were ever listed,
// and the engine's last failure.
func (c *Engine) Snapshot(ctx context.Context) ([]runtime.Workload, bool, error) {
	c.start.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		go c.run(ctx)
	})
	t := time.NewTimer(firstListWait)
	defer t.Stop()
	select {
	case <-c.listed:
	case <-t.C:
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]runtime.Workload, 0, len(c.byID))
	for _, w := range c.byID {
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b runtime.Workload) int { return strings.Compare(a.Name, b.Name) })
	return out, c.ok, c.err
}

// Stop ends the goroutine, if it started, and waits for it; none starts
// after it.
func (c *Engine) Stop() {
	started := false
	c.start.Do(func() {}) // none starts after this
	if c.cancel != nil {
		c.cancel()
		started = true
	}
	if started {
		<-c.done
	}
}

// mark asks for container id to be inspected again.
func (c *Engine) mark(id string) {
	c.mu.Lock()
	c.marked[id] = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Engine) run(ctx context.Context) {
	defer close(c.done)
	first := true
	backoff := time.Second
	var health <-chan time.Time
	if p, ok := c.src.(runtime.HealthPolled); ok && p.HealthWithoutEvents() {
		t := time.NewTicker(healthPoll)
		defer t.Stop()
		health = t.C
	}
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(ctx)
		watchErr := make(chan error, 1)
		streamStart := time.Now()
		go func() { watchErr <- c.src.WatchWorkloads(wctx, c.mark) }()
		err := c.relist(ctx)
		if first {
			first = false
			close(c.listed)
		}
		relist := time.NewTimer(relistInterval)
		if err != nil {
			relist.Reset(backoff)
		}
	follow:
		for {
			select {
			case <-ctx.Done():
				break follow
			case <-health:
				c.markChecked()
			case <-c.wake:
				if !c.inspectMarked(ctx) {
					relist.Reset(backoff) // the listing repairs what could not be inspected
				}
			case <-relist.C:
				next := relistInterval
				if c.relist(ctx) != nil {
					next = backoff
				}
				relist.Reset(next)
			case err := <-watchErr:
				if err != nil {
					c.fail(err)
				}
				if time.Since(streamStart) > time.Minute {
					backoff = time.Second // it had been fine: not a failing engine
				}
				break follow
			}
		}
		relist.Stop()
		cancel()
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxWatchBackoff)
	}
}

// fail records an engine failure, and tells when that is news.
func (c *Engine) fail(err error) {
	c.mu.Lock()
	news := c.err == nil || c.err.Error() != err.Error()
	c.err = err
	c.mu.Unlock()
	if news {
		c.changed(c.platform)
	}
}

// relist lists every running container again.
func (c *Engine) relist(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	list, err := c.src.RunningWorkloads(lctx)
	if err != nil {
		if ctx.Err() == nil {
			c.fail(err)
		}
		return err
	}
	byID := make(map[string]runtime.Workload, len(list))
	for _, w := range list {
		byID[w.ID] = w
	}
	c.mu.Lock()
	news := !c.ok || c.err != nil || !maps.EqualFunc(c.byID, byID, sameWorkload)
	c.byID, c.ok, c.err = byID, true, nil
	c.mu.Unlock()
	if news {
		c.changed(c.platform)
	}
	return nil
}

// markChecked marks the containers that have a health check for
// inspection.
func (c *Engine) markChecked() {
	c.mu.Lock()
	any := false
	for id, w := range c.byID {
		if w.Health != "" {
			c.marked[id], any = true, true
		}
	}
	c.mu.Unlock()
	if any {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// inspectMarked inspects the containers events named; false when some
// could not be.
func (c *Engine) inspectMarked(ctx context.Context) bool {
	c.mu.Lock()
	ids := slices.Collect(maps.Keys(c.marked))
	clear(c.marked)
	c.mu.Unlock()
	news, ok := false, true
	for _, id := range ids {
		ictx, cancel := context.WithTimeout(ctx, inspectTimeout)
		w, found, err := c.src.RunningWorkload(ictx, id)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.fail(err)
			}
			ok = false
			continue
		}
		c.mu.Lock()
		old, had := c.byID[id]
		switch {
		case !found && had:
			delete(c.byID, id)
			news = true
		case found && (!had || !sameWorkload(old, w)):
			if c.byID == nil {
				c.byID = map[string]runtime.Workload{}
			}
			c.byID[id] = w
			news = true
		}
		c.mu.Unlock()
	}
	if news {
		c.changed(c.platform)
	}
	return ok
}

func sameWorkload(a, b runtime.Workload) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Health == b.Health && a.Address == b.Address && a.Network == b.Network && maps.Equal(a.Labels, b.Labels)
}
