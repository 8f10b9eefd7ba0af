package netview

import (
	"time"

	"github.com/site-controller/site-controller/pkg/vanflow"
)

// Shared sources.
// The sites of a host that are part of one network all hear the same
// sources. Each source is followed (its records subscribed to, merged) by
// one observer of the set, its follower; the others whose routers relay
// its beacon watch it: they read its records and hear of their changes
// from the follower. A follower that ends leaves the source to another
// watcher, which subscribes and asks for a FLUSH; a follower that has not
// heard from the source for staleAfter while another watcher's router
// still relays its beacon (a partition between them) loses it to that
// watcher. Without this, ten sites of one network on a host would each
// receive, decrypt and merge every message of the network: ten times the
// work for one picture.

// join makes o a watcher of the source a beacon announces, and tells
// whether o is to follow it.
func (n *Set) join(o *Observer, b vanflow.Message, now time.Time) (src *source, follow bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.feeds == nil {
		n.feeds = map[string]*source{}
	}
	src = n.feeds[b.ID]
	if src == nil {
		src = &source{id: b.ID, typ: b.SourceType, address: b.Address, direct: b.Direct, watchers: map[*Observer]bool{},
			recs: map[string]vanflow.Record{}, closed: map[string]Traffic{}, last: now}
		n.feeds[b.ID] = src
	}
	if !src.watchers[o] {
		n.nudgeLocked()
	}
	src.watchers[o] = true
	src.mu.Lock()
	silent := now.Sub(src.last) > staleAfter
	src.mu.Unlock()
	if src.follower == nil || src.follower != o && silent {
		src.follower = o
		return src, true
	}
	return src, src.follower == o
}

// watches tells whether a beacon of source id would change nothing for
// o: o watches it already, and follows it or another observer does that
// has heard from it lately (join would keep them so).
func (n *Set) watches(o *Observer, id string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	src := n.feeds[id]
	if src == nil || !src.watchers[o] || src.follower == nil {
		return false
	}
	if src.follower == o {
		return true
	}
	src.mu.Lock()
	silent := now.Sub(src.last) > staleAfter
	src.mu.Unlock()
	return !silent
}

// follows tells whether o follows src.
func (n *Set) follows(o *Observer, src *source) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return src.follower == o
}

// adopt makes o follow src if no observer does, and tells whether it does.
func (n *Set) adopt(o *Observer, src *source) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if src.follower == nil && src.watchers[o] {
		src.follower = o
	}
	return src.follower == o
}

// leave ends o's watch of src (o forgot it, or o ends). A source no
// observer watches is dropped; one whose follower left goes to another
// watcher.
func (n *Set) leave(o *Observer, src *source) {
	n.mu.Lock()
	delete(src.watchers, o)
	var adopters []*Observer
	if src.follower == o {
		src.follower = nil
		for w := range src.watchers {
			adopters = append(adopters, w)
		}
	}
	if len(src.watchers) == 0 && n.feeds[src.id] == src {
		delete(n.feeds, src.id)
	}
	n.mu.Unlock()
	for _, w := range adopters {
		w.hear(src, change{}, true)
	}
}

// tell lets the other watchers of src know what the records its follower
// from merged changed.
func (n *Set) tell(from *Observer, src *source, ch change) {
	n.mu.Lock()
	ws := make([]*Observer, 0, len(src.watchers))
	for w := range src.watchers {
		if w != from {
			ws = append(ws, w)
		}
	}
	n.mu.Unlock()
	for _, w := range ws {
		w.hear(src, ch, false)
	}
}

// hear notes a change of a watched source (or that it needs a follower),
// for o's loop; it never blocks.
func (o *Observer) hear(src *source, ch change, orphan bool) {
	o.hearMu.Lock()
	o.heardChange.shape = o.heardChange.shape || ch.shape
	o.heardChange.traffic = o.heardChange.traffic || ch.traffic
	o.heardChange.links = o.heardChange.links || ch.links
	o.heardChange.services = o.heardChange.services || ch.services
	if orphan {
		o.orphans = append(o.orphans, src)
	}
	o.hearMu.Unlock()
	select {
	case o.heard <- struct{}{}:
	default:
	}
}

// taken returns and clears what o heard, and whether the set's sources
// changed since (nudge).
func (o *Observer) taken() (change, []*source, bool) {
	o.hearMu.Lock()
	defer o.hearMu.Unlock()
	ch, orphans, net := o.heardChange, o.orphans, o.heardNet
	o.heardChange, o.orphans, o.heardNet = change{}, nil, false
	return ch, orphans, net
}

// nudge tells every observer of the set that what they may watch
// changed (a source came, gained a watcher, named its router or was heard
// again after a silence): each looks at once whether to watch more
// (joinNetwork), which sources are silent, and so on — what an observer
// would otherwise look at only when a source may have gone silent.
func (n *Set) nudge() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nudgeLocked()
}

// nudgeLocked is nudge with n.mu held.
func (n *Set) nudgeLocked() {
	for _, o := range n.obs {
		o.hearMu.Lock()
		o.heardNet = true
		o.hearMu.Unlock()
		select {
		case o.heard <- struct{}{}:
		default:
		}
	}
}

// claimOwn makes o follow the sources of its own site (siteID: its
// router's and its controller's) that it watches and another observer
// follows, and returns them. A source is best followed through its own
// router: the site whose link is cut hears its own records at once,
// where another site's observer would have heard nothing more from it
// (a LINK's end among them) and kept the view as it was until the
// source went silent and its next beacon (up to 15 s).
func (n *Set) claimOwn(o *Observer, siteID string) []*source {
	if siteID == "" {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*source
	for _, src := range n.feeds {
		if !src.watchers[o] || src.follower == o {
			continue
		}
		src.mu.Lock()
		mine := src.site == siteID
		src.mu.Unlock()
		if mine {
			src.follower = o
			out = append(out, src)
		}
	}
	return out
}

// joinNetwork makes o watch, at once, the sources of the network its
// router (routerID) is part of, as far as the set knows them: those
// watched by an observer that watches o's router's own source (whose
// router relays o's router's beacon, and o's router its). Without it a
// site would wait for each source's next beacon (every 10 s) to see what
// the other sites of this host in its network already see. It returns
// the sources o watches now that it did not.
func (n *Set) joinNetwork(o *Observer, routerID string, now time.Time) []*source {
	if routerID == "" {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var mine *source
	for _, src := range n.feeds {
		src.mu.Lock()
		name := src.routerName
		src.mu.Unlock()
		if name == routerID {
			mine = src
			break
		}
	}
	if mine == nil {
		return nil
	}
	peers := map[*Observer]bool{}
	for w := range mine.watchers {
		if w != o {
			peers[w] = true
		}
	}
	var out []*source
	for _, src := range n.feeds {
		if src.watchers[o] {
			continue
		}
		src.mu.Lock()
		quiet := now.Sub(src.last) > staleAfter
		src.mu.Unlock()
		if quiet {
			continue // being forgotten, or lost to the others
		}
		for w := range src.watchers {
			if peers[w] {
				src.watchers[o] = true
				out = append(out, src)
				break
			}
		}
	}
	return out
}
