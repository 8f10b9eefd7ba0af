// Package controller reconciles namespaces: it reads a namespace's whole
// input, works out the desired site (credentials, router configuration),
// writes runtime/ and the status of every resource.
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
	"strings"
	"sync"
	"time"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
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
}

// Reconciler runs reconcile passes. It is safe for concurrent use on
// different namespaces.
type Reconciler struct {
	opts Options

	live liveSessions

	mu sync.Mutex
	// restartKeys records, by namespace, what the router last started with
	// that it cannot change live.
	restartKeys map[string]string
	// restarts records why a namespace's router was last restarted.
	restarts map[string]restart
	// alone records, by namespace, the platform on which the namespace's
	// router was last checked to be the only one (see leaveOtherRuntimes).
	alone map[string]string
	// lastGood keeps broken files' resources in force.
	lastGood lastGood
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
	runtimes := map[string]runtime.Runtime{}
	for p, rt := range opts.Runtimes {
		runtimes[p] = deadlined{Runtime: rt, timeout: opts.RuntimeTimeout}
	}
	opts.Runtimes = runtimes
	return &Reconciler{opts: opts, alone: map[string]string{}, restartKeys: map[string]string{}, restarts: map[string]restart{},
		live: liveSessions{sessions: map[string]*session{}, failures: map[string]int{}}}
}

// Result tells what one pass did.
type Result struct {
	// Gone is true when the namespace directory (or its input/) no longer
	// exists: nothing was read or written.
	Gone      bool
	Namespace *resources.Namespace
	Platform  string
	SiteID    string
	// Config is the rendered router configuration; nil without a Site.
	Config routerconfig.Config
	// ConfigChanged is true when runtime/router/skrouterd.json changed.
	ConfigChanged bool
	// Changed lists the files written or removed, relative to the
	// namespace directory, sorted.
	Changed []string
	// Problems holds validation problems and problems found while
	// preparing resources (missing credentials), sorted.
	Problems []resources.Problem

	// RenderOnly is true when no runtime runs this namespace's router
	// (platform none, or the render command).
	RenderOnly bool
	// Router is the state of the router after the pass; nil when
	// rendering only.
	Router *runtime.State
	// RouterErr is why the runtime could not do what the pass asked; the
	// daemon retries with backoff.
	RouterErr error
	// Recheck asks for another pass after this long, to follow a router
	// that is starting or failing.
	Recheck time.Duration
	// Live is the running router's state after a live apply; nil when
	// not managed live (no runtime, Live off, or not reachable).
	Live *Live
	// LiveErr is why the router could not be reached or changed live.
	LiveErr error
	// Restarted says why this pass restarted the router, if it did.
	Restarted string
}

// Reconcile runs one full pass over namespace name.
func (r *Reconciler) Reconcile(ctx context.Context, name string) (*Result, error) {
	dir, err := namespace.Open(r.opts.DataHome, name)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir.Join("input")); err != nil || !st.IsDir() {
		// never recreate a namespace the user removed; stop its router
		r.lastGood.forget(name)
		return &Result{Gone: true}, r.removeEverywhere(ctx, dir)
	}
	before, err := dir.Identity()
	if err != nil {
		return &Result{Gone: true}, nil
	}
	defer undoRecreation(dir, before)
	files, err := dir.ReadFiles(r.opts.MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", name, err)
	}
	in := r.lastGood.resolve(dir, before, files, r.opts.Now())
	ns := resources.Build(name, in.docs, in.probs)
	recorded, err := dir.Platform()
	if err != nil {
		return nil, err
	}
	platform := cmp.Or(recorded, r.opts.Platform)
	res := &Result{Namespace: ns, Platform: platform}
	// temporary files a crash left between write and rename
	fileio.RemoveTemps(filepath.Dir(dir.RouterConfig()))
	fileio.RemoveTemps(dir.Internal())
	site := &siteState{ns: ns, dir: dir, now: r.opts.Now(), res: res, incomplete: in.incomplete}

	if ns.Site != nil {
		if err := r.render(site, layout(platform)); err != nil {
			return res, fmt.Errorf("rendering %s: %w", name, err)
		}
	}
	r.apply(ctx, site, platform, recorded)
	res.Problems = append(slices.Clone(ns.Problems), site.problems...)
	resources.SortProblems(res.Problems)

	changed, err := r.writeStatus(site)
	res.Changed = append(res.Changed, changed...)
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

// siteState carries one pass's working state.
type siteState struct {
	ns       *resources.Namespace
	dir      namespace.Dir
	now      time.Time
	res      *Result
	problems []resources.Problem // problems found while preparing
	// failed marks valid resources left out of the router config.
	failed map[resources.Object][]resources.Problem
	// incomplete names files that could not be used whole and whose last
	// good content is unknown: the pass is no evidence that anything in
	// them is gone.
	incomplete []string
}

func (s *siteState) changed(paths ...string) {
	for _, p := range paths {
		rel, err := filepath.Rel(s.dir.Path, p)
		if err != nil {
			rel = p
		}
		s.res.Changed = append(s.res.Changed, rel)
	}
}

// fail records that a valid resource cannot be rendered.
func (s *siteState) fail(o resources.Object, field, msg string) {
	d := s.ns.DocumentOf(o)
	p := resources.Problem{File: d.File, Line: d.LineOf(field), ID: d.ID(), Field: field, Message: msg}
	s.problems = append(s.problems, p)
	if s.failed == nil {
		s.failed = map[resources.Object][]resources.Problem{}
	}
	s.failed[o] = append(s.failed[o], p)
}

func (r *Reconciler) render(s *siteState, platform string) error {
	dir := s.dir
	// A router config this controller did not write (Skupper's own, say)
	// gives the site id and port to adopt; read only when needed.
	var old routerconfig.Config
	adopt := func() routerconfig.Config {
		if old == nil {
			if data, err := os.ReadFile(dir.RouterConfig()); err == nil {
				old, _ = routerconfig.Parse(data) // unreadable: start over
			}
		}
		return old
	}
	siteID, err := dir.SiteID(func() string { m, _ := adopt().Metadata(); return m.ID })
	if err != nil {
		return err
	}
	s.res.SiteID = siteID
	port, err := dir.ManagementPort(func() int { p, _ := adopt().ManagementPort(); return p }, routerconfig.DefaultManagementPort)
	if err != nil {
		return err
	}
	if err := s.checkManagementPorts(port); err != nil {
		return err
	}

	creds, err := s.prepareCredentials()
	if err != nil {
		return err
	}
	// leave out what failed
	rendered := *s.ns
	rendered.Listeners = slices.DeleteFunc(slices.Clone(s.ns.Listeners), func(l *resources.Listener) bool { return s.failed[l] != nil })
	rendered.Connectors = slices.DeleteFunc(slices.Clone(s.ns.Connectors), func(c *resources.Connector) bool { return s.failed[c] != nil })

	certBase := routerconfig.ContainerCertBase
	if platform == "linux" {
		certBase = dir.Path
	}
	cfg, err := routerconfig.Render(&rendered, routerconfig.Environment{
		SiteID:         siteID,
		Platform:       platform,
		Version:        r.opts.Version,
		ManagementPort: port,
		CertBase:       certBase,
		Credentials:    creds,
	})
	if err != nil {
		return err
	}
	data, err := cfg.Marshal()
	if err != nil {
		return err
	}
	changed, err := fileio.WriteFile(dir.RouterConfig(), data, 0o644, 0o755, false)
	if err != nil {
		return err
	}
	if changed {
		s.changed(dir.RouterConfig())
	}
	s.res.Config = cfg
	s.res.ConfigChanged = changed
	return nil
}

// checkManagementPorts fails the Listeners that would bind a loopback
// address on a local management port: this site's, or another namespace's
// of the same data home.
func (s *siteState) checkManagementPorts(own int) error {
	others, err := s.dir.ManagementPorts()
	if err != nil {
		return fmt.Errorf("reading the reserved management ports: %w", err)
	}
	for _, l := range s.ns.Listeners {
		switch l.Spec.Host {
		case "127.0.0.1", "localhost", "0.0.0.0", "::", "":
		default:
			continue
		}
		port := int(l.Spec.Port)
		if port == own {
			s.fail(l, "spec.port", fmt.Sprintf("port %d is this site's local management port (internal/management-port): choose another port", port))
		} else if ns, ok := others[port]; ok {
			s.fail(l, "spec.port", fmt.Sprintf("port %d is the local management port of namespace %s: choose another port", port, ns))
		}
	}
	return nil
}

// prepareCredentials makes runtime/certs hold every credential the router
// config refers to: the generated local management credentials, and the
// Listener and Connector credentials from input/certs (or, for a Listener
// without user-provided files, generated by the site's service CA).
// Directories under runtime/certs that nothing refers to any more are
// removed.
func (s *siteState) prepareCredentials() (map[string]routerconfig.Credential, error) {
	dir := s.dir
	creds := map[string]routerconfig.Credential{}
	issuers := map[string]*certs.CA{}
	issuer := func(name string) (*certs.CA, error) {
		if ca, ok := issuers[name]; ok {
			return ca, nil
		}
		// a user-provided issuer wins over a generated one
		user := filepath.Join(dir.InputIssuers(), name)
		if ca, err := certs.LoadCA(user); err == nil {
			issuers[name] = ca
			return ca, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		path := filepath.Join(dir.RuntimeIssuers(), name)
		ca, created, err := certs.EnsureCA(path, name, s.now)
		if err != nil {
			return nil, err
		}
		if created {
			s.changed(path)
		}
		issuers[name] = ca
		return ca, nil
	}
	leaf := func(name, caName string, l certs.Leaf) error {
		ca, err := issuer(caName)
		if err != nil {
			return err
		}
		path := filepath.Join(dir.RuntimeCerts(), name)
		changed, err := certs.EnsureLeaf(path, ca, l, s.now)
		if err != nil {
			return err
		}
		if changed {
			s.changed(path)
		}
		creds[name] = routerconfig.Credential{CA: true, KeyPair: true}
		return nil
	}
	if err := leaf(routerconfig.LocalServer, routerconfig.LocalCA, certs.Leaf{
		CommonName: "127.0.0.1", Hosts: []string{"127.0.0.1", "localhost"}, Server: true,
	}); err != nil {
		return nil, err
	}
	if err := leaf(routerconfig.LocalClient, routerconfig.LocalCA, certs.Leaf{
		CommonName: routerconfig.LocalClient, Client: true,
	}); err != nil {
		return nil, err
	}

	// copyUser copies input/certs/<name> to runtime/certs/<as>.
	copyUser := func(name, as string, caOnly bool) (routerconfig.Credential, error) {
		src := filepath.Join(dir.InputCerts(), name)
		hasCA, hasPair, err := certs.CheckUserCredential(src)
		if err != nil {
			return routerconfig.Credential{}, fmt.Errorf("input/certs/%s: %w", name, err)
		}
		dst := filepath.Join(dir.RuntimeCerts(), as)
		var changed bool
		if caOnly {
			if !hasCA {
				return routerconfig.Credential{}, nil
			}
			changed, err = certs.CopyFile(filepath.Join(src, certs.CAFile), filepath.Join(dst, certs.CAFile))
			hasPair = false
		} else {
			changed, err = certs.Copy(src, dst)
		}
		if err != nil {
			return routerconfig.Credential{}, err
		}
		if changed {
			s.changed(dst)
		}
		c := routerconfig.Credential{CA: hasCA, KeyPair: hasPair}
		creds[as] = c
		return c, nil
	}
	exists := func(name string) bool {
		st, err := os.Stat(filepath.Join(dir.InputCerts(), name))
		return err == nil && st.IsDir()
	}

	// Each router credential under runtime/certs has one source; two
	// resources that would fill the same one differently (a Listener's
	// x-profile and Connector x's CA-only profile, say) are a conflict,
	// reported on the one that comes later.
	type source struct {
		from      string // input/certs/<from>, or "" when generated
		caOnly    bool
		firstUser string // the resource that claimed it first
	}
	claimed := map[string]source{}
	claim := func(o resources.Object, as string, src source) bool {
		prev, ok := claimed[as]
		if !ok {
			claimed[as] = src
			return true
		}
		if prev.from == src.from && prev.caOnly == src.caOnly {
			return true
		}
		what := func(s source) string {
			switch {
			case s.from == "":
				return "a certificate the site generates"
			case s.caOnly:
				return "the ca.crt of input/certs/" + s.from
			default:
				return "a copy of input/certs/" + s.from
			}
		}
		s.fail(o, "spec.tlsCredentials", fmt.Sprintf("the router credential %q would hold both %s (for %s) and %s (for this one); rename input/certs/%s",
			as, what(prev), prev.firstUser, what(src), cmp.Or(src.from, prev.from)))
		return false
	}
	// a generated Listener credential names the hosts of every Listener
	// that shares it
	hosts := map[string][]string{}
	for _, l := range s.ns.Listeners {
		if name := l.Spec.TLSCredentials; name != "" && !exists(name) {
			hosts[name] = append(hosts[name], l.Spec.Host)
		}
	}
	for _, l := range s.ns.Listeners {
		name := l.Spec.TLSCredentials
		if name == "" {
			continue
		}
		src := source{from: name, firstUser: "Listener/" + l.Metadata.Name}
		if !exists(name) {
			src.from = ""
		}
		if !claim(l, name, src) {
			continue
		}
		if _, done := creds[name]; done {
			continue
		}
		if exists(name) {
			c, err := copyUser(name, name, false)
			if err != nil {
				s.fail(l, "spec.tlsCredentials", err.Error())
			} else if !c.KeyPair {
				s.fail(l, "spec.tlsCredentials", fmt.Sprintf("input/certs/%s has no tls.crt and tls.key for the listener to serve", name))
			}
			continue
		}
		names := slices.Compact(slices.Sorted(slices.Values(hosts[name])))
		if err := leaf(name, routerconfig.ServiceCA, certs.Leaf{CommonName: names[0], Hosts: names, Server: true}); err != nil {
			s.fail(l, "spec.tlsCredentials", err.Error())
		}
	}
	for _, c := range s.ns.Connectors {
		name := c.Spec.TLSCredentials
		if name == "" {
			continue
		}
		if !exists(name) {
			s.fail(c, "spec.tlsCredentials", fmt.Sprintf("input/certs/%s not found: put there the ca.crt that signed the server's certificate (and tls.crt, tls.key for useClientCert)", name))
			continue
		}
		var cred routerconfig.Credential
		var err error
		as := routerconfig.ConnectorProfile(name)
		if c.Spec.UseClientCert {
			as = name
		}
		if !claim(c, as, source{from: name, caOnly: !c.Spec.UseClientCert, firstUser: "Connector/" + c.Metadata.Name}) {
			continue
		}
		if prev, done := creds[as]; done {
			cred = prev
		} else {
			cred, err = copyUser(name, as, !c.Spec.UseClientCert)
		}
		switch {
		case err != nil:
			s.fail(c, "spec.tlsCredentials", err.Error())
		case !cred.CA:
			s.fail(c, "spec.tlsCredentials", fmt.Sprintf("input/certs/%s has no ca.crt to verify the server with", name))
		case c.Spec.UseClientCert && !cred.KeyPair:
			s.fail(c, "spec.useClientCert", fmt.Sprintf("input/certs/%s has no tls.crt and tls.key to present to the server", name))
		}
	}

	// remove credentials nothing refers to any more
	entries, err := os.ReadDir(dir.RuntimeCerts())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listing %s: %w", dir.RuntimeCerts(), err)
	}
	for _, e := range entries {
		if _, used := creds[e.Name()]; used && e.IsDir() {
			fileio.RemoveTemps(filepath.Join(dir.RuntimeCerts(), e.Name()))
		}
		if _, used := creds[e.Name()]; used || !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir.RuntimeCerts(), e.Name())
		if err := os.RemoveAll(path); err != nil {
			return nil, fmt.Errorf("removing unused %s: %w", path, err)
		}
		s.changed(path)
	}
	return creds, nil
}

// ReportFailure writes a failed pass into the status of the namespace's
// Site (or, without a valid Site, of every Site document), leaving the
// other status files as they are.
func (r *Reconciler) ReportFailure(name string, failure error, retry time.Duration) error {
	dir, err := namespace.Open(r.opts.DataHome, name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir.Join("input")); err != nil {
		return nil
	}
	ns, err := dir.Load()
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("reconcile failed: %v; retrying in %s", failure, retry.Round(time.Millisecond))
	w := status.Writer{Dir: dir, Now: r.opts.Now}
	var errs []error
	for _, d := range ns.Docs {
		if d.Kind != resources.KindSite {
			continue
		}
		st := status.Status{Status: status.Error, Message: msg, Conditions: []status.Condition{
			cond(status.ReadyCond, false, "ReconcileFailed", msg, 0),
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
	if _, err := os.Stat(dir.Join("input")); err == nil {
		// replaced, not removed (restored with mv, say): its state is
		// the namespace's, whichever directory it came with
		return
	}
	// only what a pass writes goes; the directory itself only if empty,
	// so that a namespace the user is creating right now is left alone
	os.RemoveAll(dir.Join("runtime"))
	os.RemoveAll(dir.Join("internal"))
	os.Remove(dir.Path)
}
