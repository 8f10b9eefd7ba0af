// Package netview observes the network a site's router is part of: which
// sites, their links, which routing keys have listeners and connectors
// where. Each running site with a management listener has an Observer,
// started and closed by the site's owner; a Set holds a data home's
// observers so that a change to one site's router makes the others that
// may see it look again soon.
//
// It only asks routers; it never changes one and never writes a file.
package netview

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/Azure/go-amqp"
	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/status"
	"github.com/site-controller/site-controller/pkg/vanflow"
)

// The network view.
// A site that accepts or makes links is part of a network of routers. What
// that network is — which sites, their links, which routing keys have
// listeners and connectors where, what traffic goes through them — the
// routers publish themselves, as vanflow records (pkg/vanflow): each
// site's observer subscribes, on its own management connection to the
// site's router, to the beacons of every source of the network, then to
// each source's records, asks each for all of them (FLUSH) and merges what
// follows by id (records.go). Management is asked only what records lack,
// of the local router, when something happened (a record changed, a pass
// poked): its link connectors' state and reason, and whether its
// tcpListeners accept connections. Nothing is polled on a timer but a
// link's reason while that link is down. When what statuses show changes,
// the observer asks for a pass, which writes the statuses from the latest
// view.

// View is the network as a site's router last reported it.
type View struct {
	Taken time.Time
	// Self is the local router's id.
	Self string
	// Sites are every site of the network, this one included, sorted by
	// name and id.
	Sites []status.SiteRecord
	// Links are the local router's links by Link (connector) name.
	Links map[string]LinkState
	// Listeners and Connectors are the routing keys that have a tcpListener
	// or tcpConnector anywhere in the network.
	Listeners, Connectors map[string]bool
	// ListenerUp is, by name, whether each of the local router's
	// tcpListeners accepts connections (a connector for its address is
	// reachable): it follows peers anywhere in the network.
	ListenerUp map[string]bool
	// Traffic is, by routing key, what each carries across the network
	// (nil when the source of the view has no flow records). Statuses
	// never show it, and a change to it alone asks for no pass.
	Traffic map[string]Traffic `json:"-"`
	// RouterVersions are, by site id, the skupper-router version of its
	// router, as its ROUTER record says (the console shows it; a site's
	// Version is the controller's or Skupper's). Statuses never show it.
	RouterVersions map[string]string `json:"-"`
	// Errs say what the view may lack: routers silent for a while.
	Errs []string
	// services identifies the services of Sites (and Listeners,
	// Connectors), so that the digest need not hold them all
	services string
}

// LinkState is the state of one of the local router's links.
type LinkState struct {
	Up             bool
	Message        string // the router's connectionMsg
	RemoteSiteID   string
	RemoteSiteName string
}

// digest identifies what statuses show of a view (not when it was taken).
func (v *View) digest() []byte {
	if v == nil {
		return nil
	}
	c := *v
	c.Taken = time.Time{}
	// a connection message carries a connection number that changes on
	// every attempt; only up/down and the reason matter
	links := map[string]LinkState{}
	for k, l := range c.Links {
		l.Message = ConnNumber.ReplaceAllString(l.Message, "")
		links[k] = l
	}
	c.Links = links
	if c.services != "" {
		// the services by their version: thousands of them are not
		// written out on every change
		c.Sites = slices.Clone(c.Sites)
		for i := range c.Sites {
			c.Sites[i].Services = nil
		}
		c.Listeners, c.Connectors = nil, nil
	}
	data, _ := json.Marshal(c)
	return append(data, c.services...)
}

// ConnNumber is the connection number a router puts before a link's
// connectionMsg ("[C12] "): it changes with every try.
var ConnNumber = regexp.MustCompile(`^\[C\d+\] `)

// Observer polls one site's network, from Start until Close.
type Observer struct {
	set    *Set
	ns     string
	cancel context.CancelFunc
	done   chan struct{}
	poke   chan struct{}
	port   int
	view   atomic.Pointer[View]
	// holdUntil (Unix nanoseconds): no read of the router's listeners
	// before (Hold)
	holdUntil atomic.Int64
	// what other observers' followed sources changed (feeds.go)
	hearMu      sync.Mutex
	heardChange change
	heardNet    bool
	orphans     []*source
	heard       chan struct{}
	// what the controller publishes of the site (publish.go)
	pubMu     sync.Mutex
	identity  Identity
	published chan struct{}
}

// Set holds the running observers of a data home, by namespace.
type Set struct {
	mu    sync.Mutex
	obs   map[string]*Observer
	feeds map[string]*source // by source id (feeds.go)
	w     watchers
}

// NetworkInterval is how long an observer waits before it connects again
// to a router it could not reach, and how often it reads again why a link
// that is down is down (the router's connector says; records do not).
var NetworkInterval = 2 * time.Second

// View returns the latest view of the observed network; nil before the
// first look, and for a nil Observer.
func (o *Observer) View() *View {
	if o == nil {
		return nil
	}
	return o.view.Load()
}

// Port is the management port the observer asks.
func (o *Observer) Port() int { return o.port }

// Start runs an observer of the network of the router of namespace
// directory dir, at management port port; changed(namespace) is called
// (from its goroutine) whenever what it sees changes. It replaces the
// set's observer of that namespace, if any.
func (n *Set) Start(dir namespace.Dir, port int, changed func(string)) *Observer {
	ctx, cancel := context.WithCancel(context.Background())
	o := &Observer{set: n, ns: dir.Name, cancel: cancel, done: make(chan struct{}), poke: make(chan struct{}, 1), port: port, published: make(chan struct{}, 1), heard: make(chan struct{}, 1)}
	n.mu.Lock()
	if n.obs == nil {
		n.obs = map[string]*Observer{}
	}
	old := n.obs[dir.Name]
	n.obs[dir.Name] = o
	n.mu.Unlock()
	if old != nil {
		old.Close()
	}
	go o.run(ctx, dir, changed)
	return o
}

// Close ends the observer and waits for it: its connection is closed and
// it calls changed no more. It may be called more than once.
func (o *Observer) Close() {
	if o == nil {
		return
	}
	o.cancel()
	<-o.done
	o.set.mu.Lock()
	gone := o.set.obs[o.ns] == o
	if gone {
		delete(o.set.obs, o.ns)
	}
	o.set.mu.Unlock()
	if gone {
		o.set.notify(o.ns)
	}
}

// PokeNetwork makes the observer of namespace ns, whose router a pass
// just changed (site id siteID), read again at once what records lack
// (its links' state, its listeners'). The other sites of its network hear
// of the change from the router's records, as soon as it sends them.
func (n *Set) PokeNetwork(ns, siteID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if o := n.obs[ns]; o != nil {
		select {
		case o.poke <- struct{}{}:
		default:
		}
	}
}

// Close ends every observer of the set.
func (n *Set) Close() {
	n.mu.Lock()
	all := make([]*Observer, 0, len(n.obs))
	for _, o := range n.obs {
		all = append(all, o)
	}
	n.mu.Unlock()
	for _, o := range all {
		o.Close()
	}
}

func (o *Observer) run(ctx context.Context, dir namespace.Dir, changed func(string)) {
	defer close(o.done)
	for {
		o.follow(ctx, dir, changed)
		// the router is not there (yet), or the connection broke: try
		// again after a while, or at once when a pass says the router
		// changed
		select {
		case <-ctx.Done():
			return
		case <-o.poke:
		case <-time.After(NetworkInterval):
		}
	}
}

// dials counts the observers' connections (made, or tried), for tests.
var dials atomic.Int64

// inbound is a vanflow message from a source (src "" for beacons), or
// why a subscription ended; or (applied) what the receiving goroutine
// made of a message of source from that the loop has to act on: a FLUSH
// due, a change to tell.
type inbound struct {
	src string
	msg vanflow.Message
	err error
	// set when applied
	applied bool
	from    *source
	due     bool
	ch      change
}

// follow connects to the site's router and follows the records of its
// network until ctx ends or the connection breaks.
func (o *Observer) follow(ctx context.Context, dir namespace.Dir, changed func(string)) {
	cfg, err := live.ManagementTLS(dir)
	if err != nil {
		return
	}
	dials.Add(1)
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	c, err := management.Dial(dctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port)), cfg)
	cancel()
	if err != nil {
		return
	}
	defer c.Close()
	loc := &local{}
	if err := readRouter(ctx, c, loc); err != nil {
		return
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	oc, ocancel := context.WithTimeout(ctx, 3*time.Second)
	sess, err := c.NewSession(oc)
	ocancel()
	if err != nil {
		return
	}
	in := make(chan inbound, 256)
	// subscribe receives what is sent to addr (from source src, whose
	// records from has when o follows it) until sctx or cancel ends
	subscribe := func(addr, src string, from *source, done <-chan struct{}) error {
		oc, ocancel := context.WithTimeout(sctx, 3*time.Second)
		r, err := sess.NewReceiver(oc, addr, &amqp.ReceiverOptions{Credit: 256})
		ocancel()
		if err != nil {
			return fmt.Errorf("subscribing to %s: %w", addr, err)
		}
		rctx, rcancel := context.WithCancel(sctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rcancel()
			defer func() {
				cctx, cancel := context.WithTimeout(context.Background(), time.Second)
				r.Close(cctx)
				cancel()
			}()
			go func() {
				select {
				case <-done:
					rcancel()
				case <-rctx.Done():
				}
			}()
			for {
				m, err := r.Receive(rctx, nil)
				if err != nil {
					if rctx.Err() == nil {
						select {
						case in <- inbound{src: src, err: fmt.Errorf("receiving from %s: %w", addr, err)}:
						case <-rctx.Done():
						}
					}
					return
				}
				r.AcceptMessage(rctx, m)
				vm, err := vanflow.Decode(m)
				if err != nil {
					continue // not ours to read
				}
				msg := inbound{src: src, msg: vm}
				if src != controllerFlush && o.quick(&msg, from, time.Now()) {
					continue
				}
				select {
				case in <- msg:
				case <-rctx.Done():
					return
				}
			}
		}()
		return nil
	}
	oc, ocancel = context.WithTimeout(sctx, 3*time.Second)
	flusher, err := sess.NewSender(oc, "", nil)
	ocancel()
	if err != nil {
		return
	}
	if err := subscribe(vanflow.BeaconAddress, "", nil, nil); err != nil {
		return
	}
	// the controller's own source
	pub := &publisher{started: time.Now()}
	flushSub := "" // the site id whose FLUSHes are subscribed to
	send := func(m vanflow.Message) error {
		am, err := m.Encode()
		if err != nil {
			return err
		}
		fctx, cancel := context.WithTimeout(sctx, 3*time.Second)
		defer cancel()
		return flusher.Send(fctx, am, nil)
	}
	syncPub := func(now time.Time) error {
		o.pubMu.Lock()
		id := o.identity
		o.pubMu.Unlock()
		pub.id = id
		if id.SiteID != "" && id.SiteID != flushSub {
			if err := subscribe(vanflow.DirectAddress(id.SiteID), controllerFlush, nil, nil); err != nil {
				return err
			}
			flushSub = id.SiteID
			if err := send(pub.beacon()); err != nil {
				return err
			}
		}
		if m := pub.update(now, false); m != nil {
			return send(*m)
		}
		return nil
	}
	if err := syncPub(time.Now()); err != nil {
		return
	}
	st := newStore()
	ends := map[string]chan struct{}{} // closes the subscriptions of a source no longer followed
	defer func() {
		for _, e := range ends {
			close(e)
		}
		for _, src := range st.sources {
			o.set.leave(o, src)
		}
	}()
	// followSrc subscribes to src's records; a FLUSH follows the first
	// message on its address: until then the subscription may not have
	// reached a remote router, and the answer would go nowhere
	var flush func(src *source) error
	followSrc := func(src *source, now time.Time) error {
		if ends[src.id] != nil {
			return nil
		}
		end := make(chan struct{})
		ends[src.id] = end
		addrs := []string{src.address}
		switch src.typ {
		case vanflow.SourceRouter:
			addrs = append(addrs, src.address+vanflow.FlowsSuffix)
		case vanflow.SourceController:
			addrs = append(addrs, src.address+vanflow.HeartbeatsSuffix)
		}
		for _, a := range addrs {
			if err := subscribe(a, src.id, src, end); err != nil {
				return err
			}
		}
		src.mu.Lock()
		src.flushDue = now.Add(5 * time.Second)
		src.mu.Unlock()
		// the local router answers this one at once; a remote one only
		// the FLUSH sent after its first message, which then follows
		return flush(src)
	}
	unfollow := func(id string) {
		if e := ends[id]; e != nil {
			close(e)
			delete(ends, id)
		}
	}
	started := time.Now()
	var (
		dirty         time.Time                 // since when the view is out of date (zero: it is not)
		readLinks     = true                    // the local link connectors are to be read
		listenerReads = []time.Time{time.Now()} // when to read the local tcpListeners
		lastLinkRead  time.Time
		stale         string
		// when the listeners were last read, and how long it took
		lastListenerRead time.Time
		listenerReadCost time.Duration
	)
	markDirty := func() {
		if dirty.IsZero() {
			dirty = time.Now()
		}
	}
	readListenersSoon := func() {
		// now, and again after the router has had time to follow a
		// change of the network (a connector's address reaching or
		// leaving it: its own timers take up to a second or two)
		now := time.Now()
		listenerReads = append(listenerReads, now, now.Add(250*time.Millisecond), now.Add(time.Second),
			now.Add(2*time.Second), now.Add(4*time.Second))
	}
	// flush asks src for all its records, once (src.flushDue was due)
	flush = func(src *source) error {
		msg, err := vanflow.Message{Subject: vanflow.SubjectFlush, To: src.direct}.Encode()
		if err != nil {
			return err
		}
		fctx, cancel := context.WithTimeout(sctx, 3*time.Second)
		defer cancel()
		return flusher.Send(fctx, msg, nil)
	}
	// heardOf takes what a change of records means for the view and
	// the local router's answers
	heardOf := func(ch change) {
		if ch.shape || ch.traffic {
			markDirty()
		}
		if ch.links {
			readLinks = true
			readListenersSoon()
		} else if ch.services {
			readListenersSoon()
		}
	}
	// what is due at a time rather than on a message: the controller's
	// heartbeats and beacons, FLUSHes not answered, sources silent or
	// gone, a down link's reason; nextTick is when the first of them is
	// due (zero: at once)
	var nextTick, heartbeatDue, beaconDue time.Time
	heartbeatDue, beaconDue = started.Add(2*time.Second), started.Add(10*time.Second)
	tickWork := func(now time.Time) error {
		if pub.id.SiteID != "" {
			if !now.Before(heartbeatDue) {
				heartbeatDue = now.Add(2 * time.Second)
				if err := send(pub.heartbeat(now)); err != nil {
					return err
				}
			}
			if !now.Before(beaconDue) {
				beaconDue = now.Add(10 * time.Second)
				if err := send(pub.beacon()); err != nil {
					return err
				}
			}
		}
		if srcs := o.set.joinNetwork(o, loc.routerID, now); len(srcs) > 0 {
			for _, src := range srcs {
				st.sources[src.id] = src
			}
			markDirty()
			o.set.nudge()
		}
		for _, src := range o.set.claimOwn(o, loc.siteID) {
			if err := followSrc(src, now); err != nil {
				return err
			}
		}
		for id, src := range st.sources {
			src.mu.Lock()
			last, due := src.last, !src.flushDue.IsZero() && now.After(src.flushDue)
			if due {
				src.flushDue = time.Time{}
			}
			src.mu.Unlock()
			if now.Sub(last) > ForgetAfter {
				o.set.leave(o, src)
				delete(st.sources, id)
				unfollow(id)
				markDirty()
				continue
			}
			if due && ends[id] != nil {
				if err := flush(src); err != nil {
					return err
				}
			}
		}
		if s := st.stale(now); s != stale {
			// a router gone quiet (a partition, a router stopped) or
			// heard again: the local router's routes to it changed
			// too, and records do not say so; its listeners and
			// links do
			stale = s
			markDirty()
			readLinks = true
			readListenersSoon()
			// the routers' HELLOs take a while to bring a route back:
			// look again later too (a source heard again is seen at its
			// first message, not up to a tick after)
			listenerReads = append(listenerReads, now.Add(2*time.Second), now.Add(4*time.Second))
		}
		// a link that is down: the router tries again and again, and
		// only its connector says why each try failed
		if loc.linksDown() && now.Sub(lastLinkRead) >= NetworkInterval {
			readLinks = true
		}
		return nil
	}
	// tickAt is when tickWork has something to do next: nothing spins,
	// and an idle network wakes the loop about once per staleAfter
	// less a heartbeat's interval, not every second
	tickAt := func(now time.Time) time.Time {
		next := now.Add(maxTick)
		if pub.id.SiteID != "" {
			next = earliest(next, earliest(heartbeatDue, beaconDue))
		}
		for _, src := range st.sources {
			src.mu.Lock()
			last, flushDue := src.last, src.flushDue
			src.mu.Unlock()
			if !flushDue.IsZero() {
				next = earliest(next, flushDue.Add(time.Millisecond))
			}
			if src.typ == vanflow.SourceRouter && now.Sub(last) <= staleAfter {
				next = earliest(next, last.Add(staleAfter+time.Millisecond))
			} else {
				next = earliest(next, last.Add(ForgetAfter+time.Millisecond))
			}
		}
		if loc.linksDown() {
			next = earliest(next, lastLinkRead.Add(NetworkInterval))
		}
		if floor := now.Add(minTick); next.Before(floor) {
			return floor
		}
		return next
	}
	// one timer for the loop's next due thing, not one per message
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	wakeTimer := func(d time.Duration) <-chan time.Time {
		timer.Reset(d)
		return timer.C
	}
	for {
		now := time.Now()
		if !now.Before(nextTick) {
			if err := tickWork(now); err != nil {
				return
			}
		}
		// reads wait for a pass's hold (any operation costs a big router
		// tens of milliseconds, and the change would wait behind it)
		held := func() time.Time { return time.Unix(0, o.holdUntil.Load()) }
		linksAt := func() time.Time { return readAllowed(lastLinkRead, 0, held()) }
		if readLinks && !linksAt().After(now) {
			readLinks = false
			lastLinkRead = now
			before := loc.linkDigest()
			if err := readLinkConns(ctx, c, loc); err != nil {
				return
			}
			if loc.linkDigest() != before {
				markDirty()
			}
		}
		slices.SortFunc(listenerReads, time.Time.Compare)
		// listener reads are also spaced by four times what the last one
		// took: a router of thousands of listeners takes tens of
		// milliseconds over each
		spacedAt := func() time.Time { return readAllowed(lastListenerRead, listenerReadCost, held()) }
		if len(listenerReads) > 0 && !listenerReads[0].After(now) && !spacedAt().After(now) {
			for len(listenerReads) > 0 && !listenerReads[0].After(now) {
				listenerReads = listenerReads[1:]
			}
			up, keys := loc.listenerUp, loc.multiKeys
			lastListenerRead = now
			if err := readListeners(ctx, c, loc); err != nil {
				return
			}
			listenerReadCost = time.Since(lastListenerRead)
			if !maps.Equal(up, loc.listenerUp) || !maps.EqualFunc(keys, loc.multiKeys, slices.Equal) {
				markDirty()
			}
		}
		// a first view once the local router's own records are in (its
		// beacon comes every 10 s), or after a while without them
		ready := o.view.Load() != nil || st.has(loc.routerID) || now.Sub(started) > firstViewWait
		if !dirty.IsZero() && ready && now.Sub(dirty) >= rebuildDelay {
			dirty = time.Time{}
			o.publish(st.build(loc, now), changed)
		}
		wake := time.Hour
		switch {
		case !dirty.IsZero() && ready:
			wake = max(0, rebuildDelay-now.Sub(dirty))
		case !dirty.IsZero():
			wake = max(rebuildDelay, started.Add(firstViewWait).Sub(now))
		}
		if len(listenerReads) > 0 {
			wake = min(wake, max(0, listenerReads[0].Sub(now), spacedAt().Sub(now)))
		}
		if readLinks {
			wake = min(wake, max(0, linksAt().Sub(now)))
		}
		nextTick = tickAt(now)
		wake = min(wake, nextTick.Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-o.poke:
			readLinks = true
			readListenersSoon()
		case <-o.published:
			if err := syncPub(now); err != nil {
				return
			}
		case <-wakeTimer(wake):
		case m := <-in:
			if m.err != nil {
				return // the connection broke, or the router went away
			}
			if m.applied {
				if m.due {
					if err := flush(m.from); err != nil {
						return
					}
				}
				if m.ch != (change{}) {
					o.set.tell(o, m.from, m.ch)
					heardOf(m.ch)
				}
				continue
			}
			if m.src == controllerFlush {
				if m.msg.Subject == vanflow.SubjectFlush {
					if u := pub.update(now, true); u != nil {
						if err := send(*u); err != nil {
							return
						}
					}
				}
				continue
			}
			switch m.msg.Subject {
			case vanflow.SubjectBeacon:
				src, follow := o.set.join(o, m.msg, now)
				if st.sources[src.id] == nil {
					st.sources[src.id] = src
					markDirty()
				}
				if follow {
					if err := followSrc(src, now); err != nil {
						return
					}
				}
			case vanflow.SubjectHeartbeat, vanflow.SubjectRecord:
				src := st.sources[m.src]
				if src == nil || !o.set.follows(o, src) {
					unfollow(m.src) // forgotten, or another observer follows it now
					continue
				}
				src.mu.Lock()
				src.last = now
				due := !src.flushDue.IsZero()
				src.flushDue = time.Time{}
				var ch change
				if m.msg.Subject == vanflow.SubjectRecord {
					ch = src.apply(m.msg.Records)
				}
				src.mu.Unlock()
				if due {
					if err := flush(src); err != nil {
						return
					}
				}
				if ch != (change{}) {
					o.set.tell(o, src, ch)
					heardOf(ch)
				}
			}
		case <-o.heard:
			ch, orphans, moved := o.taken()
			if moved {
				nextTick = time.Time{} // the set changed: look at once
			}
			heardOf(ch)
			for _, src := range orphans {
				if st.sources[src.id] == src && o.set.adopt(o, src) {
					if err := followSrc(src, now); err != nil {
						return
					}
				}
			}
		}
	}
}

// quick takes, on the goroutine that received it, a message that
// changes nothing the loop keeps, and tells whether it did: a beacon of a
// source o watches already (and follows, or another observer does that
// is not silent), a heartbeat of a source o follows, records of it
// (merged here). Of the latter two, what the loop has to act on (a FLUSH
// due, a change a view shows or traffic) is left in m, applied, for the
// loop. Idle, a network sends little else: the loop need not wake for
// them.
func (o *Observer) quick(m *inbound, from *source, now time.Time) bool {
	switch m.msg.Subject {
	case vanflow.SubjectBeacon:
		return m.src == "" && o.set.watches(o, m.msg.ID, now)
	case vanflow.SubjectHeartbeat, vanflow.SubjectRecord:
		if from == nil || !o.set.follows(o, from) {
			return false // the loop ends the subscription
		}
		from.mu.Lock()
		// a source heard again after a silence, or its router named:
		// what the observers watch may change (see tickWork)
		wake := now.Sub(from.last) > staleAfter
		name, site := from.routerName, from.site
		from.last = now
		due := !from.flushDue.IsZero()
		from.flushDue = time.Time{}
		var ch change
		if m.msg.Subject == vanflow.SubjectRecord {
			ch = from.apply(m.msg.Records)
		}
		wake = wake || from.routerName != name || from.site != site
		from.mu.Unlock()
		if wake {
			o.set.nudge()
		}
		if !due && ch == (change{}) {
			return true
		}
		*m = inbound{src: m.src, applied: true, from: from, due: due, ch: ch}
		return false
	}
	return false
}

// firstViewWait is how long an observer waits for its own router's
// records before it makes a view without them: not at all, the local
// router's links and listeners (from management) are worth showing at
// once; the network follows as its sources' beacons come (every 10 s).
var firstViewWait = time.Duration(0)

// minTick and maxTick bound how long an observer's loop waits for what
// is due at a time (tickAt).
const (
	minTick = 50 * time.Millisecond
	maxTick = 5 * time.Second
)

// earliest is the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// controllerFlush marks what comes on the controller's source's direct
// address (FLUSH requests).
const controllerFlush = "\x00controller"

// rebuildDelay gathers the records of one change (a FLUSH's answer comes
// in several messages) into one new view.
var rebuildDelay = 20 * time.Millisecond

// publish stores v as the observer's view and tells who needs to know:
// the set's watchers of any change, traffic included; changed (a pass) of
// a change statuses show. (The other observers of the set need no poke:
// they hear the same records.)
func (o *Observer) publish(v *View, changed func(string)) {
	old := o.view.Load()
	o.view.Store(v)
	if !bytes.Equal(old.digest(), v.digest()) {
		o.set.notify(o.ns)
		if changed != nil {
			changed(o.ns)
		}
		return
	}
	if old == nil || !maps.Equal(old.Traffic, v.Traffic) {
		o.set.notify(o.ns)
	}
}

// has tells whether the store holds the records of the router with
// (management) id routerID.
func (s *store) has(routerID string) bool {
	if routerID == "" {
		return false
	}
	for _, src := range s.sources {
		src.mu.Lock()
		for _, r := range src.recs {
			if r.Type == vanflow.Router && strings.TrimPrefix(r.String(vanflow.AttrName), "0/") == routerID {
				src.mu.Unlock()
				return true
			}
		}
		src.mu.Unlock()
	}
	return false
}

// stale names the router sources silent for longer than staleAfter.
func (s *store) stale(now time.Time) string {
	var ids []string
	for id, src := range s.sources {
		src.mu.Lock()
		if src.typ == vanflow.SourceRouter && now.Sub(src.last) > staleAfter {
			ids = append(ids, id)
		}
		src.mu.Unlock()
	}
	slices.Sort(ids)
	return strings.Join(ids, " ")
}

// linkDigest is what the view takes of the local link connectors: each
// one's name, whether it is up and the router's reason without its
// connection number.
func (l *local) linkDigest() string {
	var b strings.Builder
	for _, e := range l.linkConns {
		name, _ := e["name"].(string)
		msg, _ := e["connectionMsg"].(string)
		fmt.Fprintf(&b, "%s %v %s\n", name, linkUp(e), ConnNumber.ReplaceAllString(msg, ""))
	}
	return b.String()
}

// linksDown tells whether one of the local router's links is not up.
func (l *local) linksDown() bool {
	for _, e := range l.linkConns {
		if !linkUp(e) {
			return true
		}
	}
	return false
}

// query asks the local router for every entity of type t, within 3 s.
func query(ctx context.Context, c *management.Client, t string) ([]map[string]any, error) {
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return c.Query(qctx, management.TypeName(t))
}

// readRouter reads the local router's id and site id.
func readRouter(ctx context.Context, c *management.Client, loc *local) error {
	routers, err := query(ctx, c, "router")
	if err != nil || len(routers) == 0 {
		return fmt.Errorf("reading the router entity: %v", err)
	}
	loc.routerID, _ = routers[0]["id"].(string)
	metadata, _ := routers[0]["metadata"].(string)
	var meta routerconfig.SiteMetadata
	json.Unmarshal([]byte(metadata), &meta)
	loc.siteID = cmp.Or(meta.ID, loc.routerID)
	return nil
}

// readLinkConns reads the local router's link connectors.
func readLinkConns(ctx context.Context, c *management.Client, loc *local) error {
	conns, err := query(ctx, c, "connector")
	if err != nil {
		return err
	}
	loc.linkConns = loc.linkConns[:0]
	for _, e := range conns {
		if role, _ := e["role"].(string); role == "inter-router" || role == "edge" {
			loc.linkConns = append(loc.linkConns, e)
		}
	}
	return nil
}

// Hold keeps the observer from reading the router's listeners and links
// for d from now: a pass is about to change the router, and one read of
// thousands of listeners takes tens of milliseconds of the router's,
// which the change would wait behind. The reads due meanwhile happen
// after.
func (o *Observer) Hold(d time.Duration) {
	if o == nil {
		return
	}
	until := time.Now().Add(d).UnixNano()
	for {
		cur := o.holdUntil.Load()
		if cur >= until || o.holdUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// readAllowed is when the local listeners (or links) may be read again,
// last read at last in cost: readSpacing times cost after it, and not before a hold
// ends, unless the hold has kept them unread for maxHeld (changes that
// never stop do not keep the view's listeners from ever being read).
func readAllowed(last time.Time, cost time.Duration, hold time.Time) time.Time {
	at := last.Add(readSpacing * cost)
	if limit := last.Add(maxHeld); hold.After(limit) {
		hold = limit
	}
	if hold.After(at) {
		return hold
	}
	return at
}

// maxHeld bounds how long holds keep the listeners or links unread.
const maxHeld = 2 * time.Second

// readSpacing is how many times the last read of the local listeners
// the observer waits before the next.
const readSpacing = 4

// readListeners reads whether the local router's tcpListeners accept
// connections, and a MultiKeyListener's routing keys.
func readListeners(ctx context.Context, c *management.Client, loc *local) error {
	start := time.Now()
	es, err := query(ctx, c, "tcpListener")
	if err != nil {
		return err
	}
	up := map[string]bool{}
	multi := false
	for _, e := range es {
		name, _ := e["name"].(string)
		st, _ := e["operStatus"].(string)
		up[name] = st == "up"
		if s, _ := e["multiAddressStrategy"].(string); s != "" && s != "none" {
			multi = true
		}
	}
	loc.listenerUp, loc.listenersRead = up, start
	loc.multiKeys = nil
	if !multi {
		// no MultiKeyListener: no routing keys to read (an operation
		// costs a router of thousands of entities as much as a change)
		return nil
	}
	if las, err := query(ctx, c, "listenerAddress"); err == nil {
		for _, e := range las {
			a, _ := e["address"].(string)
			l, _ := e["listener"].(string)
			if loc.multiKeys == nil {
				loc.multiKeys = map[string][]string{}
			}
			loc.multiKeys[a] = append(loc.multiKeys[a], l)
		}
	}
	return nil
}
