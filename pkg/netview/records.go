package netview

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/site-controller/site-controller/pkg/status"
	"github.com/site-controller/site-controller/pkg/vanflow"
)

// The records.
// Every router of a network (and every controller that publishes) is a
// vanflow source: its records say what it is (SITE, ROUTER), its links
// (LINK, to a peer's ROUTER_ACCESS), its listeners and connectors (by
// routing key) and the connections through them (BIFLOW_TPORT, with their
// octets). A record comes whole after a FLUSH, then as updates of what
// changed; an end time ends it. A store keeps each source's records,
// merged by id, and a source silent for ForgetAfter is forgotten with
// them. Who sent a record matters: a site's controller and its router
// both send the SITE record of the site, under the same id.

// ForgetAfter is how long a source may be silent (no heartbeat, no
// record) before it and its records are forgotten.
var ForgetAfter = 30 * time.Second

// staleAfter is how long a source may be silent before the view says so
// (it sends a heartbeat every 2 s) and the local router is asked again
// what records lack: a router lost in a partition goes quiet about when
// the routers see it lost (their HELLOs stop: 3 s).
var staleAfter = 5 * time.Second

// source is one vanflow source and its live records. The observers of a
// set share each source (feeds.go): one of them, its follower, subscribes
// to its records and merges them; every observer whose router relays the
// source's beacon reads them.
type source struct {
	// set once, when the first beacon came
	id, typ, address, direct string
	// guarded by the set's mu
	follower *Observer
	watchers map[*Observer]bool

	mu   sync.Mutex // guards what follows
	last time.Time
	recs map[string]vanflow.Record
	// closed is, by listener record id, what the connections through it
	// that ended carried (the records of a connection end with it)
	closed map[string]Traffic
	// flushDue is when to send a FLUSH if no message came from the
	// source before (zero once sent)
	flushDue time.Time
	// svc indexes the source's listeners and connectors by router and
	// routing key; svcVersion changes whenever they do; part is what they
	// make of the view, as of its version
	svc        map[string]*svcIndex
	svcVersion uint64
	part       *servicePart
	// routerName is the (management) id of the router whose ROUTER
	// record the source sent; site is the id of its SITE record (a
	// site's router and controller both send it)
	routerName, site string
}

// servicePart is a source's listeners and connectors as the view shows
// them: services by the router they belong to, sorted; and their routing
// keys. It is made again only when they change, from an index kept as
// records come (svcIndex), so that a change costs about the same with
// thousands of services as with none.
type servicePart struct {
	version                     uint64
	byRouter                    map[string][]status.ServiceRecord
	listenerKeys, connectorKeys []string
}

// versions numbers the changes of every source's services.
var versions atomic.Uint64

// svcRef is where a listener or connector record is in the index.
type svcRef struct {
	router, key, name string
	listener          bool
}

// svcIndex is one router's services: routing keys sorted, and for each
// the listener and connector names, sorted. Name lists are replaced, never
// changed in place: the views share them.
type svcIndex struct {
	keys    []string
	entries map[string]*status.ServiceRecord
}

// index moves a listener or connector record's entry from old to new
// (either zero: none).
func (src *source) index(old, new svcRef) {
	if old == new {
		return
	}
	if old.key != "" {
		ix := src.svc[old.router]
		if e := ix.entries[old.key]; e != nil {
			if old.listener {
				e.Listeners = without(e.Listeners, old.name)
			} else {
				e.Connectors = without(e.Connectors, old.name)
			}
			if len(e.Listeners) == 0 && len(e.Connectors) == 0 {
				delete(ix.entries, old.key)
				if i, ok := slices.BinarySearch(ix.keys, old.key); ok {
					ix.keys = slices.Delete(ix.keys, i, i+1)
				}
			}
		}
	}
	if new.key != "" {
		if src.svc == nil {
			src.svc = map[string]*svcIndex{}
		}
		ix := src.svc[new.router]
		if ix == nil {
			ix = &svcIndex{entries: map[string]*status.ServiceRecord{}}
			src.svc[new.router] = ix
		}
		e := ix.entries[new.key]
		if e == nil {
			e = &status.ServiceRecord{RoutingKey: new.key}
			ix.entries[new.key] = e
			i, _ := slices.BinarySearch(ix.keys, new.key)
			ix.keys = slices.Insert(ix.keys, i, new.key)
		}
		if new.listener {
			e.Listeners = with(e.Listeners, new.name)
		} else {
			e.Connectors = with(e.Connectors, new.name)
		}
	}
	src.svcVersion = versions.Add(1)
}

// with is names with name added, sorted, as a new slice.
func with(names []string, name string) []string {
	i, found := slices.BinarySearch(names, name)
	if found {
		return names
	}
	out := make([]string, 0, len(names)+1)
	return append(append(append(out, names[:i]...), name), names[i:]...)
}

// without is names without name, as a new slice.
func without(names []string, name string) []string {
	i, found := slices.BinarySearch(names, name)
	if !found {
		return names
	}
	out := make([]string, 0, len(names)-1)
	return append(append(out, names[:i]...), names[i+1:]...)
}

// refOf is where record r belongs in the index (zero: nowhere).
func refOf(r vanflow.Record) svcRef {
	if r.Ended() || r.String(vanflow.AttrAddress) == "" {
		return svcRef{}
	}
	return svcRef{router: r.String(vanflow.AttrParent), key: r.String(vanflow.AttrAddress), name: r.String(vanflow.AttrName), listener: r.Type == vanflow.Listener}
}

// servicePartOf returns src's part (src.mu held).
func servicePartOf(src *source) *servicePart {
	if src.part != nil && src.part.version == src.svcVersion {
		return src.part
	}
	p := &servicePart{version: src.svcVersion, byRouter: map[string][]status.ServiceRecord{}}
	for router, ix := range src.svc {
		if len(ix.keys) == 0 {
			continue
		}
		list := make([]status.ServiceRecord, len(ix.keys))
		for i, k := range ix.keys {
			e := ix.entries[k]
			list[i] = *e
			if len(e.Listeners) > 0 {
				p.listenerKeys = append(p.listenerKeys, k)
			}
			if len(e.Connectors) > 0 {
				p.connectorKeys = append(p.connectorKeys, k)
			}
		}
		p.byRouter[router] = list
	}
	src.part = p
	return p
}

// store is the sources an observer's router relays (their beacons came).
type store struct {
	sources map[string]*source
}

func newStore() *store { return &store{sources: map[string]*source{}} }

// counters are the attributes that change with traffic alone: an update
// of only these changes no status.
var counters = map[vanflow.Attr]bool{
	vanflow.AttrOctets: true, vanflow.AttrOctetsReverse: true, vanflow.AttrOctetRate: true, vanflow.AttrOctetRateRev: true,
	vanflow.AttrOctetsOut: true, vanflow.AttrOctetsUnacked: true, vanflow.AttrWindowClosures: true, vanflow.AttrWindowSize: true,
	vanflow.AttrFlowCountL4: true, vanflow.AttrFlowCountL7: true, vanflow.AttrFlowRateL4: true, vanflow.AttrFlowRateL7: true,
	vanflow.AttrLatency: true, vanflow.AttrProcessLatency: true, vanflow.AttrTransitLatency: true, vanflow.AttrBacklog: true,
	vanflow.AttrDownCount: true, vanflow.AttrLinkCount: true,
}

// change is what applying records changed.
type change struct {
	// shape: something statuses show (a site, router, link, listener,
	// connector, process came, went or changed)
	shape bool
	// traffic: a connection's octets, or connections opened or closed
	traffic bool
	// local: a record of the local router's links, listeners or
	// connectors, or any listener or connector (which the local
	// listeners' state follows)
	links, services bool
}

// apply merges records into src's (src.mu held). Records are merged in
// place: the source's are its own (the decoded messages' maps).
func (src *source) apply(recs []vanflow.Record) change {
	var ch change
	for _, r := range recs {
		switch r.Type {
		case vanflow.AppBiflow, vanflow.Flow, vanflow.Log:
			continue // only transport flows are counted; the others are not kept
		}
		old, had := src.recs[r.ID]
		significant := !had || r.Ended()
		if had && r.Type != vanflow.TransportBiflow {
			for k, v := range r.Attrs {
				if !counters[k] && !sameValue(old.Attrs[k], v) {
					significant = true
				}
			}
		}
		var before svcRef
		if had && (r.Type == vanflow.Listener || r.Type == vanflow.Connector) {
			before = refOf(old)
		}
		merged := r
		if had {
			if old.Attrs == nil {
				old.Attrs = map[vanflow.Attr]any{}
			}
			for k, v := range r.Attrs {
				old.Attrs[k] = v
			}
			merged = old
		}
		if merged.Type == vanflow.TransportBiflow {
			ch.traffic = true
			if merged.Ended() {
				delete(src.recs, r.ID)
				l := merged.String(vanflow.AttrParent)
				t := src.closed[l]
				in, _ := merged.Uint(vanflow.AttrOctets)
				out, _ := merged.Uint(vanflow.AttrOctetsReverse)
				t.BytesIn += in
				t.BytesOut += out
				src.closed[l] = t
				continue
			}
			src.recs[r.ID] = merged
			continue
		}
		if merged.Ended() {
			delete(src.recs, r.ID)
		} else {
			src.recs[r.ID] = merged
		}
		if merged.Type == vanflow.Listener || merged.Type == vanflow.Connector {
			src.index(before, refOf(merged))
		}
		if merged.Type == vanflow.Router && !merged.Ended() {
			name := merged.String(vanflow.AttrName)
			if _, after, ok := strings.Cut(name, "/"); ok {
				name = after
			}
			src.routerName = name
		}
		if merged.Type == vanflow.Site && !merged.Ended() {
			src.site = merged.ID
		}
		if significant {
			ch.shape = true
			switch r.Type {
			case vanflow.Link, vanflow.RouterAccess, vanflow.Router:
				ch.links = true
			case vanflow.Listener, vanflow.Connector:
				ch.services = true
			}
		}
	}
	return ch
}

// sameValue tells whether two attribute values are the same.
func sameValue(a, b any) bool {
	sa, aList := a.([]string)
	sb, bList := b.([]string)
	if aList || bList {
		return aList && bList && slices.Equal(sa, sb)
	}
	return a == b
}

// local is what the local router says over management of what its
// records lack: its id and site, its link connectors' state and reason,
// and whether its tcpListeners accept connections.
type local struct {
	routerID, siteID string
	linkConns        []map[string]any
	listenerUp       map[string]bool
	listenersRead    time.Time
	// multiKeys are a MultiKeyListener's routing keys: listener names by
	// routing key (the router's listenerAddress entities)
	multiKeys map[string][]string
}

// build makes the view of the network from the store and the local
// router's answers.
func (s *store) build(loc *local, now time.Time) *View {
	v := &View{Taken: loc.listenersRead, Self: loc.routerID, Links: map[string]LinkState{}, Listeners: map[string]bool{},
		Connectors: map[string]bool{}, ListenerUp: loc.listenerUp, Traffic: map[string]Traffic{}}
	if v.Taken.IsZero() {
		v.Taken = now
	}
	// every record by id, and what each router is part of
	type routerRec struct {
		rec    vanflow.Record
		siteID string
	}
	routers := map[string]*routerRec{}
	sites := map[string]vanflow.Record{}
	accessRouter := map[string]string{} // ROUTER_ACCESS id → router id
	listenerKey := map[string]string{}  // LISTENER id → routing key
	ids := make([]string, 0, len(s.sources))
	for id := range s.sources {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	quiet := map[string]bool{}          // router id → its source fell silent
	sourceRouter := map[string]string{} // router source id → its router's id
	for _, id := range ids {
		src := s.sources[id]
		src.mu.Lock()
		silent := false
		if d := now.Sub(src.last); d > staleAfter && src.typ == vanflow.SourceRouter {
			v.Errs = append(v.Errs, fmt.Sprintf("router source %s: silent for %s", id, d.Round(time.Second)))
			silent = true
		}
		for _, r := range src.recs {
			if r.Type == vanflow.Router {
				sourceRouter[id] = r.ID
				quiet[r.ID] = silent
			}
		}
		for _, r := range src.recs {
			switch r.Type {
			case vanflow.Site:
				// the router's and the controller's: merged, the
				// controller's name (the Site's own) kept
				old, had := sites[r.ID]
				if had {
					if src.typ == vanflow.SourceController {
						r = old.Merge(r)
					} else {
						r = r.Merge(old)
					}
				}
				sites[r.ID] = r
			case vanflow.Router:
				routers[r.ID] = &routerRec{rec: r, siteID: r.String(vanflow.AttrParent)}
			case vanflow.RouterAccess:
				accessRouter[r.ID] = r.String(vanflow.AttrParent)
			case vanflow.Listener:
				listenerKey[r.ID] = r.String(vanflow.AttrAddress)
			}
		}
		src.mu.Unlock()
	}
	bySite := map[string]*status.SiteRecord{}
	var reach map[string]bool // nil: every router (the local one not known yet)
	siteOfRouter := func(routerID string) *status.SiteRecord {
		rr := routers[routerID]
		if rr == nil || reach != nil && !reach[routerID] {
			return nil
		}
		id := rr.siteID
		if id == "" {
			id = routerID
		}
		rec := bySite[id]
		if rec == nil {
			rec = &status.SiteRecord{ID: id}
			if sr, ok := sites[id]; ok {
				rec.Name = siteNameOf(sr.String(vanflow.AttrName), id)
				rec.Namespace = sr.String(vanflow.AttrNamespace)
				rec.Platform = sr.String(vanflow.AttrPlatform)
				rec.Version = sr.String(vanflow.AttrBuildVersion)
			}
			if rec.Name == "" {
				name := rr.rec.String(vanflow.AttrName)
				if _, after, ok := strings.Cut(name, "/"); ok {
					name = after
				}
				rec.Name = siteNameOf(name, id)
			}
			bySite[id] = rec
		}
		return rec
	}
	services := map[*status.SiteRecord]map[string]*status.ServiceRecord{}
	service := func(rec *status.SiteRecord, key string) *status.ServiceRecord {
		at := services[rec]
		if at == nil {
			at = map[string]*status.ServiceRecord{}
			services[rec] = at
		}
		sv := at[key]
		if sv == nil {
			sv = &status.ServiceRecord{RoutingKey: key}
			at[key] = sv
		}
		return sv
	}
	localRouter := ""
	for id, rr := range routers {
		name := rr.rec.String(vanflow.AttrName)
		if _, after, ok := strings.Cut(name, "/"); ok && after == loc.routerID {
			localRouter = id
		}
	}
	reach = s.reachable(ids, localRouter, accessRouter, quiet)
	v.RouterVersions = map[string]string{}
	for id, rr := range routers {
		if rec := siteOfRouter(id); rec != nil {
			if bv := rr.rec.String(vanflow.AttrBuildVersion); bv != "" {
				v.RouterVersions[rec.ID] = bv
			}
		}
	}
	var versionsSeen strings.Builder
	for _, id := range ids {
		if r, ok := sourceRouter[id]; ok && reach != nil && !reach[r] {
			continue // a router this one has no way to
		}
		src := s.sources[id]
		src.mu.Lock()
		part := servicePartOf(src)
		fmt.Fprintf(&versionsSeen, "%s:%d ", id, part.version)
		for router, list := range part.byRouter {
			rec := siteOfRouter(router)
			if rec == nil {
				continue
			}
			if services[rec] == nil && len(rec.Services) == 0 {
				rec.Services = list // shared by the views: read only
				continue
			}
			if services[rec] == nil { // a second router of the site (HA): merged
				for _, sv := range rec.Services {
					service(rec, sv.RoutingKey).Listeners = sv.Listeners
					service(rec, sv.RoutingKey).Connectors = sv.Connectors
				}
				rec.Services = nil
			}
			for _, sv := range list {
				m := service(rec, sv.RoutingKey)
				m.Listeners = append(slices.Clip(m.Listeners), sv.Listeners...)
				m.Connectors = append(slices.Clip(m.Connectors), sv.Connectors...)
			}
		}
		for _, k := range part.listenerKeys {
			v.Listeners[k] = true
		}
		for _, k := range part.connectorKeys {
			v.Connectors[k] = true
		}
		for _, r := range src.recs {
			switch r.Type {
			case vanflow.Link:
				rec := siteOfRouter(r.String(vanflow.AttrParent))
				if rec == nil {
					continue
				}
				l := status.LinkRecord{Name: r.String(vanflow.AttrName), Operational: r.String(vanflow.AttrOperStatus) == "up"}
				if l.Operational {
					if peer := siteOfRouter(accessRouter[r.String(vanflow.AttrPeer)]); peer != nil {
						l.RemoteSiteID, l.RemoteSiteName = peer.ID, peer.Name
					}
				}
				rec.Links = append(rec.Links, l)
				if r.String(vanflow.AttrParent) == localRouter {
					v.Links[l.Name] = LinkState{Up: l.Operational, RemoteSiteID: l.RemoteSiteID, RemoteSiteName: l.RemoteSiteName}
				}
			case vanflow.TransportBiflow:
				key := listenerKey[r.String(vanflow.AttrParent)]
				if key == "" {
					continue
				}
				t := v.Traffic[key]
				t.Open++
				in, _ := r.Uint(vanflow.AttrOctets)
				out, _ := r.Uint(vanflow.AttrOctetsReverse)
				t.BytesIn += in
				t.BytesOut += out
				v.Traffic[key] = t
			}
		}
		for l, c := range src.closed {
			key := listenerKey[l]
			if key == "" {
				continue
			}
			t := v.Traffic[key]
			t.BytesIn += c.BytesIn
			t.BytesOut += c.BytesOut
			v.Traffic[key] = t
		}
		src.mu.Unlock()
	}
	// the local router's links as its connectors say: up only while the
	// connection is open, and the router's reason when not
	for _, e := range loc.linkConns {
		name, _ := e["name"].(string)
		st := v.Links[name]
		st.Up = linkUp(e)
		st.Message, _ = e["connectionMsg"].(string)
		if !st.Up {
			st.RemoteSiteID, st.RemoteSiteName = "", ""
		}
		v.Links[name] = st
	}
	if len(loc.multiKeys) > 0 {
		if rec := siteOfRouter(localRouter); rec != nil {
			if services[rec] == nil { // merged with the records' services
				for _, sv := range rec.Services {
					m := service(rec, sv.RoutingKey)
					m.Listeners, m.Connectors = slices.Clone(sv.Listeners), slices.Clone(sv.Connectors)
				}
				rec.Services = nil
			}
			for key, names := range loc.multiKeys {
				sv := service(rec, key)
				sv.Listeners = append(sv.Listeners, names...)
				v.Listeners[key] = true
			}
		}
	}
	if localRouter == "" && loc.siteID != "" {
		// before the local router's own records came (its beacon comes
		// every 10 s at most), the local site is there all the same
		if bySite[loc.siteID] == nil {
			bySite[loc.siteID] = &status.SiteRecord{ID: loc.siteID, Name: siteNameOf(loc.routerID, loc.siteID)}
		}
	}
	for _, rec := range bySite {
		slices.SortFunc(rec.Links, func(a, b status.LinkRecord) int { return strings.Compare(a.Name, b.Name) })
		if at := services[rec]; at != nil {
			rec.Services = make([]status.ServiceRecord, 0, len(at))
			for _, sv := range at {
				slices.Sort(sv.Listeners)
				slices.Sort(sv.Connectors)
				rec.Services = append(rec.Services, *sv)
			}
			slices.SortFunc(rec.Services, func(a, b status.ServiceRecord) int { return strings.Compare(a.RoutingKey, b.RoutingKey) })
		}
		v.Sites = append(v.Sites, *rec)
	}
	fmt.Fprintf(&versionsSeen, "multi:%v", loc.multiKeys)
	v.services = versionsSeen.String()
	slices.SortFunc(v.Sites, func(a, b status.SiteRecord) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	slices.Sort(v.Errs)
	return v
}

// reachable returns the routers the local router can reach through links
// that are up, either way (the network it is part of): a router whose
// links went, or whose source fell silent, is not. nil while the local
// router's own records have not come: every router is shown.
func (s *store) reachable(ids []string, local string, accessRouter map[string]string, quiet map[string]bool) map[string]bool {
	if local == "" {
		return nil
	}
	next := map[string][]string{}
	for _, id := range ids {
		src := s.sources[id]
		src.mu.Lock()
		for _, r := range src.recs {
			if r.Type != vanflow.Link || r.String(vanflow.AttrOperStatus) != "up" {
				continue
			}
			from, to := r.String(vanflow.AttrParent), accessRouter[r.String(vanflow.AttrPeer)]
			if from == "" || to == "" || quiet[from] && from != local || quiet[to] && to != local {
				continue
			}
			next[from] = append(next[from], to)
			next[to] = append(next[to], from)
		}
		src.mu.Unlock()
	}
	reach := map[string]bool{local: true}
	todo := []string{local}
	for len(todo) > 0 {
		at := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, n := range next[at] {
			if !reach[n] {
				reach[n] = true
				todo = append(todo, n)
			}
		}
	}
	return reach
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
