package console

import (
	"cmp"
	"slices"
	"strings"

	"github.com/site-controller/site-controller/pkg/netview"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/status"
)

// Snapshot is everything the console shows, as /api/ serves it and the
// page receives it on every change.
type Snapshot struct {
	Network    Network     `json:"network"`
	Services   []Service   `json:"services"`
	Namespaces []Namespace `json:"namespaces"`
}

// Network is every site the routers of this host's sites see, and the
// links between them.
type Network struct {
	Sites []Site `json:"sites"`
	Links []Link `json:"links"`
	// Flows is set when the network views carry flow records: every
	// service then has traffic figures (zero when nothing flowed).
	Flows bool `json:"flows"`
}

// Site is one site of the network (status.SiteRecord, as a Site's status
// lists it, without its links and services, which Links and Services
// carry).
type Site struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Platform  string `json:"platform,omitempty"`
	Version   string `json:"version,omitempty"` // the site's (controller's, Skupper's)
	// Router is the skupper-router version its router reports.
	Router string `json:"router,omitempty"`
	// Local is set for a site of this host (one of its namespaces).
	Local bool `json:"local"`
	// Reachable is false for a site no router reports any more, shown
	// because a link still points to it.
	Reachable bool `json:"reachable"`
}

// Link is a link from one site to another.
type Link struct {
	Name     string `json:"name"`
	From     string `json:"from"` // site id
	FromName string `json:"fromName"`
	To       string `json:"to,omitempty"` // site id; empty when never known
	ToName   string `json:"toName,omitempty"`
	Up       bool   `json:"up"`
	// Message is the router's connectionMsg for a link of this host's
	// routers (the reason a broken link is down).
	Message string `json:"message,omitempty"`
}

// Service is a routing key with its listeners and connectors by site.
type Service struct {
	RoutingKey string     `json:"routingKey"`
	Listeners  []Endpoint `json:"listeners,omitempty"`
	Connectors []Endpoint `json:"connectors,omitempty"`
	// Matched is set when the key has both a listener and a connector.
	Matched bool `json:"matched"`
	// Traffic is what the key carries, when the network view has flow
	// records.
	Traffic *netview.Traffic `json:"traffic,omitempty"`
}

// Endpoint is a listener or connector of a site.
type Endpoint struct {
	Site      string `json:"site"` // site name
	SiteID    string `json:"siteId"`
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
}

// Namespace is one of this host's namespaces: the problems its last pass
// found and every resource's status, problems first.
type Namespace struct {
	Name     string    `json:"name"`
	Site     string    `json:"site,omitempty"` // the Site's name
	Problems []Problem `json:"problems,omitempty"`
	// Resources are as `status -o json` prints them, with the file and
	// line each is defined at when the daemon's last pass knows it.
	Resources []status.Resource `json:"resources"`
}

// Problem is a problem a pass found in a namespace's input.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	ID      string `json:"id,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	Warning bool   `json:"warning,omitempty"`
}

// Pass is what the daemon's last pass over a namespace knows that its
// status files do not: where each resource is defined, and the problems
// found (with file and line).
type Pass struct {
	// Origin says where a resource ("Kind/name") is defined
	Origin   func(id string) (Origin, bool)
	Problems []resources.Problem
}

// Origin is where a resource is defined.
type Origin struct {
	File string
	Line int
}

// hostNamespace is what build is told of one of this host's namespaces.
type hostNamespace struct {
	name      string
	siteID    string
	resources []status.Resource
	pass      *Pass
}

// memory is what the console remembers of the network between snapshots:
// the site each link last reached, and each site last seen, so that a
// broken link still points somewhere.
type memory struct {
	remotes map[string][2]string // "from/link" → remote site id, name
	sites   map[string]Site
}

// build works out a snapshot from the views and namespaces (pure but for
// mem, which it updates).
func build(views map[string]*netview.View, nss []hostNamespace, mem *memory) Snapshot {
	if mem.remotes == nil {
		mem.remotes, mem.sites = map[string][2]string{}, map[string]Site{}
	}
	local := map[string]bool{}
	for _, ns := range nss {
		if ns.siteID != "" {
			local[ns.siteID] = true
		}
	}
	snap := Snapshot{Services: []Service{}, Namespaces: []Namespace{}, Network: Network{Sites: []Site{}, Links: []Link{}}}
	sites := map[string]*Site{}
	siteOrder := []string{}
	links := map[string]*Link{} // "from/name"
	services := map[string]*Service{}
	seenEndpoint := map[string]bool{}
	traffic := map[string]netview.Traffic{}
	nsNames := make([]string, 0, len(views))
	for ns := range views {
		nsNames = append(nsNames, ns)
	}
	slices.Sort(nsNames)
	for _, nsName := range nsNames {
		v := views[nsName]
		if v == nil {
			continue
		}
		for _, rec := range v.Sites {
			if sites[rec.ID] == nil {
				sites[rec.ID] = &Site{ID: rec.ID, Name: rec.Name, Namespace: rec.Namespace, Platform: rec.Platform, Version: rec.Version, Local: local[rec.ID], Reachable: true}
				siteOrder = append(siteOrder, rec.ID)
			}
			if r := v.RouterVersions[rec.ID]; r != "" {
				sites[rec.ID].Router = r
			}
			for _, l := range rec.Links {
				key := rec.ID + "/" + l.Name
				if old := links[key]; old != nil && (old.Up || !l.Operational) {
					continue // another router's view of the same link; an up one wins
				}
				links[key] = &Link{Name: l.Name, From: rec.ID, FromName: rec.Name, To: l.RemoteSiteID, ToName: l.RemoteSiteName, Up: l.Operational}
			}
			for _, sv := range rec.Services {
				s := services[sv.RoutingKey]
				if s == nil {
					s = &Service{RoutingKey: sv.RoutingKey}
					services[sv.RoutingKey] = s
				}
				add := func(to *[]Endpoint, kind string, names []string) {
					for _, n := range names {
						k := kind + "/" + rec.ID + "/" + n + "/" + sv.RoutingKey
						if seenEndpoint[k] {
							continue
						}
						seenEndpoint[k] = true
						*to = append(*to, Endpoint{Site: rec.Name, SiteID: rec.ID, Name: n})
					}
				}
				add(&s.Listeners, "l", sv.Listeners)
				add(&s.Connectors, "c", sv.Connectors)
			}
		}
		// the local router's own links carry the router's reason
		var selfID string
		for _, ns := range nss {
			if ns.name == nsName {
				selfID = ns.siteID
			}
		}
		for name, st := range v.Links {
			if selfID == "" {
				continue
			}
			key := selfID + "/" + name
			l := links[key]
			if l == nil {
				l = &Link{Name: name, From: selfID, Up: st.Up}
				if s := sites[selfID]; s != nil {
					l.FromName = s.Name
				}
				links[key] = l
			}
			// the router's own word on its link wins over what other
			// views (taken at other moments) say of it
			l.Up = st.Up
			l.Message = netview.ConnNumber.ReplaceAllString(st.Message, "")
			if l.To == "" {
				l.To, l.ToName = st.RemoteSiteID, st.RemoteSiteName
			}
		}
		if v.Traffic != nil {
			snap.Network.Flows = true
		}
		for k, t := range v.Traffic {
			// every site's view sums the same network's flows: the
			// largest figures are the most complete
			old := traffic[k]
			traffic[k] = netview.Traffic{Open: max(old.Open, t.Open), BytesIn: max(old.BytesIn, t.BytesIn), BytesOut: max(old.BytesOut, t.BytesOut)}
		}
	}
	// links whose far end is not known now: the site they last reached
	live := map[string]bool{}
	for key, l := range links {
		live[key] = true
		if l.To != "" {
			mem.remotes[key] = [2]string{l.To, l.ToName}
		} else if r, ok := mem.remotes[key]; ok {
			l.To, l.ToName = r[0], r[1]
		}
		if l.FromName == "" {
			l.FromName = mem.sites[l.From].Name
		}
	}
	for key := range mem.remotes {
		if !live[key] {
			delete(mem.remotes, key)
		}
	}
	for id, s := range sites {
		mem.sites[id] = *s
	}
	for _, l := range links {
		for _, id := range []string{l.From, l.To} {
			if id == "" || sites[id] != nil {
				continue
			}
			s, ok := mem.sites[id]
			if !ok {
				s = Site{ID: id, Name: cmp.Or(l.ToName, id)}
			}
			s.Local, s.Reachable = local[id], false
			sites[id] = &s
			siteOrder = append(siteOrder, id)
		}
	}
	// forget sites neither seen nor linked to
	for id := range mem.sites {
		if sites[id] == nil {
			delete(mem.sites, id)
		}
	}
	for _, id := range siteOrder {
		snap.Network.Sites = append(snap.Network.Sites, *sites[id])
	}
	slices.SortFunc(snap.Network.Sites, func(a, b Site) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	for _, l := range links {
		snap.Network.Links = append(snap.Network.Links, *l)
	}
	slices.SortFunc(snap.Network.Links, func(a, b Link) int {
		return cmp.Or(strings.Compare(a.FromName, b.FromName), strings.Compare(a.Name, b.Name), strings.Compare(a.From, b.From))
	})
	for _, s := range services {
		byName := func(a, b Endpoint) int {
			return cmp.Or(strings.Compare(a.Site, b.Site), strings.Compare(a.Name, b.Name))
		}
		slices.SortFunc(s.Listeners, byName)
		slices.SortFunc(s.Connectors, byName)
		s.Matched = len(s.Listeners) > 0 && len(s.Connectors) > 0
		if t, ok := traffic[s.RoutingKey]; ok || snap.Network.Flows {
			s.Traffic = &t
		}
		snap.Services = append(snap.Services, *s)
	}
	slices.SortFunc(snap.Services, func(a, b Service) int { return strings.Compare(a.RoutingKey, b.RoutingKey) })
	for _, ns := range nss {
		snap.Namespaces = append(snap.Namespaces, namespaceOf(ns))
	}
	return snap
}

// namespaceOf is one namespace as the console shows it: problems first,
// then resources whose status is not Ready, then the others; secrets out.
func namespaceOf(ns hostNamespace) Namespace {
	out := Namespace{Name: ns.name, Resources: make([]status.Resource, 0, len(ns.resources))}
	for _, r := range ns.resources {
		r = redact(r)
		if ns.pass != nil {
			if ns.pass.Origin != nil {
				if o, ok := ns.pass.Origin(r.Kind + "/" + r.Name); ok {
					r.File, r.Line = o.File, o.Line
				}
			}
		}
		if r.Kind == resources.KindSite && r.Error == "" {
			out.Site = r.Name
		}
		out.Resources = append(out.Resources, r)
	}
	slices.SortStableFunc(out.Resources, func(a, b status.Resource) int {
		return rank(&a) - rank(&b)
	})
	if ns.pass != nil {
		for _, p := range ns.pass.Problems {
			out.Problems = append(out.Problems, Problem{File: p.File, Line: p.Line, ID: p.ID, Field: p.Field, Message: p.Message, Warning: p.Warning})
		}
		// errors before warnings, each in file order
		slices.SortStableFunc(out.Problems, func(a, b Problem) int {
			if a.Warning == b.Warning {
				return 0
			}
			if b.Warning {
				return -1
			}
			return 1
		})
	}
	return out
}

// rank orders resources: errors, then pending, then ready.
func rank(r *status.Resource) int {
	switch {
	case r.Error != "" || r.Status.Status == status.Error:
		return 0
	case r.Status.Status != status.Ready:
		return 1
	}
	return 2
}

// Redacted stands in for a value the console never shows.
const Redacted = "<redacted>"

// redact takes out of a status what the console never shows: an
// AccessGrant's code (with the URL, it is a credential).
func redact(r status.Resource) status.Resource {
	if r.Code != "" {
		r.Code = Redacted
	}
	return r
}
