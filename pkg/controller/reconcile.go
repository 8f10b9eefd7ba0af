// Package controller runs one reconcile pass over a namespace, a step per
// file: it reads the namespace's whole input (reconcile.go, lastgood.go),
// works out the desired site and writes it (package site), makes the
// runtime run it (apply.go) and the running router take it live (live.go),
// and writes the status of every resource (status.go).
//
// Reconcile is level-based: it is told only which namespace to look at and
// re-reads everything. It never writes under input/, and a problem in one
// resource never keeps the others from being rendered. While the input has
// no valid Site, the last router configuration written stays as it is.
package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/site-controller/site-controller/pkg/follow"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/lastgood"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/netview"
	"github.com/site-controller/site-controller/pkg/pass"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/site"
	"github.com/site-controller/site-controller/pkg/status"
	"github.com/site-controller/site-controller/pkg/tokens"
)

// Options configures a Reconciler.
type Options struct {
	DataHome string
	// Platform is used for namespaces that record none in
	// internal/platform.yaml: podman, docker, linux, or none (render and
	// write status only).
	Platform string
	// Runtimes run routers, by platform. A namespace whose platform has no
	// runtime here is rendered only.
	Runtimes map[string]runtime.Runtime
	// Live applies Listener, Connector and TLS changes to running routers
	// over their management listener, restarting a router only for what it
	// cannot take live. Without it every change restarts the router.
	Live bool
	// Version is the controller version recorded in router metadata
	// (default "dev").
	Version string
	Now     func() time.Time // defaults to time.Now
	// MaxFileSize caps the size of one resource file (default
	// namespace.MaxFileSize).
	MaxFileSize int64
	// RuntimeTimeout bounds every call to a runtime (default 2m: it may
	// pull an image); ManagementTimeout bounds one live apply to a router
	// (default 10s).
	RuntimeTimeout, ManagementTimeout time.Duration
	// Requeue is called (from any goroutine) when a namespace needs
	// another pass for a reason outside its files: what its site's routers
	// report about the network changed, or another namespace released a
	// port it was refused. The daemon marks it for a pass.
	Requeue func(namespace string)
	// RedeemTimeout bounds one attempt to redeem an AccessToken (default
	// 15s).
	RedeemTimeout time.Duration
	// Grants is the data home's grant server, which serves the
	// namespaces' AccessGrants; nil when it is off.
	Grants *grants.Server
	// HostNames returns this host's names and addresses, for the server
	// certificates of RouterAccesses bound to every address (default
	// site.HostNames).
	HostNames func() []string
	// RouterUpgrade says what happens to a running router when the
	// router image it was started from is no longer the runtime's: auto
	// (default) restarts routers one namespace at a time, each after the
	// previous serves again; manual leaves them running, and their Site
	// status says an upgrade is pending.
	RouterUpgrade string
}

// Reconciler runs reconcile passes. It is safe for concurrent use on
// different namespaces.
type Reconciler struct {
	opts Options

	nets netview.Set

	mu sync.Mutex
	// owners hold, by namespace, what is kept between its passes and its
	// long-lived helpers
	owners map[string]*owner
	// ports is the data home's port registry as this controller last
	// wrote it; portsFreed counts the passes that changed a namespace's
	// ports or removed a namespace (a port another was refused may be
	// free since)
	ports      namespace.PortMemo
	portsFreed atomic.Uint64
	// upgrading is the namespace whose router restarts for another image
	// (one at a time), since upgradeFrom
	upgrading   *owner
	upgradeFrom time.Time
	// workloads follow, by platform, the engines' running containers for
	// selectors: one follower per engine serves every namespace that
	// selects there, and ends when none does (sources are the engines)
	workloads map[string]*follow.Engine
	sources   map[string]runtime.Workloads
}

// passCache is what the passes over one namespace directory keep for the
// next: the files read (by stat) and the status files written.
type passCache struct {
	dir    namespace.Identity
	files  namespace.FileCache
	status status.Memo
	// peers are the files of other namespace directories read, by name;
	// bound the attached connectors the last pass rendered, by binding
	peers map[string]*namespace.FileCache
	bound map[string]*routerconfig.Attached
	// render keeps the entities of unchanged resources, statuses the
	// statuses worked out
	render   routerconfig.Memo
	statuses pass.Memo
}

// Refresh makes the next pass of every namespace read and write
// everything again, as a first one does: the periodic full pass, and
// SIGHUP.
func (r *Reconciler) Refresh() {
	r.eachOwner(func(o *owner) { o.refresh.Store(true) })
}

// New returns a Reconciler.
func New(opts Options) *Reconciler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Platform == "" {
		opts.Platform = "podman"
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.RuntimeTimeout <= 0 {
		opts.RuntimeTimeout = 2 * time.Minute
	}
	if opts.ManagementTimeout <= 0 {
		opts.ManagementTimeout = 10 * time.Second
	}
	if opts.RedeemTimeout <= 0 {
		opts.RedeemTimeout = 15 * time.Second
	}
	if opts.HostNames == nil {
		opts.HostNames = site.HostNames
	}
	runtimes := map[string]runtime.Runtime{}
	for p, rt := range opts.Runtimes {
		runtimes[p] = deadlined{Runtime: rt, timeout: opts.RuntimeTimeout}
	}
	r := &Reconciler{opts: opts, owners: map[string]*owner{}, workloads: map[string]*follow.Engine{}, sources: map[string]runtime.Workloads{}}
	for p, rt := range opts.Runtimes {
		if w, ok := rt.(runtime.Workloads); ok {
			r.sources[p] = w
		}
	}
	opts.Runtimes = runtimes
	r.opts = opts
	return r
}

// Network is the data home's network observers: the latest view of each
// namespace's network, and a call when one changes (for the console).
func (r *Reconciler) Network() *netview.Set { return &r.nets }

// Options returns the options in force, defaults filled in (runtimes
// wrapped with their deadlines).
func (r *Reconciler) Options() Options { return r.opts }

// Close ends every namespace's owner (its helpers with it) and the
// engines' container followers, and waits for them: nothing the
// Reconciler started runs after it.
func (r *Reconciler) Close() {
	r.mu.Lock()
	owners := r.owners
	r.owners = map[string]*owner{}
	r.mu.Unlock()
	for _, o := range owners {
		o.Close()
	}
	r.nets.Close()
	r.mu.Lock()
	followers := r.workloads
	r.workloads = map[string]*follow.Engine{}
	r.mu.Unlock()
	for _, c := range followers {
		c.Stop()
	}
}

// Reverify makes every live session read its router in full on its next
// pass (SIGHUP: repair whatever others changed).
func (r *Reconciler) Reverify() {
	r.eachOwner(func(o *owner) { o.session.Reverify() })
}

// Result tells what one pass did (package pass).
type Result = pass.Result

// Phases are the steps of a pass, timed (package pass).
type Phases = pass.Phases

// Reconcile runs one pass over namespace name that looks at every input
// file (reading again only those whose stat changed since the last pass).
func (r *Reconciler) Reconcile(ctx context.Context, name string) (*Result, error) {
	return r.ReconcileChanged(ctx, name, nil)
}

// ReconcileChanged runs one pass over namespace name, told which paths
// (relative to the namespace directory) may have changed since its
// previous pass: no other resource file is listed or looked at again. nil
// means unknown: every file is looked at, as Reconcile does.
func (r *Reconciler) ReconcileChanged(ctx context.Context, name string, changed []string) (*Result, error) {
	dir, err := namespace.Open(r.opts.DataHome, name)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir.Input()); err != nil || !st.IsDir() {
		// never recreate a namespace the user removed; stop its router
		var release error
		if _, err := os.Lstat(dir.Path); errors.Is(err, fs.ErrNotExist) {
			// the ports it held are free
			if _, err := dir.ReleasePorts(&r.ports); err != nil {
				release = fmt.Errorf("releasing the ports of %s: %w", name, err)
			}
		}
		r.closeOwner(name)
		r.releaseFollowers()
		return &Result{Gone: true}, errors.Join(release, r.removeEverywhere(ctx, dir))
	}
	before, err := dir.Identity()
	if err != nil {
		return &Result{Gone: true}, nil
	}
	defer undoRecreation(dir, before)
	if err := securePrivateDirs(dir); err != nil {
		return nil, err
	}
	o := r.ownerOf(dir, before)
	o.holdObservation()
	if o.refresh.Swap(false) {
		// trust nothing kept: the files, nor what the runtime last said
		// (a new router image is noticed now)
		o.cache, o.ensured, o.kept = &passCache{dir: before}, nil, nil
	}
	if res, ok, err := r.patchPass(ctx, o, dir, changed); ok {
		return res, err
	}
	o.kept = nil
	cache := o.cache
	phase := time.Now()
	lap := func(d *time.Duration) {
		now := time.Now()
		*d, phase = now.Sub(phase), now
	}
	var phases Phases
	files, err := dir.ReadFilesCached(r.opts.MaxFileSize, &cache.files, changed)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", name, err)
	}
	in := lastgood.Resolve(&o.good, dir, before, files, r.opts.Now())
	// what grant servers answered to the namespace's AccessTokens
	tdocs, tprobs := tokens.Docs(dir, in.Docs, len(in.Incomplete) == 0)
	ns := resources.Build(name, append(in.Docs, tdocs...), append(in.Problems, tprobs...))
	recorded, err := dir.Platform()
	if err != nil {
		return nil, err
	}
	platform := cmp.Or(recorded, r.opts.Platform)
	res := &Result{Namespace: ns, Platform: platform}
	if !o.swept {
		// temporary files a crash left between write and rename
		dir.Files().RemoveTemps(filepath.Dir(dir.RouterConfig()))
		dir.Files().RemoveTemps(dir.Internal())
		o.swept = true
	}
	ps := &siteState{Pass: &pass.Pass{Namespace: ns, Dir: dir, Now: r.opts.Now(), Result: res, Incomplete: in.Incomplete, Memo: &cache.statuses},
		owner: o, cache: cache, reads: map[string]bool{}, selects: map[string]bool{}, portsFreed: r.portsFreed.Load()}
	r.selectConnectors(ctx, ps, platform)
	r.bindAttached(ctx, ps, platform)
	r.attachedViews(ctx, ps)
	o.mu.Lock()
	o.reads, o.selects = ps.reads, ps.selects
	o.mu.Unlock()
	r.releaseFollowers()
	lap(&phases.Read)

	if ns.Site != nil {
		if err := r.render(ps, layout(platform)); err != nil {
			return res, fmt.Errorf("rendering %s: %w", name, err)
		}
	}
	r.serveGrants(ps)
	site := ""
	if ns.Site != nil {
		site = res.SiteID
	}
	ps.Tokens = o.redemptions(r).Redeem(ns.Tokens, site)
	lap(&phases.Render)
	r.apply(ctx, ps, platform, recorded)
	lap(&phases.Apply)
	if ps.Desired != nil {
		res.RenewAt = ps.Desired.RenewAt
	}
	res.Until, res.Volatile = until(ps, ns, in.Incomplete)
	res.Problems = append(slices.Clone(ns.Problems), ps.Problems...)
	resources.SortProblems(res.Problems)

	written, err := r.writeStatus(ps)
	if err == nil {
		r.keep(ps, platform)
	}
	lap(&phases.Status)
	res.Phases = phases
	res.Changed = append(res.Changed, written...)
	slices.Sort(res.Changed)
	if err != nil {
		return res, fmt.Errorf("writing status of %s: %w", name, err)
	}
	return res, nil
}

// restart is a router restart and why it happened.
type restart struct {
	started time.Time
	reason  string
}

// layout is the platform a configuration is rendered for: none renders as
// podman, Skupper's default.
func layout(platform string) string {
	if platform == "podman" || platform == "docker" || platform == "linux" {
		return platform
	}
	return "podman"
}

// siteState carries one pass's working state: the pass as a value (what
// the statuses are worked out from), and what only running it needs.
type siteState struct {
	*pass.Pass
	owner *owner
	// cache is what the namespace's passes keep for the next
	cache *passCache
	// reads are the other namespaces this pass read; selects the
	// platforms on which it selected containers, containers what it saw
	// of each engine's
	reads, selects map[string]bool
	containers     map[string]containerSnapshot
	// uid and gid own the router configuration
	uid, gid int
	// portsFreed is the Reconciler's count as the pass began, before it
	// claimed its ports
	portsFreed uint64
}

// render works out the desired site (site.Reserve, site.Build) and writes it
// to runtime/ (site.Persist).
func (r *Reconciler) render(s *siteState, platform string) error {
	in, err := site.Reserve(s.Dir, s.Namespace, &r.ports)
	if err != nil {
		return err
	}
	s.Result.SiteID = in.SiteID
	in.Platform, in.Version, in.Now = platform, r.opts.Version, s.Now
	if s.cache != nil {
		in.Memo = &s.cache.render
	}
	in.Targets, in.SelectorProblems = map[string][]routerconfig.Target{}, map[string]string{}
	for name, sel := range s.Selections {
		in.Targets[name] = sel.Targets
		if sel.Problem != "" {
			in.SelectorProblems[name] = sel.Problem
		}
	}
	for _, b := range s.Namespace.Bindings {
		if v := s.Bindings[b.Metadata.Name]; v.Bound != nil {
			in.Attached = append(in.Attached, *v.Bound)
		}
	}
	in.HostNames = r.opts.HostNames()
	r.portsSettled(s.owner, in.PortsRefused(), in.PortsChanged, s.portsFreed)
	d, err := site.Build(in)
	if err != nil {
		return err
	}
	s.Desired = d
	s.Problems = append(s.Problems, d.Problems...)
	uid, gid := os.Geteuid(), os.Getegid()
	if rt := r.opts.Runtimes[platform]; rt != nil {
		uid, gid = rt.RouterUser(d.Config.LowPorts())
	}
	s.uid, s.gid = uid, gid
	changed, configChanged, err := site.Persist(s.Dir, d, uid, gid)
	s.Result.Changed = append(s.Result.Changed, changed...)
	if err != nil {
		return err
	}
	s.Result.Config = d.Config
	s.Result.ConfigChanged = configChanged
	return nil
}

// portsSettled records whether ns was refused a port (a pass that began
// when r.portsFreed was seen), and when its ports changed asks for passes
// of the namespaces that were: a port they wanted may be free now. A
// namespace refused while another freed a port (after its claim, before
// it said it was refused) asks for a pass of its own: one of the two sees
// the other.
func (r *Reconciler) portsSettled(o *owner, refused, changed bool, seen uint64) {
	o.mu.Lock()
	o.refused = refused
	o.mu.Unlock()
	if refused && r.portsFreed.Load() != seen && r.opts.Requeue != nil {
		r.opts.Requeue(o.name)
	}
	if changed {
		r.freePorts(o)
	}
}

// freePorts asks for passes of the namespaces refused a port, but o: one
// may be free now.
func (r *Reconciler) freePorts(o *owner) {
	r.portsFreed.Add(1)
	if r.opts.Requeue == nil {
		return
	}
	r.eachOwner(func(other *owner) {
		other.mu.Lock()
		again := other.refused && other != o
		other.mu.Unlock()
		if again {
			r.opts.Requeue(other.name)
		}
	})
}

// Validate runs every check of a pass that needs no engine over a
// namespace's files as they are (no last good copies), writing nothing:
// no problem here means the pass will find none before the runtime.
func Validate(dir namespace.Dir) ([]resources.Problem, error) {
	return ValidateWith(dir, site.HostNames)
}

// ValidateWith is Validate with the host's names as hostNames gives them.
func ValidateWith(dir namespace.Dir, hostNames func() []string) ([]resources.Problem, error) {
	ns, err := dir.Load()
	if err != nil {
		return nil, err
	}
	problems := slices.Clone(ns.Problems)
	if ns.Site != nil {
		in, err := site.Peek(dir, ns)
		if err != nil {
			return nil, err
		}
		in.Platform, in.Version, in.Now = "podman", "validate", time.Now()
		in.HostNames = hostNames()
		d, err := site.Build(in)
		if err != nil {
			return nil, err
		}
		problems = append(problems, d.Problems...)
	}
	resources.SortProblems(problems)
	return problems, nil
}

// ReportFailure writes a failed pass into the status of the namespace's
// Site (or, without a valid Site, of every Site document), leaving the
// other status files as they are.
func (r *Reconciler) ReportFailure(name string, failure error, retry time.Duration) error {
	dir, err := namespace.Open(r.opts.DataHome, name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir.Input()); err != nil {
		return nil
	}
	ns, err := dir.Load()
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("reconcile failed: %v; retrying in %s", failure, retry.Round(time.Millisecond))
	// the files written here are not what the passes' memo says: the
	// next pass compares them anew
	var memo *status.Memo
	if o := r.existingOwner(name); o != nil {
		memo = &o.cache.status
	}
	w := status.Writer{Dir: dir, Now: r.opts.Now, Memo: memo}
	var errs []error
	for _, d := range ns.Docs {
		if d.Kind != resources.KindSite {
			continue
		}
		st := status.Status{Status: status.Error, Message: msg, Conditions: []status.Condition{
			pass.Cond(status.ReadyCond, false, "ReconcileFailed", msg, 0),
		}}
		errs = append(errs, w.WriteOne(status.Entry{Kind: d.Kind, Name: d.Name, Raw: d.Raw, Node: d.Node, Status: st}))
	}
	return errors.Join(errs...)
}

// undoRecreation removes a namespace directory that this pass recreated:
// when the user removes a namespace while it is being reconciled, the
// pass's writes can bring back an empty directory holding only our
// runtime/ and internal/. Such a directory has no input/ and is not the
// one the pass started with. Only runtime/ and internal/ are removed, and
// the directory itself only when that leaves it empty; a directory that has
// an input/ is never touched.
func undoRecreation(dir namespace.Dir, before namespace.Identity) {
	now, err := dir.Identity()
	if err != nil || now == before {
		return
	}
	if _, err := os.Stat(dir.Input()); err == nil {
		// replaced, not removed (restored with mv, say): its state is
		// the namespace's, whichever directory it came with
		return
	}
	// only what a pass writes goes; the directory itself only if empty,
	// so that a namespace the user is creating right now is left alone
	dir.Files().RemoveAll(dir.Runtime())
	dir.Files().RemoveAll(dir.Internal())
	os.Remove(dir.Path)
}
