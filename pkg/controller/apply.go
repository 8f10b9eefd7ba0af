package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// How soon a namespace is looked at again: a router that is not running
// yet, and listeners that wait for a connector somewhere in the network.
const (
	recheckStarting = 3 * time.Second
	// settleTime is how long after a start a running router is still
	// looked at again every recheckStarting.
	settleTime       = 30 * time.Second
	recheckUnmatched = 5 * time.Second
	recheckChanged   = 250 * time.Millisecond
	// loadTime is how long after its start a router's management may
	// still be busy loading its configuration file
	loadTime = 2 * time.Minute
)

// routerHash identifies what the router must restart for. With live
// management that is only what it cannot change running (router, site,
// management listener and its credentials); without, everything it reads.
func (r *Reconciler) routerHash(s *siteState) string {
	if !r.opts.Live {
		return s.Desired.InputHash()
	}
	// credentials are not in it: new files under a profile are loaded
	// live (renewal included), the management listener's too
	h := sha256.New()
	h.Write([]byte(s.Desired.Config.RestartKey()))
	return hex.EncodeToString(h.Sum(nil))
}

// ensureAfter is how long a router that runs with the same input and
// answers its management connection is taken to be as it was, without
// asking its runtime (a D-Bus or engine call costs milliseconds, and a
// pass per change in a large site would pay it every time).
const ensureAfter = 30 * time.Second

// ensured is the last state a runtime reported for a namespace's router.
type ensured struct {
	platform, hash string
	lowPorts       bool
	state          runtime.State
	at             time.Time
}

// ensure is rt.Ensure, skipped while the router last ensured with the same
// input runs and its live session is up, for at most ensureAfter.
func (r *Reconciler) ensure(ctx context.Context, o *owner, rt runtime.Runtime, platform string, site runtime.Site) (runtime.State, error) {
	if last := o.ensured; last != nil && last.platform == platform && last.hash == site.Hash && last.lowPorts == site.LowPorts && last.state.Running &&
		time.Since(last.at) < ensureAfter && o.session.Alive() {
		return last.state, nil
	}
	st, err := rt.Ensure(ctx, site)
	o.ensured = nil
	if err == nil {
		kept := st
		if kept.Upgraded { // said once, by this pass
			kept.Upgrade, kept.Upgraded = "", false
		}
		o.ensured = &ensured{platform: platform, hash: site.Hash, lowPorts: site.LowPorts, state: kept, at: time.Now()}
	}
	return st, err
}

// settling asks to look again soon at a router that just started: it may
// be about to crash (a bad configuration, a missing credential), and a
// crash loop shows in seconds.
func settling(res *Result, now time.Time) {
	if now.Sub(res.Router.Started) < settleTime && (res.Recheck == 0 || res.Recheck > recheckStarting) {
		res.Recheck = recheckStarting
	}
}

// liveRecheck says when to look at a router again after a live apply to
// it (res.Live, res.LiveErr): soon while it loads or what was sent waits
// for its peers, with backoff while it fails.
func liveRecheck(res *Result, o *owner, started time.Time) {
	switch {
	case res.LiveErr != nil:
		res.Recheck = o.session.Failed()
		if time.Since(started) < loadTime {
			// a router loading a large configuration answers
			// nothing until it is done (tens of seconds for
			// thousands of entities): look again soon, so that
			// the site is confirmed as soon as it has loaded
			res.Recheck = min(res.Recheck, time.Second)
		}
	case len(res.Live.Refused) > 0:
		// tried again with backoff, after a full read
		res.Recheck = o.session.Failed()
	case res.Live.VerifyDue:
		res.Recheck = recheckChanged // the full read it left
	case res.Live.Unmatched() && res.Live.Applied > 0 && !o.observing():
		// a new listener goes up as soon as the router has seen
		// its connector: look again shortly (an observer of the
		// router's network reads its listeners, and asks for a pass
		// when one goes up)
		res.Recheck = recheckChanged
	case res.Live.Unmatched():
		// a peer can appear elsewhere in the network: look again
		res.Recheck = recheckUnmatched
	}
}

// room is what a pass found of the router's open files: how many
// listeners and connectors it has, and its limit.
type room struct {
	entities int
	limit    uint64
}

// checkRoom warns on the Site when the router's open files limit is
// smaller than the site needs: one file per listening socket and
// connection, so about two per listener and connector, with headroom.
func (r *Reconciler) checkRoom(s *siteState, pid int) {
	s.owner.room = nil
	if pid <= 0 || s.Desired == nil {
		return
	}
	limit, _, err := runtime.OpenFilesLimit(pid)
	if err != nil {
		return
	}
	n := 0
	for _, e := range s.Result.Config {
		switch e.Type {
		case "tcpListener", "tcpConnector", "listener", "connector":
			n++
		}
	}
	s.owner.room = &room{entities: n, limit: limit}
	need := uint64(1024 + 4*n)
	if limit >= need {
		return
	}
	p := roomProblem(s.Namespace.Site, limit, need)
	if s.Desired.Failed == nil {
		s.Desired.Failed = map[resources.Object][]resources.Problem{}
	}
	s.Desired.Failed[s.Namespace.Site] = append(s.Desired.Failed[s.Namespace.Site], p)
	s.Problems = append(s.Problems, p)
}

// roomProblem is the Site's warning that the router's open files limit is
// below what the site needs.
func roomProblem(site *resources.Site, limit, need uint64) resources.Problem {
	return resources.Problem{File: "input/resources", ID: "Site/" + site.Metadata.Name, Warning: true, Message: fmt.Sprintf(
		roomWarning+" %d files (its open files limit), fewer than the %d this site needs with headroom: raise the limit "+
			"(podman: default_ulimits nofile in containers.conf; docker: the daemon's default-ulimits; linux: the controller's own hard limit, which its units get)", limit, need)}
}

const roomWarning = "the router may open"

// apply makes the namespace's runtime match the pass: the router runs with
// the rendered input while there is a valid Site, keeps its last good
// configuration while the Site is invalid, and is removed when there is no
// Site at all.
func (r *Reconciler) apply(ctx context.Context, s *siteState, platform, recorded string) {
	res := s.Result
	now := r.opts.Now
	rt := r.opts.Runtimes[platform]
	if rt == nil {
		res.RenderOnly = true
		return
	}
	name := s.Dir.Name
	hasSite := false
	for _, d := range s.Namespace.Docs {
		hasSite = hasSite || d.Kind == resources.KindSite
	}
	switch {
	case s.Namespace.Site != nil && res.Config != nil:
		r.leaveOtherRuntimes(ctx, s.owner, platform)
		hash := r.routerHash(s)
		want := runtime.Site{Namespace: name, SiteID: res.SiteID, Dir: s.Dir.Path, Hash: hash, LowPorts: res.Config.LowPorts()}
		st, err := r.ensure(ctx, s.owner, rt, platform, want)
		if err == nil && st.Upgrade != "" && !st.Upgraded {
			st, err = r.upgradeRouter(ctx, s, rt, want, st)
		}
		res.Router, res.RouterErr = &st, err
		o := s.owner
		if err == nil && st.Upgraded {
			o.restart = &restart{started: st.Started, reason: "it was upgraded: " + st.Upgrade}
			o.upgrading = st.Upgrade
			o.session.Drop()
		}
		if old := o.restartKey; old != "" && old != hash && r.opts.Live && err == nil {
			// said in the Site status for as long as this router runs
			o.restart = &restart{started: st.Started, reason: "the router mode, id or management listener changed, which a running router cannot take live"}
			o.session.Drop()
		}
		o.restartKey = hash
		if rs := o.restart; rs != nil && err == nil {
			if rs.started.Equal(st.Started) {
				res.Restarted = rs.reason
			} else {
				o.restart = nil
			}
		}
		if err == nil && recorded == "" {
			// the namespace now lives on this platform; moving it is an
			// explicit act (editing internal/platform.yaml)
			if err := s.Dir.RecordPlatform(platform); err != nil {
				res.RouterErr = err
			}
		}
		if err == nil && !st.Running {
			res.Recheck = recheckStarting
		}
		res.Upgrading = o.upgrading
		if err == nil && st.Running {
			r.checkRoom(s, st.Pid)
		}
		if err == nil && st.Running && r.opts.Live {
			res.Live, res.LiveErr = r.applyLive(ctx, s, platform)
			if port, ok := res.Config.ManagementPort(); ok && res.LiveErr == nil {
				// the router's word on listeners and links, as it changes
				r.observe(s.owner, port)
				s.owner.publish(r.identity(s, platform))
				if res.Live.Applied > 0 {
					r.nets.PokeNetwork(name, res.SiteID) // the sites linked to this one see it too
				}
			}
			if res.LiveErr == nil && o.upgrading != "" {
				// serving again: the next router's turn
				o.upgrading, res.Upgrading = "", ""
				r.upgraded(o)
			}
			liveRecheck(res, s.owner, st.Started)
		}
		if err == nil && st.Running {
			settling(res, now())
		}
	case !hasSite && len(s.Incomplete) > 0:
		// no evidence that the Site is gone: it may be in a file that
		// could not be read or parsed
		s.Problems = append(s.Problems, resources.Problem{File: s.Incomplete[0], Message: "no Site was found, but this file could not be read " +
			"or parsed whole: the router is kept as it is until the file is fixed or removed"})
	case !hasSite:
		s.owner.session.Drop()
		s.owner.stopObserving()
		s.owner.ensured = nil
		if _, changed, err := s.Dir.ClaimPorts(&r.ports, nil, true); err != nil {
			s.Problems = append(s.Problems, resources.Problem{File: "input/resources", Message: "releasing the namespace's ports: " + err.Error()})
		} else {
			r.portsSettled(s.owner, false, changed, 0)
		}
		if err := rt.Remove(ctx, name, s.Dir.Path); err != nil {
			res.RouterErr = err
			return
		}
		res.Router = &runtime.State{Status: "absent"}
	default:
		// an invalid Site: the router keeps the last good configuration
		st, err := rt.State(ctx, name, s.Dir.Path)
		if err == nil {
			res.Router = &st
		}
	}
}

// leaveOtherRuntimes removes this namespace's router from the platforms
// it is not on any more: changing internal/platform.yaml moves a site.
// Only routers created for this very namespace directory are touched, and
// the check runs once per namespace and platform.
func (r *Reconciler) leaveOtherRuntimes(ctx context.Context, o *owner, platform string) {
	if o.alone == platform {
		return
	}
	dir := o.dir
	clean := true
	for p, other := range r.opts.Runtimes {
		if p == platform {
			continue
		}
		routers, err := other.List(ctx)
		if err != nil {
			if !runtime.IsUnavailable(err) {
				clean = false
			}
			continue // an engine that is not there runs nothing of ours
		}
		for _, rt := range routers {
			if rt.Namespace == dir.Name && rt.Dir == dir.Path {
				if err := other.Remove(ctx, dir.Name, dir.Path); err != nil {
					clean = false
				}
			}
		}
	}
	if clean {
		o.alone = platform
	}
}

// removeEverywhere removes the routers of a namespace directory that is
// gone, on every platform.
func (r *Reconciler) removeEverywhere(ctx context.Context, dir namespace.Dir) error {
	// its ports are free with it: the namespaces refused one try again
	r.freePorts(nil)
	var errs []error
	for _, rt := range r.opts.Runtimes {
		routers, err := rt.List(ctx)
		if err != nil {
			if !runtime.IsUnavailable(err) {
				errs = append(errs, err)
			}
			continue
		}
		for _, router := range routers {
			if router.Namespace == dir.Name && router.Dir == dir.Path {
				if err := rt.Remove(ctx, dir.Name, dir.Path); err != nil {
					errs = append(errs, fmt.Errorf("removing the router of %s on %s: %w", dir.Name, rt.Platform(), err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// deadlined gives every call to a runtime a deadline: a hung engine socket
// or D-Bus peer costs its namespace a failed pass (retried with backoff),
// never a worker held forever.
type deadlined struct {
	runtime.Runtime
	timeout time.Duration
}

func (d deadlined) Ensure(ctx context.Context, s runtime.Site) (runtime.State, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	st, err := d.Runtime.Ensure(ctx, s)
	return st, d.explain(ctx, err)
}

func (d deadlined) Remove(ctx context.Context, ns, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.explain(ctx, d.Runtime.Remove(ctx, ns, dir))
}

func (d deadlined) State(ctx context.Context, ns, dir string) (runtime.State, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	st, err := d.Runtime.State(ctx, ns, dir)
	return st, d.explain(ctx, err)
}

func (d deadlined) List(ctx context.Context) ([]runtime.Router, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	rs, err := d.Runtime.List(ctx)
	return rs, d.explain(ctx, err)
}

// explain says that a call failed for want of an answer in time.
func (d deadlined) explain(ctx context.Context, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s did not answer within %s: %w", d.Platform(), d.timeout, err)
	}
	return err
}

// How long one namespace's router upgrade may hold the others' back: a
// router that does not serve again by then (a broken image, say) shows
// its error in its Site status, and the next one goes.
const upgradeHold = 2 * time.Minute

// upgradeRouter restarts a router that runs another router image than
// the runtime's now, one namespace at a time: with --router-upgrade=auto
// the namespace that gets the data home's upgrade turn restarts its
// router, and keeps the turn until that router serves again; the others
// keep theirs running meanwhile, and their Site status says so. With
// manual, routers are left running and their Site status says an
// upgrade is pending.
func (r *Reconciler) upgradeRouter(ctx context.Context, s *siteState, rt runtime.Runtime, want runtime.Site, st runtime.State) (runtime.State, error) {
	o := s.owner
	o.mu.Lock()
	o.upgradePending = true
	o.mu.Unlock()
	if r.opts.RouterUpgrade == "manual" {
		s.Result.UpgradePending = "router upgrade pending: " + st.Upgrade + " (--router-upgrade=manual: it restarts with the next change it cannot take live, or under --router-upgrade=auto)"
		return st, nil
	}
	r.mu.Lock()
	holder := r.upgrading
	if holder != nil && holder != o && time.Since(r.upgradeFrom) > upgradeHold {
		holder = nil // it had its time
	}
	if holder == nil {
		r.upgrading, r.upgradeFrom, holder = o, time.Now(), o
	}
	r.mu.Unlock()
	if holder != o {
		s.Result.UpgradePending = "router upgrade pending: " + st.Upgrade + " (one router at a time: the router of namespace " + holder.name + " is restarting)"
		s.Result.Recheck = recheckStarting
		return st, nil
	}
	want.Upgrade = true
	o.ensured = nil
	next, err := r.ensure(ctx, o, rt, s.Result.Platform, want)
	if err != nil {
		r.upgraded(o)
		return next, err
	}
	o.mu.Lock()
	o.upgradePending = false
	o.mu.Unlock()
	return next, nil
}

// upgraded ends namespace o's upgrade turn, if it holds it, and asks for
// passes of the namespaces whose routers wait for theirs.
func (r *Reconciler) upgraded(o *owner) {
	r.mu.Lock()
	if r.upgrading != o {
		r.mu.Unlock()
		return
	}
	r.upgrading = nil
	r.mu.Unlock()
	r.eachOwner(func(other *owner) {
		other.mu.Lock()
		waits := other.upgradePending
		other.mu.Unlock()
		if waits && other != o {
			r.requeue(other.name)
		}
	})
}
