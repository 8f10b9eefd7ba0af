package netview

import (
	"fmt"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/vanflow"
)

// storeOf is a store of two sites' routers (east with n connectors, west
// with a listener and a link to east), as records make them.
func storeOf(n int) (*store, *local) {
	st := newStore()
	now := time.Now()
	add := func(id string, recs ...vanflow.Record) {
		src := &source{id: id, typ: vanflow.SourceRouter, recs: map[string]vanflow.Record{}, closed: map[string]Traffic{}, last: now}
		src.apply(recs)
		st.sources[id] = src
	}
	rec := func(t vanflow.RecordType, id string, attrs map[vanflow.Attr]any) vanflow.Record {
		return vanflow.Record{Type: t, ID: id, Attrs: attrs}
	}
	east := []vanflow.Record{
		rec(vanflow.Site, "e0e0e0e0-1111", map[vanflow.Attr]any{vanflow.AttrName: "east-e0e0e0e0", vanflow.AttrPlatform: "linux"}),
		rec(vanflow.Router, "E:0", map[vanflow.Attr]any{vanflow.AttrParent: "e0e0e0e0-1111", vanflow.AttrName: "0/east-e0e0e0e0", vanflow.AttrMode: "interior"}),
		rec(vanflow.RouterAccess, "E:1", map[vanflow.Attr]any{vanflow.AttrParent: "E:0", vanflow.AttrRole: "inter-router"}),
	}
	for i := range n {
		east = append(east, rec(vanflow.Connector, fmt.Sprintf("E:%d", i+2), map[vanflow.Attr]any{vanflow.AttrParent: "E:0",
			vanflow.AttrAddress: fmt.Sprintf("svc-%04d", i), vanflow.AttrName: fmt.Sprintf("connector/svc-%04d@127.0.0.1", i)}))
	}
	add("E:0", east...)
	add("W:0",
		rec(vanflow.Site, "0a0a0a0a-5555", map[vanflow.Attr]any{vanflow.AttrName: "west-0a0a0a0a", vanflow.AttrPlatform: "linux"}),
		rec(vanflow.Router, "W:0", map[vanflow.Attr]any{vanflow.AttrParent: "0a0a0a0a-5555", vanflow.AttrName: "0/west-0a0a0a0a", vanflow.AttrMode: "interior"}),
		rec(vanflow.Link, "W:1", map[vanflow.Attr]any{vanflow.AttrParent: "W:0", vanflow.AttrName: "link", vanflow.AttrOperStatus: "up", vanflow.AttrPeer: "E:1"}),
		rec(vanflow.Listener, "W:2", map[vanflow.Attr]any{vanflow.AttrParent: "W:0", vanflow.AttrAddress: "hello", vanflow.AttrName: "listener/hello"}),
	)
	return st, &local{routerID: "west-0a0a0a0a", siteID: "0a0a0a0a-5555", listenerUp: map[string]bool{"listener/hello": true}}
}

// TestBuild: the view of two sites' records: sites by name, the link to
// its remote site, services by site, the local link and listener.
func TestBuild(t *testing.T) {
	st, loc := storeOf(2)
	v := st.build(loc, time.Now())
	if got := describeSites(v.Sites); got != "east(e0e0e0e0-1111 linux) links: services: svc-0000/connector/svc-0000@127.0.0.1 svc-0001/connector/svc-0001@127.0.0.1; "+
		"west(0a0a0a0a-5555 linux) links: link→east up=true services: hellolistener/hello/; " {
		t.Errorf("sites %s", got)
	}
	if ls := v.Links["link"]; !ls.Up || ls.RemoteSiteName != "east" || v.Self != "west-0a0a0a0a" || !v.Connectors["svc-0001"] || !v.Listeners["hello"] {
		t.Errorf("view %+v", v)
	}
}

// BenchmarkBuild measures a new view and its digest (what one change
// costs an observer) with 0 and 2,500 services in the network: after a
// change elsewhere (a link), and after a connector added in the site that
// has the services.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{0, 2500} {
		for _, where := range []string{"elsewhere", "there"} {
			b.Run(fmt.Sprintf("services=%d/change=%s", n, where), func(b *testing.B) {
				st, loc := storeOf(n)
				east := st.sources["E:0"]
				i := 0
				for b.Loop() {
					if where == "there" {
						i++
						east.apply([]vanflow.Record{{Type: vanflow.Connector, ID: fmt.Sprintf("E:new%d", i), Attrs: map[vanflow.Attr]any{
							vanflow.AttrParent: "E:0", vanflow.AttrAddress: "hello", vanflow.AttrName: fmt.Sprintf("connector/hello%d", i)}}})
						east.apply([]vanflow.Record{{Type: vanflow.Connector, ID: fmt.Sprintf("E:new%d", i), Attrs: map[vanflow.Attr]any{vanflow.AttrEndTime: uint64(1)}}})
					}
					st.build(loc, time.Now()).digest()
				}
			})
		}
	}
}

// TestReadAllowed: the local listeners are read no sooner than four times
// the last read's cost after it, nor while a pass holds them off, and a
// hold keeps them unread for at most maxHeld.
func TestReadAllowed(t *testing.T) {
	last := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return last.Add(time.Duration(n) * time.Millisecond) }
	for _, c := range []struct {
		name string
		cost time.Duration
		hold time.Time
		want time.Time
	}{
		{"no hold", 38 * time.Millisecond, time.Time{}, ms(152)},
		{"a hold before the spacing ends", 38 * time.Millisecond, ms(100), ms(152)},
		{"a hold after it", 38 * time.Millisecond, ms(400), ms(400)},
		{"a cheap read, a hold", time.Millisecond, ms(250), ms(250)},
		{"holds that go on", 38 * time.Millisecond, ms(60_000), last.Add(maxHeld)},
	} {
		if got := readAllowed(last, c.cost, c.hold); !got.Equal(c.want) {
			t.Errorf("%s: %v after the last read, want %v", c.name, got.Sub(last), c.want.Sub(last))
		}
	}
}

// TestHold: a hold only ever moves later.
func TestHold(t *testing.T) {
	o := &Observer{}
	o.Hold(time.Second)
	first := o.holdUntil.Load()
	o.Hold(time.Millisecond)
	if o.holdUntil.Load() != first {
		t.Error("a shorter hold cut a longer one short")
	}
	o.Hold(2 * time.Second)
	if o.holdUntil.Load() <= first {
		t.Error("a longer hold did not extend it")
	}
	var none *Observer
	none.Hold(time.Second) // a site without an observer: nothing
}
