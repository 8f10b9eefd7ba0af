package netview

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/status"
)

// eventually waits up to limit for cond, failing with what it last said.
func eventually(t *testing.T, limit time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, limit, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// linked starts two real routers, east (a connector for hello to an echo
// server) and west (a link to east, a listener for hello), and returns
// them and west's listener port.
func linked(t *testing.T) (east, west *routertest.Site, port int) {
	echo := routertest.EchoServer(t, nil)
	east = &routertest.Site{Name: "east", ID: "e0e0e0e0-1111-4222-8333-444444444444", InterRouter: routertest.FreePort(t),
		Connectors: map[string]int{"hello": echo}}
	routertest.StartSite(t, east)
	port = routertest.FreePort(t)
	west = &routertest.Site{Name: "west", ID: "0a0a0a0a-5555-4666-8777-888888888888", Links: []int{east.InterRouter},
		Listeners: map[string]int{"hello": port}}
	routertest.StartSite(t, west)
	return east, west, port
}

// TestLiveRecords: the view of west, from the routers' records, with real
// routers: both sites by name and platform, west's link up to east with
// the router's message, east's connector for hello, west's listener
// accepting, and traffic through them counted, growing as bytes go
// through, connections closed included; a connector removed in east
// leaves the view.
func TestLiveRecords(t *testing.T) {
	east, west, port := linked(t)
	var set Set
	var heard, changes atomic.Int32
	defer set.Watch(func(ns string) {
		if ns == "west" {
			heard.Add(1)
		}
	})()
	o := set.Start(west.Dir, west.Management, func(string) { changes.Add(1) })
	defer o.Close()
	link := "link-" + strconv.Itoa(east.InterRouter)
	start := time.Now()
	eventually(t, 20*time.Second, "west's view", func() string {
		v := o.View()
		if v == nil {
			return "no view"
		}
		if len(v.Sites) != 2 || v.Sites[0].Name != "east" || v.Sites[1].Name != "west" {
			return "sites " + describeSites(v.Sites)
		}
		e, w := v.Sites[0], v.Sites[1]
		if e.ID != east.ID || e.Platform != "linux" || e.Namespace != "east" || w.ID != west.ID {
			return "sites " + describeSites(v.Sites)
		}
		if v.RouterVersions[east.ID] != "3.5.1" || v.RouterVersions[west.ID] != "3.5.1" {
			return fmt.Sprintf("router versions %v", v.RouterVersions)
		}
		if len(w.Links) != 1 || w.Links[0].Name != link || !w.Links[0].Operational || w.Links[0].RemoteSiteName != "east" || w.Links[0].RemoteSiteID != east.ID {
			return "west's links " + describeSites(v.Sites)
		}
		if ls := v.Links[link]; !ls.Up || !strings.Contains(ls.Message, "Connection Opened") || ls.RemoteSiteName != "east" {
			return "local link " + ls.Message
		}
		if !v.Connectors["hello"] || !v.Listeners["hello"] {
			return "routing keys"
		}
		if len(e.Services) != 1 || e.Services[0].RoutingKey != "hello" || !slices.Equal(e.Services[0].Connectors, []string{"connector/hello@127.0.0.1"}) {
			return "east's services " + describeSites(v.Sites)
		}
		if !v.ListenerUp["listener/hello"] {
			return "west's listener not up"
		}
		if v.Self != west.RouterID() {
			return "self " + v.Self
		}
		return ""
	})
	t.Logf("west's view whole %v after the observer started (the sources' beacons come every 10 s)", time.Since(start).Round(100*time.Millisecond))
	if changes.Load() == 0 || heard.Load() == 0 {
		t.Errorf("the view changed, yet changed was called %d times and the watchers %d", changes.Load(), heard.Load())
	}

	// traffic: an open connection, then another; the bytes only grow
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10000)
	c.Write(buf)
	io.ReadFull(c, buf)
	eventually(t, 10*time.Second, "traffic of an open connection", func() string {
		tr := o.View().Traffic["hello"]
		if tr.Open != 1 || tr.BytesIn < 10000 || tr.BytesOut < 10000 {
			return describeTraffic(tr)
		}
		return ""
	})
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, port, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "traffic grown, connections closed", func() string {
		tr := o.View().Traffic["hello"]
		if tr.Open != 0 || tr.BytesIn <= 10000 || tr.BytesOut <= 10000 {
			return describeTraffic(tr)
		}
		return ""
	})

	// east's connector removed: its record ends
	cfg, err := live.ManagementTLS(east.Dir)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := management.Dial(ctx, "127.0.0.1:"+strconv.Itoa(east.Management), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	if err := mc.Delete(ctx, management.TypeName("tcpConnector"), "connector/hello@127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the connector gone from west's view", func() string {
		v := o.View()
		if v.Connectors["hello"] || v.ListenerUp["listener/hello"] {
			return "still there: " + describeSites(v.Sites)
		}
		return ""
	})
}

func describeSites(ss []status.SiteRecord) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(s.Name + "(" + s.ID + " " + s.Platform + ") links:")
		for _, l := range s.Links {
			b.WriteString(" " + l.Name + "→" + l.RemoteSiteName + " up=" + strconv.FormatBool(l.Operational))
		}
		b.WriteString(" services:")
		for _, sv := range s.Services {
			b.WriteString(" " + sv.RoutingKey + strings.Join(sv.Listeners, ",") + "/" + strings.Join(sv.Connectors, ","))
		}
		b.WriteString("; ")
	}
	return b.String()
}

func describeTraffic(t Traffic) string {
	return "open " + strconv.Itoa(t.Open) + " in " + strconv.FormatUint(t.BytesIn, 10) + " out " + strconv.FormatUint(t.BytesOut, 10)
}

// TestSharedSources: two observers of one set, on the two routers of one
// network, share its sources: each is followed by one of them and
// watched by both, and both views are whole, the second one's at once
// (the set knows the network of its router). When one observer ends, the
// other follows every source: traffic after is still counted in its view.
func TestSharedSources(t *testing.T) {
	east, west, port := linked(t)
	var set Set
	oe := set.Start(east.Dir, east.Management, nil)
	defer oe.Close()
	whole := func(o *Observer) func() string {
		return func() string {
			v := o.View()
			if v == nil || len(v.Sites) != 2 || !v.Connectors["hello"] || !v.Listeners["hello"] {
				return "not yet"
			}
			return ""
		}
	}
	eventually(t, 20*time.Second, "east's view", whole(oe))
	// west's observer starts once east's sees the network: it need not
	// wait for the sources' next beacons (every 10 s)
	start := time.Now()
	ow := set.Start(west.Dir, west.Management, nil)
	defer ow.Close()
	eventually(t, 20*time.Second, "west's view", whole(ow))
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("west's view whole %v after its observer started; the set knew the network already", d.Round(100*time.Millisecond))
	} else {
		t.Logf("west's view whole %v after its observer started", d.Round(100*time.Millisecond))
	}
	followers := func(watchers int) map[*Observer]int {
		set.mu.Lock()
		defer set.mu.Unlock()
		out := map[*Observer]int{}
		for _, src := range set.feeds {
			if len(src.watchers) != watchers {
				t.Errorf("source %s watched by %d observers, want %d", src.id, len(src.watchers), watchers)
			}
			out[src.follower]++
		}
		return out
	}
	f := followers(2)
	if f[oe]+f[ow] < 2 || f[nil] != 0 {
		t.Fatalf("followers %v: each source should have one", f)
	}
	// the one that follows west's router ends
	gone, stays := ow, oe
	if f[oe] > f[ow] {
		gone, stays = oe, ow
	}
	gone.Close()
	eventually(t, 5*time.Second, "the other observer follows every source", func() string {
		if f := followers(1); f[stays] < 2 || len(f) != 1 {
			return "followers " + strconv.Itoa(len(f))
		}
		return ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, port, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "traffic counted by the observer that stayed", func() string {
		if tr := stays.View().Traffic["hello"]; tr.BytesIn == 0 {
			return describeTraffic(tr)
		}
		return ""
	})
}

// TestQuietRouter: east's router stops answering (SIGSTOP: its
// connections stay open, as in a partition). West's router loses its
// route to it and its listener for east's service stops accepting; no
// record says so, but east's source goes quiet, and the view follows the
// local router's word: the listener down, the view incomplete. When east
// runs again, both come back.
func TestQuietRouter(t *testing.T) {
	east, west, _ := linked(t)
	var set Set
	o := set.Start(west.Dir, west.Management, nil)
	defer o.Close()
	eventually(t, 20*time.Second, "west's listener up", func() string {
		if v := o.View(); v == nil || !v.ListenerUp["listener/hello"] || len(v.Sites) != 2 {
			return "not yet"
		}
		return ""
	})
	p := east.Router.Cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer p.Signal(syscall.SIGCONT)
	start := time.Now()
	eventually(t, 15*time.Second, "west's listener down, the view incomplete", func() string {
		v := o.View()
		if v.ListenerUp["listener/hello"] || len(v.Errs) == 0 || !strings.Contains(v.Errs[0], "silent") {
			return fmt.Sprintf("up %v, errs %v", v.ListenerUp["listener/hello"], v.Errs)
		}
		return ""
	})
	t.Logf("west's listener down in the view %v after east stopped", time.Since(start).Round(100*time.Millisecond))
	p.Signal(syscall.SIGCONT)
	eventually(t, 30*time.Second, "west's listener up again, the view whole", func() string {
		v := o.View()
		if !v.ListenerUp["listener/hello"] || len(v.Errs) != 0 || len(v.Sites) != 2 {
			return fmt.Sprintf("up %v, errs %v", v.ListenerUp["listener/hello"], v.Errs)
		}
		return ""
	})
}

// TestUnlinked: two observers of one set, on two linked routers (their
// sources shared; west's observer starts when east's follows every
// source); west's link connector removed, each view keeps only
// its own site at once: east no longer lists west's listener, west no
// longer east's connector, though the other's source is still heard
// through the set (a source is forgotten only after 30 s of silence).
func TestUnlinked(t *testing.T) {
	east, west, _ := linked(t)
	var set Set
	both := func(o *Observer) func() string {
		return func() string {
			if v := o.View(); v == nil || len(v.Sites) != 2 || !v.Connectors["hello"] || !v.Listeners["hello"] {
				return "not yet"
			}
			return ""
		}
	}
	// east's observer first, alone: it follows west's sources too (through
	// east's router) until west's observer comes and claims its own
	oe := set.Start(east.Dir, east.Management, nil)
	defer oe.Close()
	eventually(t, 25*time.Second, "east's view whole", both(oe))
	ow := set.Start(west.Dir, west.Management, nil)
	defer ow.Close()
	eventually(t, 25*time.Second, "west's view whole", both(ow))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := live.ManagementTLS(west.Dir)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := management.Dial(ctx, "127.0.0.1:"+strconv.Itoa(west.Management), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	start := time.Now()
	if err := mc.Delete(ctx, management.TypeName("connector"), "link-"+strconv.Itoa(east.InterRouter)); err != nil {
		t.Fatal(err)
	}
	alone := func(o *Observer, self string, theirs func(*View) bool) func() string {
		return func() string {
			v := o.View()
			if len(v.Sites) != 1 || v.Sites[0].Name != self {
				return "sites " + describeSites(v.Sites)
			}
			if theirs(v) {
				return "the other site's service still there"
			}
			return ""
		}
	}
	eventually(t, 10*time.Second, "east's view alone", alone(oe, "east", func(v *View) bool { return v.Listeners["hello"] }))
	eventually(t, 10*time.Second, "west's view alone", alone(ow, "west", func(v *View) bool { return v.Connectors["hello"] }))
	t.Logf("both views alone %v after the link went", time.Since(start).Round(100*time.Millisecond))
}
