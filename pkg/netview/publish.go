package netview

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/site-controller/site-controller/pkg/vanflow"
)

// The controller's source.
// A site's router publishes records of itself; what only the controller
// knows it publishes as a CONTROLLER source of its own, on the observer's
// connection, for as long as the observer runs (the site's owner's
// lifetime): a beacon every 10 s, a heartbeat every 2 s (on
// <address>.heartbeats, as Skupper's controllers send them), the SITE
// record of the site (its id the site id, which the router's ROUTER record
// names as parent) and a PROCESS record per container a Connector's
// selector picks; all of them again on a FLUSH to sfe.<site id>. This is
// what a Skupper console or collector elsewhere in the network shows of
// the site.

// Identity is what the controller publishes of its site.
type Identity struct {
	SiteID, Name, Namespace, Platform, Version string
	Processes                                  []Process
}

// Process is a container a Connector's selector picks.
type Process struct {
	ID, Name, Host string
}

// Publish sets what the observer publishes of its site; a zero Identity
// publishes nothing.
func (o *Observer) Publish(id Identity) {
	slices.SortFunc(id.Processes, func(a, b Process) int { return strings.Compare(a.ID, b.ID) })
	o.pubMu.Lock()
	same := o.identity.SiteID == id.SiteID && o.identity.Name == id.Name && o.identity.Namespace == id.Namespace &&
		o.identity.Platform == id.Platform && o.identity.Version == id.Version && slices.Equal(o.identity.Processes, id.Processes)
	o.identity = id
	o.pubMu.Unlock()
	if !same {
		select {
		case o.published <- struct{}{}:
		default:
		}
	}
}

// publisher sends the controller's source's messages: send sends one.
type publisher struct {
	id      Identity
	started time.Time
	sent    map[string]vanflow.Record // what was last sent, by record id
	beat    int
}

// records are the records of identity id.
func (p *publisher) records() map[string]vanflow.Record {
	out := map[string]vanflow.Record{}
	if p.id.SiteID == "" {
		return out
	}
	start := uint64(p.started.UnixMicro())
	out[p.id.SiteID] = vanflow.Record{Type: vanflow.Site, ID: p.id.SiteID, Attrs: map[vanflow.Attr]any{
		vanflow.AttrStartTime: start, vanflow.AttrName: p.id.Name, vanflow.AttrNamespace: p.id.Namespace,
		vanflow.AttrPlatform: p.id.Platform, vanflow.AttrBuildVersion: p.id.Version,
	}}
	for _, pr := range p.id.Processes {
		out[pr.ID] = vanflow.Record{Type: vanflow.Process, ID: pr.ID, Attrs: map[vanflow.Attr]any{
			vanflow.AttrStartTime: start, vanflow.AttrParent: p.id.SiteID, vanflow.AttrName: pr.Name,
			vanflow.AttrSourceHost: pr.Host, vanflow.AttrMode: "external", vanflow.AttrGroup: pr.Name,
		}}
	}
	return out
}

// beacon is the source's beacon.
func (p *publisher) beacon() vanflow.Message {
	return vanflow.Message{Subject: vanflow.SubjectBeacon, To: vanflow.BeaconAddress, Version: 1, ID: p.id.SiteID,
		SourceType: vanflow.SourceController, Address: vanflow.SourceAddress(p.id.SiteID), Direct: vanflow.DirectAddress(p.id.SiteID)}
}

// heartbeat is the source's heartbeat.
func (p *publisher) heartbeat(now time.Time) vanflow.Message {
	return vanflow.Message{Subject: vanflow.SubjectHeartbeat, To: vanflow.SourceAddress(p.id.SiteID) + vanflow.HeartbeatsSuffix,
		Version: 1, ID: p.id.SiteID, Now: uint64(now.UnixMicro())}
}

// update is the records that changed since the last sent (all of them
// with all set), those gone with an end time; nil when none.
func (p *publisher) update(now time.Time, all bool) *vanflow.Message {
	cur := p.records()
	var recs []vanflow.Record
	for id, r := range cur {
		if old, ok := p.sent[id]; all || !ok || !maps.EqualFunc(old.Attrs, r.Attrs, func(a, b any) bool { return a == b }) {
			recs = append(recs, r)
		}
	}
	for id, r := range p.sent {
		if _, ok := cur[id]; !ok {
			recs = append(recs, vanflow.Record{Type: r.Type, ID: id, Attrs: map[vanflow.Attr]any{vanflow.AttrEndTime: uint64(now.UnixMicro())}})
		}
	}
	p.sent = cur
	if len(recs) == 0 || p.id.SiteID == "" {
		return nil
	}
	slices.SortFunc(recs, func(a, b vanflow.Record) int { return strings.Compare(a.ID, b.ID) })
	return &vanflow.Message{Subject: vanflow.SubjectRecord, To: vanflow.SourceAddress(p.id.SiteID), Records: recs}
}
