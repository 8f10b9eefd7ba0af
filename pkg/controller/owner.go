package controller

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/site-controller/site-controller/pkg/lastgood"
	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/netview"
	"github.com/site-controller/site-controller/pkg/tokens"
)

// owner holds everything kept between the passes of one namespace
// directory, and the long-lived helpers of its site: the live management
// session, the network observer, the AccessToken redemptions. It lives as
// long as the directory: the namespace removed, its directory replaced
// (another identity under the same name), or the Reconciler closed, Close
// ends all of it, and nothing of it writes into the namespace after.
//
// What only the namespace's own pass touches (one at a time) needs no
// lock; mu guards what other namespaces' passes and the helpers'
// goroutines read.
type owner struct {
	name string
	dir  namespace.Dir
	// identity is the directory the owner serves: another one of the same
	// name gets another owner
	identity namespace.Identity

	// the pass's own
	cache      *passCache
	good       *lastgood.Files
	ensured    *ensured
	restartKey string // what the router last started with that it cannot change live
	restart    *restart
	alone      string // the platform on which the router was last found the only one
	session    *live.Session
	// upgrading is the change ("image A → B") the router restarted for,
	// until it serves again
	upgrading string
	// kept is what the last pass leaves for a patch (nil: the next pass
	// is a full one); room what the router's open files limit was found
	kept *kept
	room *room
	// swept: the temporary files a crash left were removed (once a
	// process: only a process that stopped mid-write leaves them)
	swept bool

	// refresh: the next pass trusts nothing the earlier ones kept
	refresh atomic.Bool

	mu     sync.Mutex
	closed bool
	// refused: the last pass was refused a port another namespace holds;
	// reads are the other namespaces its last pass read, selects the
	// platforms on which it selected containers
	refused bool
	// upgradePending: the router runs another image than the runtime's,
	// and waits for its upgrade turn
	upgradePending bool
	reads          map[string]bool
	selects        map[string]bool
	// observer follows the network of the site's router; tokens redeems
	// its AccessTokens
	observer *netview.Observer
	tokens   *tokens.Redemptions
	// stops end the helpers that serve the namespace from elsewhere (its
	// token redemptions), waiting for each
	stops []func()
	// release gives back what the owner holds of the data home's (its
	// router upgrade turn)
	release func(*owner)
}

func newOwner(dir namespace.Dir, identity namespace.Identity) *owner {
	return &owner{name: dir.Name, dir: dir, identity: identity, cache: &passCache{dir: identity}, session: live.NewSession(dir)}
}

// onClose adds a helper's stop to what Close runs; false when the owner
// is closed already (the helper must not start).
func (o *owner) onClose(stop func()) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.stops = append(o.stops, stop)
	return true
}

// selecting records that the namespace selects containers on platform,
// while its pass is still selecting.
func (o *owner) selecting(platform string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.selects[platform] {
		selects := maps.Clone(o.selects)
		if selects == nil {
			selects = map[string]bool{}
		}
		selects[platform] = true
		o.selects = selects
	}
}

// isClosed tells whether Close ran.
func (o *owner) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// Close ends every helper of the namespace and waits for each to be done;
// it may be called more than once.
func (o *owner) Close() {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.closed = true
	stops := o.stops
	o.stops = nil
	o.mu.Unlock()
	o.session.Close()
	o.stopObserving()
	if o.release != nil {
		o.release(o)
	}
	if o.tokens != nil {
		o.tokens.Close()
	}
	for _, stop := range stops {
		stop()
	}
}

// observe runs the observer of the network of the site's router at its
// management port (one that asks another port is replaced).
func (r *Reconciler) observe(o *owner, port int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.observer != nil && o.observer.Port() == port {
		return
	}
	old := o.observer
	if old != nil {
		old.Close()
	}
	o.observer = r.nets.Start(o.dir, port, r.opts.Requeue)
}

// publish sets what the observer publishes of the site (its vanflow
// CONTROLLER source).
func (o *owner) publish(id netview.Identity) {
	o.mu.Lock()
	obs := o.observer
	o.mu.Unlock()
	if obs != nil {
		obs.Publish(id)
	}
}

// identity is what a pass says of the site for its CONTROLLER source: the
// Site, and the containers its Connectors' selectors picked.
func (r *Reconciler) identity(s *siteState, platform string) netview.Identity {
	id := netview.Identity{SiteID: s.Result.SiteID, Namespace: s.Dir.Name, Platform: platform, Version: r.opts.Version}
	if site := s.Namespace.Site; site != nil {
		id.Name = site.Metadata.Name
	}
	for _, sel := range s.Selections {
		for _, t := range sel.Targets {
			id.Processes = append(id.Processes, netview.Process{ID: t.ID, Name: t.Name, Host: t.Host})
		}
	}
	return id
}

// stopObserving ends the observer, if any (the site's router is gone).
// observing tells whether an observer follows the network of the site's
// router and has a view of it (it reads the router's listeners, and asks
// for a pass when their state changes).
func (o *owner) observing() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.observer != nil && o.observer.View() != nil
}

// holdObservation keeps the observer from reading the router's listeners
// and links while a pass may change the router (passHold): the change
// goes first.
func (o *owner) holdObservation() {
	o.mu.Lock()
	obs := o.observer
	o.mu.Unlock()
	obs.Hold(passHold)
}

// passHold is how long a pass keeps the observer's reads off the router: about a big site's pass and management operation, with room
// for the next change of a burst. The network view's word on a listener
// comes that much later.
const passHold = 250 * time.Millisecond

func (o *owner) stopObserving() {
	o.mu.Lock()
	obs := o.observer
	o.observer = nil
	o.mu.Unlock()
	obs.Close()
}

// redemptions returns the namespace's token redemptions, made on first
// use.
func (o *owner) redemptions(r *Reconciler) *tokens.Redemptions {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tokens == nil {
		o.tokens = tokens.New(o.dir, r.opts.RedeemTimeout, func() { r.requeue(o.name) })
		if o.closed {
			o.tokens.Close()
		}
	}
	return o.tokens
}

// view is the site's network as its observer last saw it; nil without
// one.
func (o *owner) view() *netview.View {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.observer.View()
}

// ownerOf returns the owner of namespace directory dir as it is now
// (identity): a directory that is not the one the owner served closes the
// old owner and gets a new one.
func (r *Reconciler) ownerOf(dir namespace.Dir, identity namespace.Identity) *owner {
	r.mu.Lock()
	o := r.owners[dir.Name]
	if o != nil && o.identity == identity {
		r.mu.Unlock()
		return o
	}
	n := newOwner(dir, identity)
	n.release = r.upgraded
	r.owners[dir.Name] = n
	r.mu.Unlock()
	if o != nil {
		o.Close()
	}
	return n
}

// existingOwner returns namespace name's owner, nil when it has none.
func (r *Reconciler) existingOwner(name string) *owner {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owners[name]
}

// closeOwner closes and forgets namespace name's owner, if any.
func (r *Reconciler) closeOwner(name string) {
	r.mu.Lock()
	o := r.owners[name]
	delete(r.owners, name)
	r.mu.Unlock()
	if o != nil {
		o.Close()
	}
}

// eachOwner runs f on every owner (not under the Reconciler's lock).
func (r *Reconciler) eachOwner(f func(*owner)) {
	r.mu.Lock()
	all := make([]*owner, 0, len(r.owners))
	for _, o := range r.owners {
		all = append(all, o)
	}
	r.mu.Unlock()
	for _, o := range all {
		f(o)
	}
}

// requeue asks the daemon for a pass of namespace ns.
func (r *Reconciler) requeue(ns string) {
	if r.opts.Requeue != nil {
		r.opts.Requeue(ns)
	}
}
