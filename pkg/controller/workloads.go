package controller

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/selector"
	"github.com/site-controller/site-controller/pkg/status"
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

// containers follows one engine's running containers. It starts with the
// first pass that has a selector on its platform, and runs until Close.
type containers struct {
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

func newContainers(platform string, src runtime.Workloads, changed func(string)) *containers {
	return &containers{platform: platform, src: src, changed: changed, done: make(chan struct{}), wake: make(chan struct{}, 1),
		listed: make(chan struct{}), marked: map[string]bool{}}
}

// snapshot returns the running containers (the pass waits up to
// firstListWait for the first listing), whether they were ever listed,
// and the engine's last failure.
func (c *containers) snapshot(ctx context.Context) ([]runtime.Workload, bool, error) {
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

// stop ends the goroutine, if it started.
func (c *containers) stop() {
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
func (c *containers) mark(id string) {
	c.mu.Lock()
	c.marked[id] = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *containers) run(ctx context.Context) {
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
func (c *containers) fail(err error) {
	c.mu.Lock()
	news := c.err == nil || c.err.Error() != err.Error()
	c.err = err
	c.mu.Unlock()
	if news {
		c.changed(c.platform)
	}
}

// relist lists every running container again.
func (c *containers) relist(ctx context.Context) error {
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
func (c *containers) markChecked() {
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
func (c *containers) inspectMarked(ctx context.Context) bool {
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

// containerSnapshot is an engine's running containers as a pass saw them.
type containerSnapshot struct {
	all    []runtime.Workload
	listed bool
	err    error
}

// selection is what a selector selected on a site's platform.
type selection struct {
	targets []routerconfig.Target
	pods    []status.SelectedPod
	// none says why nothing is selected ("" when something is)
	none string
	// left says which matching containers were left out, and why
	left string
	// problem is set when the selector cannot select on the platform at
	// all (linux): an error of the resource
	problem string
}

// selectOn selects the containers of the site's platform that text (a
// valid selector) matches: running, not a router, with an address, and
// ready unless includeNotReady.
func (r *Reconciler) selectOn(ctx context.Context, s *siteState, platform, text string, includeNotReady bool) selection {
	switch platform {
	case "linux":
		return selection{problem: "the linux platform has no containers to select"}
	case "docker", "podman":
	default:
		return selection{none: "platform " + platform + " runs no containers: nothing is selected"}
	}
	set := r.workloads[platform]
	if set == nil {
		return selection{none: "no " + platform + " engine in this command to select containers from"}
	}
	sel, err := selector.Parse(text)
	if err != nil { // validation reported it
		return selection{problem: "invalid label selector: " + err.Error()}
	}
	snap, ok := s.containers[platform]
	if !ok { // one look at the engine's containers per pass
		snap.all, snap.listed, snap.err = set.snapshot(ctx)
		if s.containers == nil {
			s.containers = map[string]containerSnapshot{}
		}
		s.containers[platform] = snap
	}
	all, listed, engineErr := snap.all, snap.listed, snap.err
	var notReady, noAddress []string
	var out selection
	for _, w := range all {
		if w.Router() || !sel.Matches(w.Labels) {
			continue
		}
		switch {
		case w.Address == "":
			noAddress = append(noAddress, w.Name)
			continue
		case !w.Ready() && !includeNotReady:
			notReady = append(notReady, w.Name+" ("+w.Health+")")
			continue
		}
		out.targets = append(out.targets, routerconfig.Target{Name: w.Name, ID: w.ID, Host: w.Address})
		out.pods = append(out.pods, status.SelectedPod{Name: w.Name, IP: w.Address, ID: shortID(w.ID)})
	}
	if len(out.targets) > 0 {
		if engineErr != nil {
			out.left = "the containers as last listed (" + engineErr.Error() + ")"
		}
		if len(notReady) > 0 {
			out.left = joinMessage(out.left, "not ready, left out: "+strings.Join(notReady, ", ")+" (spec.includeNotReadyPods: true selects them)")
		}
		if len(noAddress) > 0 {
			out.left = joinMessage(out.left, "without an address on any network, left out: "+strings.Join(noAddress, ", "))
		}
		return out
	}
	switch {
	case !listed && engineErr != nil:
		out.none = "the containers of " + platform + " cannot be listed: " + engineErr.Error()
	case !listed:
		out.none = "the containers of " + platform + " are not listed yet"
	default:
		out.none = "no running container matches " + text
		if len(notReady) > 0 {
			out.none += "; not ready: " + strings.Join(notReady, ", ") + " (spec.includeNotReadyPods: true selects them)"
		}
		if len(noAddress) > 0 {
			out.none += "; without an address on any network: " + strings.Join(noAddress, ", ")
		}
	}
	return out
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// selecting records the platforms on which namespace ns selects
// containers: its passes to ask for when those engines' containers change.
func (r *Reconciler) selecting(ns string, platforms map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(platforms) == 0 {
		delete(r.selectors, ns)
	} else {
		r.selectors[ns] = platforms
	}
}

// containersChanged asks for a pass of every namespace that selects
// containers on platform.
func (r *Reconciler) containersChanged(platform string) {
	r.mu.Lock()
	var again []string
	for ns, platforms := range r.selectors {
		if platforms[platform] {
			again = append(again, ns)
		}
	}
	r.mu.Unlock()
	if r.opts.Requeue == nil {
		return
	}
	for _, ns := range again {
		r.opts.Requeue(ns)
	}
}

// selectConnectors selects the containers of every Connector that has a
// selector and no host.
func (r *Reconciler) selectConnectors(ctx context.Context, s *siteState, platform string) {
	s.selections = map[string]selection{}
	for _, c := range s.ns.Connectors {
		if c.Spec.Host != "" || c.Spec.Selector == "" {
			continue
		}
		sel := r.selectOn(ctx, s, platform, c.Spec.Selector, c.Spec.IncludeNotReadyPods)
		if sel.problem != "" && platform == "linux" {
			sel.problem += "; set spec.host to the server's address instead"
		}
		s.selections[c.Metadata.Name] = sel
		s.selects[platform] = true
	}
}
