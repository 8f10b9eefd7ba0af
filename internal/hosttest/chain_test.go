package hosttest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/hosttest"
)

// TestHostsChain: three simulated hosts A←B←C, each a network namespace
// with its own systemd user manager, controller and real router: B links
// to A and C to B, each with the link file the accepting site wrote for
// its switch address (RouterAccess bound to every address), and C reaches
// A's service through B. Then the faults networks and hosts have, one
// after the other, each with what the statuses said, when, and how long
// the sites took to recover after it ended (in the log); every local
// router not hit by a fault keeps running, unrestarted, and sites away
// from the fault carry on.
func TestHostsChain(t *testing.T) {
	w := newWorld(t, []string{"a", "b", "c"}, options{links: [][2]string{{"b", "a"}, {"c", "b"}}})
	a, b := w.hosts["a"], w.hosts["b"]
	for _, l := range w.links {
		if s := w.linkStatus(l[0], l[1]); s.RemoteSiteName != l[1] {
			t.Errorf("%s's link reaches %q, want %s", l[0], s.RemoteSiteName, l[1])
		}
	}
	// C's own view: every site of the chain, B's link included
	if s := w.hosts["c"].Status(hosttest.NS, "Site", "c"); len(s.Network) != 3 {
		t.Errorf("C's site sees %d sites, want 3: %+v", len(s.Network), s.Network)
	}

	// what users of B's and C's services of A see, and whether C and B
	// still reach each other (away from A↔B faults)
	probes := []probe{w.linkProbe("b", "a"), w.linkProbe("c", "b"), w.matchedProbe("b", "a"), w.matchedProbe("c", "a"), w.sitesProbe("b")}
	paths := [][2]string{{"b", "a"}, {"a", "b"}, {"c", "a"}, {"c", "b"}}

	t.Run("partition A-B 10s", func(t *testing.T) {
		w := w.in(t)
		r := w.fault(t, probes, paths, func() error { return a.Partition(b) }, 10*time.Second, a.Heal)
		r.sawFailure(t, pathKey("b", "a"))
		r.sawFailure(t, pathKey("c", "a"))
		r.saw(t, "b's listener echo-a matched", is("false"))
		r.untouched(t, pathKey("c", "b"), "ok")
		r.untouched(t, "c's link to b", "Ready")
		w.sameRouters(r.routers)
		r.report(t, "b's link to a", pathKey("b", "a"), pathKey("a", "b"), pathKey("c", "a"))
	})

	t.Run("one-way loss B to A 24s", func(t *testing.T) {
		w := w.in(t)
		// B's packets to A are lost, A's reach B
		r := w.fault(t, probes, paths, func() error { return a.DropFrom(b) }, 24*time.Second, a.Heal)
		r.sawFailure(t, pathKey("b", "a"))
		r.saw(t, "b's listener echo-a matched", is("false"))
		// the router's own reason: its idle timeout (16 s) expired
		r.saw(t, "b's link to a", func(v string) bool { return strings.Contains(v, "idle-timeout expired") })
		r.untouched(t, pathKey("c", "b"), "ok")
		r.untouched(t, "c's link to b", "Ready")
		w.sameRouters(r.routers)
		r.report(t, "b's link to a", pathKey("b", "a"), pathKey("a", "b"), pathKey("c", "a"))
	})

	t.Run("TCP resets A-B 10s", func(t *testing.T) {
		w := w.in(t)
		r := w.fault(t, probes, paths, func() error { return a.Reset(b) }, 10*time.Second, a.Heal)
		r.sawFailure(t, pathKey("b", "a"))
		r.saw(t, "b's link to a", func(v string) bool {
			return strings.HasPrefix(v, "Pending: not linked: Connection to "+a.Addr+":") && strings.Contains(v, "failed")
		})
		r.untouched(t, pathKey("c", "b"), "ok")
		r.untouched(t, "c's link to b", "Ready")
		w.sameRouters(r.routers)
		r.report(t, "b's link to a", pathKey("b", "a"), pathKey("a", "b"), pathKey("c", "a"))
	})

	t.Run("router of A killed", func(t *testing.T) {
		w := w.in(t)
		var killed int
		r := w.fault(t, probes, paths, func() error {
			var err error
			killed, err = a.KillRouter(hosttest.NS)
			return err
		}, 0, func() error { return nil })
		after := w.routers()
		if after["a"].PID == killed || after["a"].Restarts != r.routers["a"].Restarts+1 {
			t.Errorf("A's router: killed %d, now %+v (before %+v): want it restarted once by its unit", killed, after["a"], r.routers["a"])
		}
		r.sawFailure(t, pathKey("b", "a"))
		r.untouched(t, pathKey("c", "b"), "ok")
		r.untouched(t, "c's link to b", "Ready")
		w.sameRouters(r.routers, "a")
		r.report(t, "b's link to a", pathKey("b", "a"), pathKey("a", "b"), pathKey("c", "a"))
	})

	t.Run("host A rebooted", func(t *testing.T) {
		w := w.in(t)
		// off the network, every process killed (nothing it says in dying
		// reaches anyone), down 5 s; then its manager starts the router
		// it had enabled, and its controller adopts it
		var booted hosttest.Router
		r := w.fault(t, probes, paths, func() error {
			if err := a.Isolate(); err != nil {
				return err
			}
			a.Crash()
			return nil
		}, 5*time.Second, func() error {
			if err := a.Heal(); err != nil {
				return err
			}
			if err := a.StartManager(); err != nil {
				return err
			}
			eventually(t, 30*time.Second, "A's router started by its manager at boot", func() bool {
				booted, _ = a.Router(hosttest.NS)
				return booted.PID != 0 && booted.Active == "active"
			})
			return a.StartController()
		})
		if after := w.routers()["a"]; after != booted {
			t.Errorf("A's controller restarted the router its manager started at boot: %+v, then %+v", booted, after)
		}
		if booted.PID == r.routers["a"].PID {
			t.Errorf("A's router %d outlived the reboot", booted.PID)
		}
		r.sawFailure(t, pathKey("b", "a"))
		r.untouched(t, pathKey("c", "b"), "ok")
		w.sameRouters(r.routers, "a")
		r.report(t, "b's link to a", pathKey("b", "a"), pathKey("a", "b"), pathKey("c", "a"))
	})

	t.Run("controller of A stopped 20s", func(t *testing.T) {
		w := w.in(t)
		// the routers carry traffic without it: new connections, and one
		// connection that stays open across the whole stop
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		long, err := b.Dial(ctx, hosttest.Loopback(port("a")))
		if err != nil {
			t.Fatal(err)
		}
		defer long.Close()
		echoOnce(t, long, "before")
		r := w.fault(t, probes, paths, func() error { a.StopController(); return nil }, 20*time.Second, a.StartController)
		echoOnce(t, long, "after")
		for _, p := range paths {
			r.untouched(t, pathKey(p[0], p[1]), "ok")
		}
		r.untouched(t, "b's link to a", "Ready")
		w.sameRouters(r.routers)
		t.Logf("20 s without A's controller: every new connection B→A, C→A, C→B answered, a connection B→A open across it echoed after; no router restarted")
	})

	t.Run("slow narrow path B to A", func(t *testing.T) {
		w := w.in(t)
		slowPath(t, w)
	})
}

// echoOnce sends a line on an open connection to an echo server and
// expects it back.
func echoOnce(t testing.TB, c io.ReadWriter, msg string) {
	t.Helper()
	msg += "\n"
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("writing %q: %v", msg, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, got, err)
	}
}

// slowPath puts B's link to A on a path of 100 ms each way (a round trip
// of 200 ms more) and 1 Mbit/s each way, through a relay: the link comes
// up through it, stays Ready while a transfer fills the path, and traffic
// takes the path's time.
func slowPath(t *testing.T, w *world) {
	w = w.in(t)
	a, b := w.hosts["a"], w.hosts["b"]
	const latency, rate = 100 * time.Millisecond, 1_000_000
	raPort := 0
	for _, e := range a.Status(hosttest.NS, "RouterAccess", hosttest.AccessName("a")).Endpoints {
		if e.Name == "inter-router" {
			raPort, _ = strconv.Atoi(e.Port)
		}
	}
	if raPort == 0 {
		t.Fatal("A's RouterAccess has no inter-router endpoint")
	}
	before := w.routers()
	// connections made before a path is laid keep theirs: the link is
	// made again after
	w.unlink("b", "a")
	eventually(t, 30*time.Second, "B's link to A gone", func() bool {
		m := b.Status(hosttest.NS, "Listener", key("a"))
		return w.linkStatus("b", "a") == nil && !w.hasConnector(b, "a") && m != nil && m.HasMatchingConnector != nil && !*m.HasMatchingConnector
	})
	relay := w.n.AddRelay("r")
	sp := w.n.SlowPath(t, relay, b, a, raPort, latency, rate)
	wt := w.startWatch([]probe{w.linkProbe("b", "a"), w.matchedProbe("b", "a"), w.matchedProbe("c", "a"), w.matchedProbe("a", "b"), w.sitesProbe("a"), w.sitesProbe("b"), w.sitesProbe("c")}, [][2]string{{"b", "a"}})
	start := time.Now()
	w.link("b", "a")
	took := w.steady("linked through the slow path", 90*time.Second, false)
	wt.stop()
	wt.log(t, start, "linking through the slow path")
	if sp.Accepted() == 0 {
		t.Fatal("the link did not go through the slow path")
	}
	t.Logf("link file landing → every site steady through the slow path (%v each way, %d bit/s): %v", latency, rate, took.Round(100*time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := b.Dial(ctx, hosttest.Loopback(port("a")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	echoOnce(t, c, "warm")
	t0 := time.Now()
	echoOnce(t, c, "ping")
	rtt := time.Since(t0)
	if rtt < 2*latency {
		t.Errorf("a round trip through the slow path took %v, less than its %v", rtt, 2*latency)
	}
	// 128 KiB there and back through a 1 Mbit/s path: at least a second
	wt = w.startWatch([]probe{w.linkProbe("b", "a")}, nil)
	data := make([]byte, 128<<10)
	rand.Read(data)
	t1 := time.Now()
	go c.Write(data)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("transfer through the slow path: %v", err)
	}
	took = time.Since(t1)
	wt.stop()
	if !bytes.Equal(got, data) {
		t.Error("the transfer came back changed")
	}
	// there and back overlap: the floor is one way's time on the wire
	if floor := time.Duration(float64(len(data)*8) / rate * float64(time.Second)); took < floor {
		t.Errorf("128 KiB there and back took %v, less than the path's %v", took, floor)
	}
	if v := wt.values("b's link to a", t1, time.Now()); len(v) != 1 || v[0] != "Ready" {
		t.Errorf("B's link to A during the transfer: %v, want Ready throughout", v)
	}
	t.Logf("slow path: round trip %v; 128 KiB echoed in %v (%.0f kbit/s each way); B's link Ready throughout", rtt.Round(time.Millisecond), took.Round(time.Millisecond), float64(len(data)*8)/took.Seconds()/1000)
	c.Close()

	// the path removed: the relay's connections end, the link comes back
	// directly
	sp.Close()
	w.steady("linked directly again", 90*time.Second, false)
	w.sameRouters(before)
}

// hasConnector tells whether host's router has a link connector to to's
// RouterAccess at all (removed links leave none).
func (w *world) hasConnector(h *hosttest.Host, to string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cs, err := h.Query(ctx, hosttest.NS, "connector")
	if err != nil {
		return true
	}
	for _, c := range cs {
		if c["name"] == hosttest.LinkName(to) {
			return true
		}
	}
	return false
}

// faultRun is one fault, watched: when it began and ended, the routers
// before it, and what was seen.
type faultRun struct {
	w                       *world
	routers                 map[string]hosttest.Router
	watch                   *watch
	mark, healed, recovered time.Time
}

// fault watches the world for a second, applies a fault, holds it, heals
// it, waits until everything is steady again, and watches one more
// second; the timeline goes to the log.
func (w *world) fault(t *testing.T, probes []probe, paths [][2]string, apply func() error, hold time.Duration, heal func() error) *faultRun {
	t.Helper()
	w = w.in(t)
	w.steady("steady before the fault", time.Minute, false)
	r := &faultRun{w: w, routers: w.routers()}
	r.watch = w.startWatch(probes, paths)
	defer r.watch.stop()
	time.Sleep(time.Second)
	r.mark = time.Now()
	if err := apply(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(hold)
	r.healed = time.Now()
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			r.watch.log(t, r.mark, "timeline")
		}
	})
	w.steady("steady after the fault", 90*time.Second, false)
	r.recovered = time.Now()
	time.Sleep(time.Second)
	return r
}

// saw fails the test unless key took a value ok between the fault and a
// second after everything was steady again.
func (r *faultRun) saw(t *testing.T, key string, ok func(string) bool) {
	t.Helper()
	if at, _, found := r.watch.first(key, r.mark, ok); !found || at.After(r.recovered.Add(time.Second)) {
		t.Errorf("%s never showed what was expected during the fault: %v", key, r.watch.values(key, r.mark, r.recovered))
	}
}

// sawFailure fails the test unless a new connection along a path failed
// during the fault.
func (r *faultRun) sawFailure(t *testing.T, path string) {
	t.Helper()
	r.saw(t, path, is("fails"))
}

// untouched fails the test unless key kept value want from a second
// before the fault until a second after everything was steady again.
func (r *faultRun) untouched(t *testing.T, key, want string) {
	t.Helper()
	if v := r.watch.values(key, r.mark.Add(-time.Second), r.recovered.Add(time.Second)); len(v) != 1 || v[0] != want {
		t.Errorf("%s: %v during the fault, want %s throughout", key, v, want)
	}
}

// report logs the timeline, then what the link's status said and when
// (from the fault's start), and the recovery after the heal: the link
// Ready, the first new connection answered along each path, every link,
// listener and path steady.
func (r *faultRun) report(t *testing.T, link string, paths ...string) {
	t.Helper()
	r.watch.log(t, r.mark, "timeline")
	down, why, _ := r.watch.first(link, r.mark, not("Ready"))
	if down.After(r.recovered) {
		down, why = time.Time{}, ""
	}
	up, _, _ := r.watch.first(link, maxTime(r.healed, down), is("Ready"))
	var b strings.Builder
	for _, p := range paths {
		failed, _, _ := r.watch.first(p, r.mark, is("fails"))
		ok, _, _ := r.watch.first(p, maxTime(r.healed, failed), is("ok"))
		fmt.Fprintf(&b, "; %s: failing %s after the fault, answered %s after the heal", p, since(r.mark, failed), since(r.healed, ok))
	}
	t.Logf("%s %s after the fault%s; healed at %s; after the heal: link Ready %s, links, listeners and every path steady %s%s",
		link, orNot(since(r.mark, down)), quoted(why), since(r.mark, r.healed), since(r.healed, up), since(r.healed, r.recovered), b.String())
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func orNot(s string) string {
	if s == "-" {
		return "never left Ready"
	}
	return "left Ready " + s
}

func quoted(why string) string {
	if why == "" {
		return ""
	}
	return " (" + why + ")"
}
