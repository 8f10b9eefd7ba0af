// Package daemon keeps every namespace of a data home reconciled: it wires
// the watcher to a queue, hands namespaces to a few workers that each run
// controller.Reconcile, retries failures with backoff, rescans as the
// safety net under inotify, removes routers whose namespace is gone, and
// reports to systemd, Prometheus and HTTP. It knows nothing of what a pass
// does: only "reconcile namespace X" and the Result that comes back.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/site-controller/site-controller/pkg/console"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/watcher"
)

// Options configures the long-running controller: the reconcile's
// options, and the daemon's own.
type Options struct {
	controller.Options
	Quiet    time.Duration // quiet period before a reconcile (default 5ms)
	MaxDelay time.Duration // longest a reconcile waits under churn (default 1s)
	Rescan   time.Duration // periodic rescan (default 30s; <0 disables)
	// FullPass is how often every namespace gets a pass that reads and
	// writes everything again, trusting nothing it kept (default 10m;
	// <0 disables). Between them a pass reads only the files the watcher
	// or a rescan reported changed.
	FullPass time.Duration
	// UnwatchedRescan is how often input is rescanned while some
	// directories cannot be watched (default 2s), whatever Rescan is.
	UnwatchedRescan time.Duration
	Workers         int // namespaces reconciled in parallel (default 4)
	Log             *slog.Logger
	// Notify sends a systemd notification (READY=1, STATUS=…); may be nil.
	Notify func(state string)
	// Watchdog is the interval of WATCHDOG=1 notifications; 0 disables.
	Watchdog time.Duration
	// TakeEvent decides whether a file event reaches the queue (nil: every
	// one does); tests lose events with it, as a kernel queue overflow
	// would.
	TakeEvent func(ns, path string) bool
	// BeforePass runs at the start of every pass (nil: nothing); tests
	// fail passes with it (a panic is caught as any pass's).
	BeforePass func(ns string)
}

// Daemon keeps every namespace of a data home reconciled.
type Daemon struct {
	opts    Options
	rec     *controller.Reconciler
	queue   *Queue
	watch   *watcher.Watcher
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	ready   atomic.Bool
	// scanned is closed once the rescans' baseline is taken (READY waits
	// for it)
	scanned chan struct{}

	mu       sync.Mutex
	pending  map[string]bool // namespaces whose pass a READY=1 waits for
	failures map[string]int  // consecutive failures, for backoff
	// renewals are, by namespace, when its first generated certificate is
	// due for renewal (marked for a pass by the periodic rescan)
	renewals map[string]time.Time
	// changes are, by namespace, the input files reported changed since
	// its last pass began; nil when what changed is not known (events
	// lost, a directory moved, a failed pass): the next pass looks at
	// every file
	changes map[string]map[string]bool
	summary map[string]nsSummary
	routers map[string]routerSeen // last router state seen, by namespace
	// passes are, by namespace, what its last pass found that the
	// console shows and status files do not say (files and lines)
	passes   map[string]*console.Pass
	tallies  map[string]*tally
	console  *console.Server
	lastSent string

	unwatched int // directories without a watch, last seen

	notifyMu sync.Mutex
	stopping bool // STOPPING=1 was sent: nothing follows it
}

type nsSummary struct{ resources, errors int }

type routerSeen struct {
	platform, dir string
	running       bool
}

// backoff bounds for retries of failed reconciles.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// New prepares a daemon; Run starts it.
func New(opts Options) (*Daemon, error) {
	if opts.Quiet == 0 {
		opts.Quiet = 5 * time.Millisecond
	}
	if opts.MaxDelay == 0 {
		opts.MaxDelay = time.Second
	}
	if opts.UnwatchedRescan <= 0 {
		opts.UnwatchedRescan = 2 * time.Second
	}
	if opts.Rescan == 0 {
		opts.Rescan = 30 * time.Second
	}
	if opts.FullPass == 0 {
		opts.FullPass = 10 * time.Minute
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Notify == nil {
		opts.Notify = func(string) {}
	}
	d := &Daemon{opts: opts}
	if opts.Requeue == nil {
		// a site's network changed, or a port it wanted is free
		opts.Requeue = func(ns string) { d.queue.Mark(ns) }
	}
	*d = Daemon{
		opts: opts, rec: controller.New(opts.Options), queue: NewQueue(opts.Quiet, opts.MaxDelay), log: opts.Log,
		scanned: make(chan struct{}),
		reg:     prometheus.NewRegistry(), failures: map[string]int{}, changes: map[string]map[string]bool{}, renewals: map[string]time.Time{}, summary: map[string]nsSummary{}, routers: map[string]routerSeen{},
		passes: map[string]*console.Pass{}, tallies: map[string]*tally{},
	}
	d.console = console.New(console.Options{DataHome: opts.DataHome, Network: d.rec.Network(), Pass: d.lastPass})
	d.opts.Options = d.rec.Options() // with its defaults, and runtimes with deadlines
	w, err := watcher.New(namespace.Root(opts.DataHome), d, opts.Log)
	if err != nil {
		return nil, err
	}
	d.watch = w
	d.metrics, err = newMetrics(d.reg, func() float64 { return float64(w.Watched()) },
		func() float64 { return float64(d.queue.Len()) }, func() float64 { return float64(d.queue.Scheduled()) })
	if err != nil {
		w.Close()
		return nil, err
	}
	return d, nil
}

// Changed implements watcher.Handler.
func (d *Daemon) Changed(ns, path string) {
	if d.opts.TakeEvent != nil && !d.opts.TakeEvent(ns, path) {
		return
	}
	d.changed(ns, path)
	d.queue.Mark(ns)
	// namespaces whose AttachedConnectors or bindings name ns read its
	// files: they need a pass too (their own files are unchanged)
	for _, reader := range d.rec.Readers(ns) {
		d.queue.Mark(reader)
	}
}

// changed records that path (relative to the namespace directory; ""
// for unknown) of ns changed, for its next pass.
func (d *Daemon) changed(ns, path string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	set, ok := d.changes[ns]
	switch {
	case ok && set == nil:
		// already unknown
	case path == "":
		d.changes[ns] = nil
	case !ok:
		d.changes[ns] = map[string]bool{path: true}
	default:
		set[path] = true
	}
}

// takeChanges returns what changed in ns since its last pass began, and
// starts anew: the paths (none: nothing did), or nil when that is not
// known.
func (d *Daemon) takeChanges(ns string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	set, ok := d.changes[ns]
	delete(d.changes, ns)
	if ok && set == nil {
		return nil
	}
	paths := make([]string, 0, len(set))
	for p := range set {
		paths = append(paths, p)
	}
	return paths
}

// Event implements watcher.Handler.
func (d *Daemon) Event(op string) { d.metrics.events.WithLabelValues(op).Inc() }

// Rescan implements watcher.Handler: events may have been lost, so every
// namespace is looked at again and the watches are rebuilt.
func (d *Daemon) Rescan(reason string) {
	if reason == "overflow" {
		d.metrics.overflows.Inc()
	}
	d.metrics.rescans.WithLabelValues(reason).Inc()
	if err := d.watch.SyncAll(); err != nil {
		d.log.Warn("rebuilding watches", "err", err)
	}
	for _, ns := range d.namespaces() {
		d.changed(ns, "")
		d.queue.Mark(ns)
	}
}

// namespaces lists the namespaces on disk plus those known from before,
// so that removed ones are reconciled (and so stopped) too.
func (d *Daemon) namespaces() []string {
	names, err := namespace.List(d.opts.DataHome)
	if err != nil {
		d.log.Warn("listing namespaces", "err", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for n := range d.summary {
		if !seen[n] {
			names = append(names, n)
		}
	}
	return names
}

// Handler serves /healthz, /readyz, /metrics, and the console: the page
// under / and its API under /api/ (package console).
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", d.console.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !d.ready.Load() {
			http.Error(w, "first pass over the namespaces not finished", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	return mux
}

// Ready tells whether the first full pass is done.
func (d *Daemon) Ready() bool { return d.ready.Load() }

// LockPath is the lock a daemon holds for as long as it manages a data
// home; anything else that writes under runtime/ (render) takes it too.
func LockPath(dataHome string) string {
	return filepath.Join(namespace.Root(dataHome), "controller.lock")
}

// LockDataHome takes the data home's lock without waiting: the error says
// when a site-controller daemon holds it.
func LockDataHome(dataHome string) (release func(), err error) {
	release, err = fileio.TryLock(LockPath(dataHome))
	if errors.Is(err, fileio.ErrLocked) {
		return nil, fmt.Errorf("%s is locked: another site-controller manages this data home", LockPath(dataHome))
	}
	return release, err
}

// Run reconciles until ctx ends. It takes the data home's lock first, so
// that one controller at most manages it.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.watch.Close()
	defer d.console.Close() // its event streams end: the HTTP server can shut down
	release, err := LockDataHome(d.opts.DataHome)
	if err != nil {
		return err
	}
	defer release()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := d.watch.SyncAll(); err != nil {
		d.log.Warn("watching namespaces", "err", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.watch.Run(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("file watcher stopped", "err", err)
			cancel()
		}
	}()
	// routers of namespaces removed while the controller was down: looked
	// for beside the first pass, which does not wait for the engines' answers
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.sweep(ctx)
	}()
	// the rescans' baseline: the input as it is at the start, looked at
	// beside the first passes, which do not wait for it (the watches, set
	// up before them, report what changes meanwhile); READY waits for it
	scanner := &inputScanner{files: map[string]scannedFile{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(d.scanned)
		for _, ns := range d.namespaces() {
			scanner.scan(filepath.Join(namespace.Root(d.opts.DataHome), ns), false)
		}
	}()
	d.startPass("start")
	for range d.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx)
		}()
	}
	{
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.periodicRescan(ctx, scanner)
		}()
	}
	// the watchdog stops before STOPPING=1, so that it is the last word
	watchdog := make(chan struct{})
	if d.opts.Watchdog > 0 {
		go func() {
			defer close(watchdog)
			t := time.NewTicker(d.opts.Watchdog)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					d.notify("WATCHDOG=1")
				}
			}
		}()
	} else {
		close(watchdog)
	}
	<-ctx.Done()
	<-watchdog
	d.notifyMu.Lock()
	d.stopping = true
	d.opts.Notify("STOPPING=1")
	d.notifyMu.Unlock()
	wg.Wait()
	d.console.Close()
	d.rec.Close()
	return nil
}

// notify sends a notification to the service manager, unless the daemon
// is stopping: STOPPING=1 is its last word (a pass that ends meanwhile must
// not say READY=1 after it).
func (d *Daemon) notify(msg string) {
	d.notifyMu.Lock()
	defer d.notifyMu.Unlock()
	if !d.stopping {
		d.opts.Notify(msg)
	}
}

// Reload forces a full resync (SIGHUP): systemd is told RELOADING=1, every
// namespace is reconciled, then READY=1 again.
func (d *Daemon) Reload() {
	d.notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicMicros(), 10))
	d.log.Info("reload: resyncing every namespace")
	d.rec.Reverify() // and every router, in full
	d.rec.Refresh()  // and every file
	if err := d.watch.SyncAll(); err != nil {
		d.log.Warn("rebuilding watches", "err", err)
	}
	d.startPass("reload")
}

// startPass marks every namespace and sends READY=1 once each was
// reconciled.
func (d *Daemon) startPass(reason string) {
	d.metrics.rescans.WithLabelValues(reason).Inc()
	names := d.namespaces()
	d.mu.Lock()
	d.pending = map[string]bool{}
	for _, n := range names {
		d.pending[n] = true
	}
	d.mu.Unlock()
	d.log.Info("full pass", "reason", reason, "namespaces", len(names))
	for _, n := range names {
		d.queue.MarkNow(n)
	}
	d.passDone("")
}

// passDone records that ns was reconciled, and announces readiness when
// the current full pass is complete.
func (d *Daemon) passDone(ns string) {
	d.mu.Lock()
	if d.pending == nil {
		d.mu.Unlock()
		return
	}
	delete(d.pending, ns)
	done := len(d.pending) == 0
	if done {
		d.pending = nil
	}
	d.mu.Unlock()
	if done {
		<-d.scanned // the rescans' baseline: what changes after READY is new to it
		d.ready.Store(true)
		d.notify("READY=1\nSTATUS=" + d.statusLine())
		d.log.Info("ready", "status", d.statusLine())
	}
}

func (d *Daemon) work(ctx context.Context) {
	for {
		ns, ok := d.queue.Next(ctx)
		if !ok {
			return
		}
		d.reconcile(ctx, ns)
		d.queue.Done(ns)
		d.passDone(ns)
	}
}

// reconcile runs one pass over ns, recovering from panics; a failure is
// logged, counted, written to the Site's status and retried with backoff.
func (d *Daemon) reconcile(ctx context.Context, ns string) {
	log := d.log.With("namespace", ns)
	start := time.Now()
	res, err := d.safeReconcile(ctx, ns)
	elapsed := time.Since(start)
	d.metrics.duration.Observe(elapsed.Seconds())
	if res != nil && res.Gone {
		d.forget(ns)
		if err != nil {
			log.Warn("namespace removed; removing its router failed, retrying", "err", err)
			d.queue.After(ctx, ns, d.backoff(ns))
			return
		}
		log.Info("namespace removed")
		return
	}
	d.metrics.reconciles.WithLabelValues(ns).Inc()
	if res != nil && res.Patched {
		d.metrics.patched.WithLabelValues(ns).Inc()
	}
	if res != nil {
		for phase, t := range map[string]time.Duration{"read": res.Phases.Read, "render": res.Phases.Render, "apply": res.Phases.Apply, "status": res.Phases.Status} {
			d.metrics.phases.WithLabelValues(phase).Observe(t.Seconds())
		}
		d.metrics.written.WithLabelValues(ns).Add(float64(len(res.Changed)))
		if res.Live != nil {
			d.metrics.routerOps.WithLabelValues(ns).Add(float64(res.Live.Applied))
			if res.Live.Applied > 0 {
				d.metrics.routerTime.Observe(res.Live.OpsTime.Seconds())
			}
		}
		d.mu.Lock()
		if res.RenewAt.IsZero() {
			delete(d.renewals, ns)
		} else {
			d.renewals[ns] = res.RenewAt
		}
		d.mu.Unlock()
	}
	if err != nil {
		d.metrics.errors.WithLabelValues(ns).Inc()
		delay := d.backoff(ns)
		log.Error("reconcile failed; retrying", "err", err, "retry_in", delay)
		if rerr := d.rec.ReportFailure(ns, err, delay); rerr != nil {
			log.Warn("writing failure status", "err", rerr)
		}
		d.console.Changed(ns)
		d.queue.After(ctx, ns, delay)
		return
	}
	switch {
	case res.RouterErr != nil:
		// the site is rendered and its status says what is wrong; the
		// runtime is retried with backoff until it recovers
		d.metrics.errors.WithLabelValues(ns).Inc()
		delay := d.backoff(ns)
		log.Error("router runtime failed; retrying", "platform", res.Platform, "err", res.RouterErr, "retry_in", delay)
		d.queue.After(ctx, ns, delay)
	case res.Recheck > 0:
		d.queue.After(ctx, ns, res.Recheck)
		fallthrough
	default:
		d.mu.Lock()
		delete(d.failures, ns)
		d.mu.Unlock()
	}
	d.metrics.lastSuccess.WithLabelValues(ns).SetToCurrentTime()
	d.record(ns, res)
	for _, p := range res.Problems {
		attrs := []any{"file", p.File, "line", p.Line, "problem", p.Message}
		if kind, name, ok := cutID(p.ID); ok {
			attrs = append(attrs, "kind", kind, "name", name)
		}
		if p.Field != "" {
			attrs = append(attrs, "field", p.Field)
		}
		if p.Warning {
			log.Debug("resource warning", attrs...)
		} else if len(res.Changed) > 0 {
			log.Warn("invalid resource", attrs...)
		}
	}
	if len(res.Changed) > 0 {
		log.Info("reconciled", "changed", len(res.Changed), "config_changed", res.ConfigChanged, "problems", len(res.Problems), "duration", elapsed)
	} else {
		log.Debug("reconciled; nothing changed", "duration", elapsed)
	}
}

// backoff counts a failure of ns and returns how long to wait before the
// next try: doubling from minBackoff up to maxBackoff.
func (d *Daemon) backoff(ns string) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failures[ns]++
	return min(maxBackoff, minBackoff<<min(d.failures[ns]-1, 20))
}

func cutID(id string) (string, string, bool) {
	for i := 0; i < len(id); i++ {
		if id[i] == '/' {
			return id[:i], id[i+1:], true
		}
	}
	return "", "", false
}

// safeReconcile turns a panic into an error: one namespace's bug must not
// take the others down.
func (d *Daemon) safeReconcile(ctx context.Context, ns string) (res *controller.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("reconcile panicked", "namespace", ns, "panic", p, "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("internal error: %v", p)
		}
	}()
	if d.opts.BeforePass != nil {
		d.opts.BeforePass(ns)
	}
	changes := d.takeChanges(ns)
	defer func() {
		if err != nil {
			d.changed(ns, "") // what it read may not have been kept
		}
	}()
	return d.rec.ReconcileChanged(ctx, ns, changes)
}

// record updates metrics and the systemd status line from a pass.
func (d *Daemon) record(ns string, res *controller.Result) {
	d.mu.Lock()
	prev := d.tallies[ns]
	d.mu.Unlock()
	var t *tally
	if res.Patched && prev != nil {
		t = prev.patched(res)
	} else {
		t = tallyOf(res)
	}
	s := t.summary
	// the series the last pass set and this one does not (a
	// DeletePartialMatch looks at every namespace's: O(namespaces) a pass)
	if prev != nil {
		for k, n := range prev.counts {
			if n > 0 && t.counts[k] == 0 {
				d.metrics.resources.DeleteLabelValues(ns, k[0], k[1])
			}
		}
	}
	for k, n := range t.counts {
		if n > 0 {
			d.metrics.resources.WithLabelValues(ns, k[0], k[1]).Set(float64(n))
		}
	}
	p := &console.Pass{Origin: t.origins.lookup, Problems: res.Problems}
	d.mu.Lock()
	d.summary[ns] = s
	d.passes[ns] = p
	d.tallies[ns] = t
	if res.Router != nil {
		d.routers[ns] = routerSeen{platform: res.Platform, dir: filepath.Join(namespace.Root(d.opts.DataHome), ns), running: res.Router.Running}
	} else {
		delete(d.routers, ns)
	}
	d.metrics.namespaces.Set(float64(len(d.summary)))
	d.mu.Unlock()
	d.sendStatus()
	d.console.Changed(ns)
}

// lastPass is what the last pass over ns found, for the console.
func (d *Daemon) lastPass(ns string) *console.Pass {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passes[ns]
}

func (d *Daemon) forget(ns string) {
	d.metrics.forget(ns)
	defer d.console.Changed(ns)
	d.mu.Lock()
	delete(d.summary, ns)
	delete(d.passes, ns)
	delete(d.tallies, ns)
	delete(d.routers, ns)
	delete(d.failures, ns)
	d.metrics.namespaces.Set(float64(len(d.summary)))
	d.mu.Unlock()
	d.sendStatus()
}

func (d *Daemon) statusLine() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var res, errs int
	for _, s := range d.summary {
		res += s.resources
		errs += s.errors
	}
	line := fmt.Sprintf("%d namespaces, %d resources, %d with errors", len(d.summary), res, errs)
	if d.unwatched > 0 {
		line += fmt.Sprintf("; %d directories unwatched (inotify limit?), rescanned every %s", d.unwatched, d.opts.UnwatchedRescan)
	}
	return line
}

// sendStatus tells systemd the one-line summary when it changed.
func (d *Daemon) sendStatus() {
	line := d.statusLine()
	d.mu.Lock()
	changed := line != d.lastSent
	d.lastSent = line
	d.mu.Unlock()
	if changed {
		d.notify("STATUS=" + line)
	}
}

// periodicRescan looks at every namespace's input files and marks those
// that changed since the last look: the safety net under the watcher, every
// Rescan period. While some directories have no watch (the inotify watch
// limit reached), it looks every UnwatchedRescan instead, tries to add the
// watches again, and says so in the log and the metrics.
func (d *Daemon) periodicRescan(ctx context.Context, scanner *inputScanner) {
	select {
	case <-ctx.Done():
		return
	case <-d.scanned: // its baseline
	}
	tick := d.opts.UnwatchedRescan
	if d.opts.Rescan > 0 && d.opts.Rescan < tick {
		tick = d.opts.Rescan
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	last, lastFull := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		unwatched := d.checkWatches()
		periodic := d.opts.Rescan > 0 && time.Since(last) >= d.opts.Rescan
		if d.opts.FullPass > 0 && time.Since(lastFull) >= d.opts.FullPass {
			lastFull = time.Now()
			d.fullPass()
		}
		if !periodic && unwatched == 0 {
			continue
		}
		reason := "unwatched"
		if periodic {
			reason, last = "periodic", time.Now()
		}
		d.metrics.rescans.WithLabelValues(reason).Inc()
		if err := d.watch.SyncAll(); err != nil {
			d.log.Debug("rebuilding watches", "err", err)
		}
		if periodic {
			d.sweep(ctx)
			d.checkRouters(ctx)
			d.renewDue()
		}
		for _, ns := range d.namespaces() {
			if scanner.scan(filepath.Join(namespace.Root(d.opts.DataHome), ns), true) {
				d.log.Debug("rescan found a change", "namespace", ns, "reason", reason)
				d.changed(ns, "")
				d.queue.Mark(ns)
			}
		}
	}
}

// fullPass gives every namespace a pass that reads and writes everything
// again, trusting nothing the passes before kept.
func (d *Daemon) fullPass() {
	d.metrics.rescans.WithLabelValues("full").Inc()
	d.rec.Refresh()
	for _, ns := range d.namespaces() {
		d.changed(ns, "")
		d.queue.Mark(ns)
	}
}

// renewDue marks the namespaces with a generated certificate due for
// renewal: their next pass issues it again (and the router loads it live).
func (d *Daemon) renewDue() {
	d.mu.Lock()
	var due []string
	for ns, at := range d.renewals {
		if !time.Now().Before(at) {
			due = append(due, ns)
			delete(d.renewals, ns)
		}
	}
	d.mu.Unlock()
	for _, ns := range due {
		d.log.Info("renewing certificates", "namespace", ns)
		d.queue.Mark(ns)
	}
}

// checkWatches reports directories without a watch when their number
// changes: the log says what it means and what to do.
func (d *Daemon) checkWatches() int {
	n, why := d.watch.Unwatched()
	d.metrics.unwatched.Set(float64(n))
	d.mu.Lock()
	was := d.unwatched
	d.unwatched = n
	d.mu.Unlock()
	switch {
	case n > 0 && was == 0:
		d.log.Warn("some directories cannot be watched: changes in them are found by rescans every "+d.opts.UnwatchedRescan.String()+
			" until they can", "directories", n, "err", why)
	case n == 0 && was > 0:
		d.log.Info("every directory is watched again")
	}
	if n != was {
		d.sendStatus()
	}
	return n
}

// checkRouters marks the namespaces whose router changed state since the
// last pass (it crashed, or came back), so that their Site status follows.
func (d *Daemon) checkRouters(ctx context.Context) {
	d.mu.Lock()
	seen := maps.Clone(d.routers)
	d.mu.Unlock()
	for ns, was := range seen {
		rt := d.opts.Runtimes[was.platform]
		if rt == nil {
			continue
		}
		st, err := rt.State(ctx, ns, was.dir)
		if err != nil || st.Running != was.running {
			d.queue.Mark(ns)
		}
	}
}

// sweep removes routers whose namespace directory under this data home is
// gone: a router never outlives its site, even when the controller was
// down while the site was removed. Routers of other data homes, and those
// this controller did not create, are left alone.
func (d *Daemon) sweep(ctx context.Context) {
	root := namespace.Root(d.opts.DataHome) + string(filepath.Separator)
	for platform, rt := range d.opts.Runtimes {
		routers, err := rt.List(ctx)
		if err != nil {
			continue
		}
		for _, r := range routers {
			if !strings.HasPrefix(r.Dir, root) || filepath.Dir(r.Dir)+string(filepath.Separator) != root {
				continue
			}
			if _, err := os.Stat(filepath.Join(r.Dir, "input")); err == nil {
				continue
			}
			if err := rt.Remove(ctx, r.Namespace, r.Dir); err != nil {
				d.log.Warn("removing an orphaned router", "namespace", r.Namespace, "platform", platform, "err", err)
				continue
			}
			d.log.Info("removed the router of a namespace that is gone", "namespace", r.Namespace, "platform", platform)
		}
	}
}

// monotonicMicros is CLOCK_MONOTONIC in microseconds, as systemd wants
// it with RELOADING=1.
func monotonicMicros() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
