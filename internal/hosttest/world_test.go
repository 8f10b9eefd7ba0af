package hosttest_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/hosttest"
	"github.com/site-controller/site-controller/pkg/status"
)

// world is simulated hosts, each running one site (namespace
// hosttest.NS, site named after the host) with an echo server behind a
// Connector echo-<host>, and a Listener for every other host's echo on
// 127.0.0.1:port(key).
type world struct {
	t      testing.TB
	n      *hosttest.Network
	names  []string
	hosts  map[string]*hosttest.Host
	links  [][2]string // from, to: from's Link to to's RouterAccess
	accept []string
	echo   map[string]int
}

// in is the world as seen from test t (a subtest): failures are t's.
func (w *world) in(t testing.TB) *world {
	c := *w
	c.t = t
	return &c
}

// port is where every other host listens for host name's echo.
func port(name string) int { return 9000 + int(name[0]-'a') + 1 }

// key is host name's echo routing key.
func key(name string) string { return "echo-" + name }

// options are a world's: links (from, to: from's Link to to's RouterAccess,
// made with to's link file for its switch address), sites that accept
// links besides the links' targets, and controller arguments by host.
type options struct {
	links  [][2]string
	accept []string
	args   map[string][]string
}

// newWorld starts hosts named names, gives each its site, and links them;
// it returns once everything is steady (or, without links, once every
// site's router runs).
func newWorld(t testing.TB, names []string, o options) *world {
	t.Helper()
	start := time.Now()
	w := &world{t: t, n: hosttest.New(t), names: names, hosts: map[string]*hosttest.Host{}, links: o.links, accept: o.accept, echo: map[string]int{}}
	for _, name := range names {
		w.hosts[name] = w.n.AddHost(name, o.args[name]...)
	}
	for _, name := range names {
		w.writeSite(name, nil)
	}
	for _, l := range o.links {
		w.link(l[0], l[1])
	}
	if len(o.links) > 0 {
		w.steady("the network up", time.Minute, true)
	} else {
		for _, name := range names {
			eventually(t, time.Minute, "site "+name+" running", func() bool {
				s := w.hosts[name].Status(hosttest.NS, "Site", name)
				return s != nil && s.Status == status.Ready
			})
		}
	}
	t.Logf("%d hosts up, linked and steady in %v", len(names), time.Since(start).Round(time.Millisecond))
	return w
}

// spec is host name's site.
func (w *world) spec(name string, settings map[string]string) hosttest.SiteSpec {
	s := hosttest.SiteSpec{Name: name, Settings: settings, Connectors: map[string]int{}, Listeners: map[string]int{}}
	s.Access = slices.Contains(w.accept, name)
	for _, l := range w.links {
		s.Access = s.Access || l[1] == name
	}
	if w.echo[name] == 0 {
		w.echo[name] = w.hosts[name].EchoServer(w.t)
	}
	s.Connectors[key(name)] = w.echo[name]
	for _, other := range w.names {
		if other != name {
			s.Listeners[key(other)] = port(other)
		}
	}
	return s
}

func (w *world) writeSite(name string, settings map[string]string) {
	w.t.Helper()
	if err := w.hosts[name].Write(hosttest.NS, "site.yaml", w.spec(name, settings).YAML()); err != nil {
		w.t.Fatal(err)
	}
}

// linkFile waits for the link file host to writes for its RouterAccess at
// address addr.
func (w *world) linkFile(to, addr string) []byte {
	w.t.Helper()
	var data []byte
	eventually(w.t, 30*time.Second, "the link file of "+to+" for "+addr, func() bool {
		var err error
		data, err = w.hosts[to].LinkFile(hosttest.NS, hosttest.AccessName(to), addr)
		return err == nil
	})
	return data
}

// link copies the link file of to for its switch address into from's
// input, as link-<to>.yaml.
func (w *world) link(from, to string) {
	w.t.Helper()
	if err := w.hosts[from].Write(hosttest.NS, "link-"+to+".yaml", string(w.linkFile(to, w.hosts[to].Addr))); err != nil {
		w.t.Fatal(err)
	}
}

// unlink removes from's link file for to.
func (w *world) unlink(from, to string) {
	w.t.Helper()
	if err := w.hosts[from].Remove(hosttest.NS, "link-"+to+".yaml"); err != nil {
		w.t.Fatal(err)
	}
}

// linkStatus is the status of from's Link to to.
func (w *world) linkStatus(from, to string) *status.Status {
	return w.hosts[from].Status(hosttest.NS, "Link", hosttest.LinkName(to))
}

// steady waits until every Link is Ready to the right site, every
// Listener is matched, every Site with a Link sees every site (with
// sites, those without: a site that only accepts links and lost them
// looks again only every 10 s while alone, see pkg/netview), and a new
// connection from every host reaches every other host's echo.
func (w *world) steady(what string, limit time.Duration, sites bool) time.Duration {
	w.t.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	for {
		left := w.notSteady(sites)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: not steady after %v: %s", what, limit, strings.Join(left, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for _, from := range w.names {
		for _, to := range w.names {
			if from != to {
				t0 := time.Now()
				_, err := w.hosts[from].RoundTrip(ctx, hosttest.Loopback(port(to)), 2*time.Second)
				if d := time.Since(t0); d > 5*time.Second {
					w.t.Logf("%s: a new connection %s→%s answered only after %v", what, from, to, d.Round(100*time.Millisecond))
				}
				if err != nil {
					w.t.Fatalf("%s: %v (%s)", what, err, strings.Join(w.notSteady(sites), "; "))
				}
			}
		}
	}
	return time.Since(start)
}

// notSteady says what is not steady yet.
func (w *world) notSteady(sites bool) []string {
	var out []string
	for _, l := range w.links {
		if s := w.linkStatus(l[0], l[1]); s == nil || s.Status != status.Ready || s.RemoteSiteName != l[1] {
			out = append(out, fmt.Sprintf("%s's link to %s: %s", l[0], l[1], describe(s)))
		}
	}
	for _, name := range w.names {
		h := w.hosts[name]
		linking := slices.ContainsFunc(w.links, func(l [2]string) bool { return l[0] == name })
		if s := h.Status(hosttest.NS, "Site", name); (sites || linking) && (s == nil || s.SitesInNetwork == nil || *s.SitesInNetwork != len(w.names)) {
			out = append(out, fmt.Sprintf("site %s: %s", name, describe(s)))
		}
		for _, other := range w.names {
			if other == name {
				continue
			}
			if s := h.Status(hosttest.NS, "Listener", key(other)); s == nil || s.HasMatchingConnector == nil || !*s.HasMatchingConnector {
				out = append(out, fmt.Sprintf("%s's listener %s: %s", name, key(other), describe(s)))
			}
		}
	}
	return out
}

// describe is a status in a line.
func describe(s *status.Status) string {
	if s == nil {
		return "no status yet"
	}
	out := s.Status
	if s.Message != "" {
		out += " (" + s.Message + ")"
	}
	if s.SitesInNetwork != nil {
		out += fmt.Sprintf(" sitesInNetwork=%d", *s.SitesInNetwork)
	}
	if s.HasMatchingConnector != nil {
		out += fmt.Sprintf(" hasMatchingConnector=%v", *s.HasMatchingConnector)
	}
	return out
}

// routers is the state of every host's router.
func (w *world) routers() map[string]hosttest.Router {
	w.t.Helper()
	out := map[string]hosttest.Router{}
	for _, name := range w.names {
		r, err := w.hosts[name].Router(hosttest.NS)
		if err != nil {
			w.t.Fatal(err)
		}
		if r.PID == 0 {
			w.t.Fatalf("host %s: its router does not run (%s)", name, r.Active)
		}
		out[name] = r
	}
	return out
}

// sameRouters fails the test unless every router but those of except
// runs as before: the same process, not restarted.
func (w *world) sameRouters(before map[string]hosttest.Router, except ...string) {
	w.t.Helper()
	after := w.routers()
	for _, name := range w.names {
		if slices.Contains(except, name) {
			continue
		}
		if after[name] != before[name] {
			w.t.Errorf("host %s: its router was restarted: before %+v, after %+v", name, before[name], after[name])
		}
	}
}

// eventually waits up to limit for cond, failing the test after.
func eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// watch records, from its start until stop, what the users of the sites
// see: chosen statuses (read every 100 ms) and whether new connections
// along chosen paths work (a try every 200 ms, each bounded by a second).
// Only changes are kept, with their time.
type watch struct {
	start  time.Time
	mu     sync.Mutex
	events []event
	last   map[string]string
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type event struct {
	at       time.Time
	key, val string
}

// probe is a thing a watch looks at: a key, and how to read its value.
type probe struct {
	key  string
	read func() string
}

// linkProbe reads from's Link to to: Ready, or Pending: why.
func (w *world) linkProbe(from, to string) probe {
	return probe{from + "'s link to " + to, func() string {
		s := w.linkStatus(from, to)
		if s == nil {
			return "none"
		}
		if s.Status == status.Ready {
			return "Ready"
		}
		return s.Status + ": " + s.Message
	}}
}

// matchedProbe reads whether host's Listener for to's echo is matched.
func (w *world) matchedProbe(host, to string) probe {
	return probe{host + "'s listener " + key(to) + " matched", func() string {
		s := w.hosts[host].Status(hosttest.NS, "Listener", key(to))
		if s == nil || s.HasMatchingConnector == nil {
			return "none"
		}
		return fmt.Sprint(*s.HasMatchingConnector)
	}}
}

// sitesProbe reads how many sites host's Site sees.
func (w *world) sitesProbe(host string) probe {
	return probe{"site " + host + " sitesInNetwork", func() string {
		s := w.hosts[host].Status(hosttest.NS, "Site", host)
		if s == nil || s.SitesInNetwork == nil {
			return "none"
		}
		return fmt.Sprint(*s.SitesInNetwork)
	}}
}

// pathKey names the traffic probe from host from to to's echo.
func pathKey(from, to string) string { return "new connection " + from + "→" + to }

// startWatch starts watching statuses and, along paths (from, to), new
// connections.
func (w *world) startWatch(probes []probe, paths [][2]string) *watch {
	ctx, cancel := context.WithCancel(context.Background())
	wt := &watch{start: time.Now(), last: map[string]string{}, cancel: cancel}
	wt.wg.Add(1)
	go func() {
		defer wt.wg.Done()
		for ctx.Err() == nil {
			for _, p := range probes {
				wt.record(p.key, p.read())
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	for _, p := range paths {
		from, to := p[0], p[1]
		wt.wg.Add(1)
		go func() {
			defer wt.wg.Done()
			for ctx.Err() == nil {
				at := time.Now()
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				err := w.hosts[from].Ping(pctx, hosttest.Loopback(port(to)))
				pcancel()
				if ctx.Err() != nil {
					return
				}
				val := "ok"
				if err != nil {
					val = "fails"
				}
				wt.recordAt(at, pathKey(from, to), val)
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	}
	return wt
}

func (wt *watch) record(key, val string) { wt.recordAt(time.Now(), key, val) }

func (wt *watch) recordAt(at time.Time, key, val string) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if old, ok := wt.last[key]; ok && old == val {
		return
	}
	wt.last[key] = val
	wt.events = append(wt.events, event{at, key, val})
}

// stop ends the watch.
func (wt *watch) stop() {
	wt.cancel()
	wt.wg.Wait()
}

// sorted are the events by time.
func (wt *watch) sorted() []event {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	out := slices.Clone(wt.events)
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// log writes the timeline, times from mark.
func (wt *watch) log(t testing.TB, mark time.Time, what string) {
	t.Helper()
	var b strings.Builder
	for _, e := range wt.sorted() {
		fmt.Fprintf(&b, "\n  %+7.1fs  %s: %s", e.at.Sub(mark).Seconds(), e.key, e.val)
	}
	t.Logf("%s (times from the fault):%s", what, b.String())
}

// first is the first event of key at or after since whose value satisfies
// ok (the value key had at since counts, as at since).
func (wt *watch) first(key string, since time.Time, ok func(string) bool) (time.Time, string, bool) {
	var before *event
	for _, e := range wt.sorted() {
		if e.key != key {
			continue
		}
		if !e.at.After(since) {
			before = &e
			continue
		}
		if before != nil {
			if ok(before.val) {
				return since, before.val, true
			}
			before = nil
		}
		if ok(e.val) {
			return e.at, e.val, true
		}
	}
	if before != nil && ok(before.val) {
		return since, before.val, true
	}
	return time.Time{}, "", false
}

// values are every value key had from since to until.
func (wt *watch) values(key string, since, until time.Time) []string {
	var out []string
	var before string
	for _, e := range wt.sorted() {
		if e.key != key {
			continue
		}
		switch {
		case e.at.Before(since):
			before = e.val
		case e.at.Before(until):
			if before != "" {
				out = append(out, before)
				before = ""
			}
			out = append(out, e.val)
		}
	}
	if before != "" {
		out = append(out, before)
	}
	return out
}

func is(v string) func(string) bool { return func(s string) bool { return s == v } }

func not(v string) func(string) bool { return func(s string) bool { return s != v } }

// since is a duration from mark to at, for logs: "-" when at is zero.
func since(mark, at time.Time) string {
	if at.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%.1fs", at.Sub(mark).Seconds())
}
