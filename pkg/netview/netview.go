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
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/status"
)

// The network view.
// A site that accepts or makes links is part of a network of routers. What
// that network is — which sites, their links, which routing keys have
// listeners and connectors where — is asked of the routers themselves, over
// management: the site's own router answers for itself and forwards
// requests to every other router of the network (interior routers by their
// id under _topo/0/, edge routers under _edge/), the way skmanage --router
// does. Each site with links has an observer that polls this every
// NetworkInterval (and soon after a pass changed its router), on its own
// management connection, never inside a pass; when what it sees changes it
// asks for a pass, which writes the statuses from the latest view.

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
	// RouterVersions are, by site id, the skupper-router version its
	// router reports (routerMetrics) (the console shows it; a site's Version is the
	// controller's or Skupper's). Statuses never show it.
	RouterVersions map[string]string `json:"-"`
	// Errs are the routers that did not answer, and why.
	Errs []string
	// busy is the longest any router was busy answering this look.
	busy time.Duration
}

// LinkState is the state of one of the local router's links.
type LinkState struct {
	Up             bool
	Message        string // the router's connectionMsg
	RemoteSiteID   string
	RemoteSiteName string
}

// routerInfo is what one router says about itself.
type routerInfo struct {
	id, mode, siteID, siteName, namespace, platform, version string
	routerVersion                                            string              // its routerMetrics' version
	listeners, connectors                                    map[string][]string // routing key → entity names
	listenerUp                                               map[string]bool     // tcpListener name → operStatus up
	links                                                    []status.LinkRecord // remote site filled in later
	linkPeers                                                []string            // router id per link
	edges                                                    []string            // edge routers connected to it (interior)
	uplinks                                                  []string            // interior routers it is connected to (edge)
	linkConns                                                []map[string]any    // its connector entities
	busy                                                     time.Duration       // its share of answering (see busyTime)
}

// busyTime is how long a router was busy answering queries that took
// took: all of it for the local router; for another router, each query's
// time less the quickest one's, which is the way there and back (over a
// slow path, a look at a router a round trip away is slow, and the router
// idle, most of that time).
func busyTime(local bool, took []time.Duration) time.Duration {
	var sum time.Duration
	least := time.Duration(0)
	for i, d := range took {
		sum += d
		if i == 0 || d < least {
			least = d
		}
	}
	if local {
		return sum
	}
	return sum - time.Duration(len(took))*least
}

// unreachable tells whether a router.node entity is a router its router
// has no route to: neither a neighbor (routerLink) nor reached through one
// (nextHop), nor itself ("(self)"). A router lost in a partition stays
// listed so (until its link state ages out, a minute) from the moment its
// HELLOs stop (3 s).
func unreachable(n map[string]any) bool {
	return n["nextHop"] == nil && n["routerLink"] == nil
}

// linkUp tells whether a link connector's connection is open. The router
// says SUCCESS from the moment it tries to connect until that try fails,
// so a try hanging on a peer that does not answer (a partition: a SYN
// retried for two minutes) says SUCCESS too; only the message tells an
// open connection ("Connection Opened: ...") from a try, whose message is
// still the last failure's.
func linkUp(e map[string]any) bool {
	st, _ := e["connectionStatus"].(string)
	msg, _ := e["connectionMsg"].(string)
	return st == "SUCCESS" && strings.HasPrefix(ConnNumber.ReplaceAllString(msg, ""), "Connection Opened")
}

// containerID is the peer's container (router) id in a connectionMsg.
var containerID = regexp.MustCompile(`container_id=(\S+)`)

var skupperRouterName = regexp.MustCompile(`^(.*)-\d+-\d+$`)

// siteNameOf is the Site's name in a router's site entity name: ours are
// <site>-<first 8 of the site id>, Skupper's <site>-<unix>-<nanos>.
func siteNameOf(entityName, siteID string) string {
	if len(siteID) >= 8 && strings.HasSuffix(entityName, "-"+siteID[:8]) {
		return strings.TrimSuffix(entityName, "-"+siteID[:8])
	}
	if m := skupperRouterName.FindStringSubmatch(entityName); m != nil {
		return m[1]
	}
	return entityName
}

// queryRouter reads what one router says (node "" is the local one).
func queryRouter(ctx context.Context, c *management.Client, node string) (*routerInfo, error) {
	var took []time.Duration
	q := func(t string) ([]map[string]any, error) {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		start := time.Now()
		defer func() { took = append(took, time.Since(start)) }()
		if node == "" {
			return c.Query(qctx, management.TypeName(t))
		}
		return c.QueryAt(qctx, node, management.TypeName(t))
	}
	info := &routerInfo{listeners: map[string][]string{}, connectors: map[string][]string{}, listenerUp: map[string]bool{}}
	defer func() { info.busy = busyTime(node == "", took) }()
	routers, err := q("router")
	if err != nil || len(routers) == 0 {
		return nil, fmt.Errorf("reading its router entity: %v", err)
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	info.id, info.mode = str(routers[0], "id"), str(routers[0], "mode")
	// skupper-router 3.5.1 reports its version in routerMetrics only
	if ms, err := q("routerMetrics"); err == nil && len(ms) > 0 {
		info.routerVersion = str(ms[0], "version")
	}
	var meta routerconfig.SiteMetadata
	json.Unmarshal([]byte(str(routers[0], "metadata")), &meta)
	info.siteID, info.version, info.platform = meta.ID, meta.Version, meta.Platform
	if sites, err := q("site"); err == nil && len(sites) > 0 {
		info.siteName = siteNameOf(str(sites[0], "name"), info.siteID)
		info.namespace = str(sites[0], "namespace")
		info.platform = cmp.Or(str(sites[0], "platform"), info.platform)
		info.version = cmp.Or(str(sites[0], "version"), info.version)
	}
	if info.siteName == "" {
		info.siteName = info.id
	}
	if info.siteID == "" {
		info.siteID = info.id
	}
	for _, kind := range []struct {
		t  string
		to map[string][]string
	}{{"tcpListener", info.listeners}, {"tcpConnector", info.connectors}} {
		es, err := q(kind.t)
		if err != nil {
			return nil, fmt.Errorf("reading its %s entities: %w", kind.t, err)
		}
		for _, e := range es {
			a := str(e, "address")
			kind.to[a] = append(kind.to[a], str(e, "name"))
			if kind.t == "tcpListener" {
				info.listenerUp[str(e, "name")] = str(e, "operStatus") == "up"
			}
		}
	}
	// a MultiKeyListener's routing keys are its listenerAddresses
	if las, err := q("listenerAddress"); err == nil {
		for _, e := range las {
			a := str(e, "address")
			info.listeners[a] = append(info.listeners[a], str(e, "listener"))
		}
	}
	conns, err := q("connector")
	if err != nil {
		return nil, fmt.Errorf("reading its connector entities: %w", err)
	}
	for _, e := range conns {
		role := str(e, "role")
		if role != "inter-router" && role != "edge" {
			continue
		}
		info.linkConns = append(info.linkConns, e)
		peer := ""
		up := linkUp(e)
		if m := containerID.FindStringSubmatch(str(e, "connectionMsg")); m != nil && up {
			peer = m[1]
		}
		info.links = append(info.links, status.LinkRecord{Name: str(e, "name"), Operational: up})
		info.linkPeers = append(info.linkPeers, peer)
		if role == "edge" && peer != "" {
			info.uplinks = append(info.uplinks, peer)
		}
	}
	if info.mode == "interior" {
		cs, err := q("connection")
		if err != nil {
			return nil, fmt.Errorf("reading its connections: %w", err)
		}
		for _, e := range cs {
			if str(e, "role") == "edge" && str(e, "dir") == "in" && str(e, "container") != "" {
				info.edges = append(info.edges, str(e, "container"))
			}
		}
	}
	return info, nil
}

// observeNetwork asks the local router, and through it every router of its
// network, what the network is.
func observeNetwork(ctx context.Context, c *management.Client) (*View, error) {
	self, err := queryRouter(ctx, c, "")
	if err != nil {
		return nil, err
	}
	v := &View{Taken: time.Now(), Self: self.id, Links: map[string]LinkState{}, Listeners: map[string]bool{}, Connectors: map[string]bool{}, ListenerUp: self.listenerUp}
	infos := map[string]*routerInfo{self.id: self}
	// the interior routers: those the local router knows, or, from an
	// edge, those its uplink knows
	var interiors []string
	nodesOf := func(node string) {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var nodes []map[string]any
		var err error
		if node == "" {
			nodes, err = c.Query(qctx, management.TypeName("router.node"))
		} else {
			nodes, err = c.QueryAt(qctx, node, management.TypeName("router.node"))
		}
		if err != nil {
			v.Errs = append(v.Errs, fmt.Sprintf("router nodes: %v", err))
			return
		}
		for _, n := range nodes {
			id, _ := n["id"].(string)
			if id == "" || slices.Contains(interiors, id) {
				continue
			}
			if unreachable(n) {
				// asking would wait out the query's deadline for nothing
				v.Errs = append(v.Errs, fmt.Sprintf("router %s: unreachable (no route to it)", id))
				continue
			}
			interiors = append(interiors, id)
		}
	}
	if self.mode == "edge" {
		for _, up := range self.uplinks {
			nodesOf(management.RemoteNode(up, false))
			if !slices.Contains(interiors, up) {
				interiors = append(interiors, up)
			}
		}
	} else {
		nodesOf("")
	}
	var edges []string
	for _, id := range interiors {
		info := infos[id]
		if info == nil {
			if info, err = queryRouter(ctx, c, management.RemoteNode(id, false)); err != nil {
				v.Errs = append(v.Errs, fmt.Sprintf("router %s: %v", id, err))
				continue
			}
			infos[id] = info
		}
		edges = append(edges, info.edges...)
	}
	for _, id := range edges {
		if infos[id] != nil {
			continue
		}
		info, err := queryRouter(ctx, c, management.RemoteNode(id, true))
		if err != nil {
			v.Errs = append(v.Errs, fmt.Sprintf("edge router %s: %v", id, err))
			continue
		}
		infos[id] = info
	}
	for _, info := range infos {
		v.busy = max(v.busy, info.busy)
	}
	// sites: one per site id (an HA site could have two routers)
	bySite := map[string]*status.SiteRecord{}
	services := map[*status.SiteRecord]map[string]int{} // index in Services, by routing key
	v.RouterVersions = map[string]string{}
	for _, info := range infos {
		if info.routerVersion != "" {
			v.RouterVersions[info.siteID] = info.routerVersion
		}
		rec := bySite[info.siteID]
		if rec == nil {
			rec = &status.SiteRecord{ID: info.siteID, Name: info.siteName, Namespace: info.namespace, Platform: info.platform, Version: info.version}
			bySite[info.siteID] = rec
		}
		for i, l := range info.links {
			if peer := infos[info.linkPeers[i]]; peer != nil {
				l.RemoteSiteID, l.RemoteSiteName = peer.siteID, peer.siteName
			}
			rec.Links = append(rec.Links, l)
		}
		keys := map[string]bool{}
		for k := range info.listeners {
			keys[k], v.Listeners[k] = true, true
		}
		for k := range info.connectors {
			keys[k], v.Connectors[k] = true, true
		}
		at := services[rec]
		if at == nil {
			at = map[string]int{}
			services[rec] = at
		}
		for k := range keys {
			i, ok := at[k]
			if !ok {
				rec.Services = append(rec.Services, status.ServiceRecord{RoutingKey: k})
				i = len(rec.Services) - 1
				at[k] = i
			}
			rec.Services[i].Listeners = append(rec.Services[i].Listeners, info.listeners[k]...)
			rec.Services[i].Connectors = append(rec.Services[i].Connectors, info.connectors[k]...)
		}
	}
	for _, rec := range bySite {
		slices.SortFunc(rec.Links, func(a, b status.LinkRecord) int { return strings.Compare(a.Name, b.Name) })
		slices.SortFunc(rec.Services, func(a, b status.ServiceRecord) int { return strings.Compare(a.RoutingKey, b.RoutingKey) })
		for i := range rec.Services {
			slices.Sort(rec.Services[i].Listeners)
			slices.Sort(rec.Services[i].Connectors)
		}
		v.Sites = append(v.Sites, *rec)
	}
	slices.SortFunc(v.Sites, func(a, b status.SiteRecord) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	for i, l := range self.links {
		st := LinkState{Up: l.Operational}
		e := self.linkConns[i]
		st.Message, _ = e["connectionMsg"].(string)
		if peer := infos[self.linkPeers[i]]; peer != nil {
			st.RemoteSiteID, st.RemoteSiteName = peer.siteID, peer.siteName
		}
		v.Links[l.Name] = st
	}
	slices.Sort(v.Errs)
	return v, nil
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
	data, _ := json.Marshal(c)
	return data
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
}

// Set holds the running observers of a data home, by namespace.
type Set struct {
	mu  sync.Mutex
	obs map[string]*Observer
	w   watchers
}

// NetworkInterval is how often a site's network is asked for what it is.
var NetworkInterval = 2 * time.Second

// aloneInterval is how often the network of a site with no link either
// way is asked: only a link from another host can change it unannounced.
var aloneInterval = 10 * time.Second

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
	o := &Observer{set: n, ns: dir.Name, cancel: cancel, done: make(chan struct{}), poke: make(chan struct{}, 1), port: port}
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
	go o.run(ctx, dir, changed, n.pokeSites)
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

// pokeSites makes the observers whose networks hold any of the sites look
// again soon: a site that one router now sees (a new link) sees it too.
func (n *Set) pokeSites(ids []string) {
	for _, id := range ids {
		n.PokeNetwork("", id)
	}
}

// PokeNetwork makes the observers that may see a change to namespace
// ns's router (site id siteID) look again soon, so that it shows in the
// other sites of its network on this host within moments: ns's own, and
// every one not known to stand alone. A site alone in its network (no
// link either way) cannot see another site's router; with a hundred of
// them, poking them all after every change would keep every router busy
// answering.
func (n *Set) PokeNetwork(ns, siteID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, o := range n.obs {
		if name != ns && o.view.Load().alone() && !o.view.Load().has(siteID) {
			continue
		}
		select {
		case o.poke <- struct{}{}:
		default:
		}
	}
}

// alone tells whether the view is of a site with no link either way.
func (v *View) alone() bool {
	return v != nil && len(v.Sites) <= 1 && len(v.Links) == 0
}

// has tells whether the view holds the site with id siteID.
func (v *View) has(siteID string) bool {
	return v != nil && slices.ContainsFunc(v.Sites, func(s status.SiteRecord) bool { return s.ID == siteID })
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

func (o *Observer) run(ctx context.Context, dir namespace.Dir, changed func(string), pokeSites func([]string)) {
	defer close(o.done)
	var c *management.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	soon := 100 * time.Millisecond // after a poke, look again quickly
	wait := time.Duration(0)
	var last time.Time      // when the last look began
	var spent time.Duration // ten times what it took
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.poke:
			wait = 0
			soon = 100 * time.Millisecond
		case <-time.After(wait):
		}
		// pokes too wait for the router's share of time to come round
		if d := spent - time.Since(last); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		if c == nil || c.Err() != nil {
			if c != nil {
				c.Close()
				c = nil
			}
			cfg, err := live.ManagementTLS(dir)
			if err == nil {
				dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				c, err = management.Dial(dctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port)), cfg)
				cancel()
			}
			if err != nil {
				c = nil
				wait = NetworkInterval
				continue
			}
		}
		last = time.Now()
		v, err := observeNetwork(ctx, c)
		// a large network takes the routers a while to list: they are
		// asked again only after ten times the longest any of them was
		// busy answering, so that each spends at most a tenth of its time
		// answering (a look that waited for a router that did not answer
		// measures nothing of the kind, nor does the time on the way to
		// a router over a slow path: see busyTime)
		spent = 0
		if err == nil && len(v.Errs) == 0 {
			spent = 10 * v.busy
		}
		if err == nil {
			old := o.view.Load()
			o.view.Store(v)
			if !bytes.Equal(old.digest(), v.digest()) {
				o.set.notify(dir.Name)
				if changed != nil {
					changed(dir.Name)
				}
				if !v.alone() {
					var ids []string
					for _, site := range v.Sites {
						if !old.has(site.ID) {
							ids = append(ids, site.ID)
						}
					}
					go pokeSites(ids) // not under the view: observers lock
				}
			}
		}
		wait = NetworkInterval
		if soon < NetworkInterval {
			wait, soon = soon, soon*2
		} else if o.view.Load().alone() {
			// a site alone has only its own changes to see, and a pass
			// that makes one pokes it; a link from elsewhere shows
			// within aloneInterval
			wait = aloneInterval
		}
		wait = max(wait, spent)
	}
}
