package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/scale"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
)

// BenchmarkChangeToStatus measures, with the daemon running on real
// inotify, the latency from a Listener file landing (written elsewhere,
// renamed in) to its status file written with the new content: 1000
// changes per op, p50 and p99 reported. The 5 ms quiet period is part of
// the latency, as in production.
func BenchmarkChangeToStatus(b *testing.B) {
	home := b.TempDir()
	res := filepath.Join(namespace.Root(home), "lat", "input", "resources")
	fixture.WriteFile(b, filepath.Join(res, "site.yaml"), fixture.SiteYAML("lat"))
	startDaemon(b, home, nil)
	statusDir := filepath.Join(namespace.Root(home), "lat", "runtime", "resources")
	w, err := fsnotify.NewWatcher()
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(statusDir); err != nil {
		b.Fatal(err)
	}
	target := filepath.Join(statusDir, "Listener-l.yaml")
	var lat []time.Duration
	for b.Loop() {
		for i := range 1000 {
			port := 10000 + len(lat)%50000
			want := fmt.Sprintf("port: %d\n", port)
			tmp := filepath.Join(res, ".l.yaml.tmp") // editor-style temporary file
			os.WriteFile(tmp, []byte(fixture.ListenerYAML("l", port)), 0o644)
			start := time.Now()
			if err := os.Rename(tmp, filepath.Join(res, "l.yaml")); err != nil {
				b.Fatal(err)
			}
			for {
				select {
				case ev := <-w.Events:
					if ev.Name != target {
						continue
					}
					data, _ := os.ReadFile(target)
					if !strings.Contains(string(data), want) {
						continue
					}
				case err := <-w.Errors:
					b.Fatal(err)
				case <-time.After(10 * time.Second):
					b.Fatalf("change %d: no status", i)
				}
				break
			}
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkSiteToRouter measures, per platform, the time from a Site file
// landing (renamed into place) in a new namespace to its router running
// as the engine reports it: a container running (docker, podman) or the
// unit active (systemd). The stand-in router image/binary is used, so the
// figure is the controller's and the engine's, not the router's start-up.
func BenchmarkSiteToRouter(b *testing.B) {
	for _, platform := range []string{"docker", "podman", "linux"} {
		b.Run(platform, func(b *testing.B) {
			rt := enginetest.Real(b, platform)
			home := b.TempDir()
			startDaemon(b, home, func(o *Options) {
				o.Platform = platform
				o.Runtimes = map[string]runtime.Runtime{platform: rt}
			})
			var times []time.Duration
			for b.Loop() {
				ns := fixture.Namespace("bench")
				res := filepath.Join(namespace.Root(home), ns, "input", "resources")
				os.MkdirAll(res, 0o755)
				tmp := filepath.Join(res, ".site.yaml.tmp")
				os.WriteFile(tmp, []byte(fixture.SiteYAML("s")), 0o644)
				start := time.Now()
				os.Rename(tmp, filepath.Join(res, "site.yaml"))
				for {
					st, err := rt.State(context.Background(), ns, fixture.NSDir(home, ns))
					if err == nil && st.Running {
						break
					}
					if time.Since(start) > 30*time.Second {
						b.Fatalf("router of %s never ran", ns)
					}
					time.Sleep(2 * time.Millisecond)
				}
				times = append(times, time.Since(start))
				b.StopTimer()
				rt.Remove(context.Background(), ns, fixture.NSDir(home, ns))
				os.RemoveAll(filepath.Join(namespace.Root(home), ns))
				b.StartTimer()
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
		})
	}
}

// BenchmarkListenerToRouter measures, with the real router managed live,
// the latency from a Listener file landing (renamed into place) to a
// connection through it served: echoed by a backend behind a Connector
// already in the site. It runs with a background of 0, 1000 and 2500
// Listener+Connector pairs in the same namespace (bg=N), 20 changes per op
// (new listeners and port changes, alternating); p50 and p99 reported. The
// 5 ms quiet period is included.
func BenchmarkListenerToRouter(b *testing.B) {
	for _, platform := range livePlatforms {
		for _, bg := range []int{0, 1000, 2500} {
			b.Run(fmt.Sprintf("%s/bg=%d", platform, bg), func(b *testing.B) { benchmarkListenerToRouter(b, platform, bg) })
		}
	}
}

// BenchmarkListenerToRouterManyNamespaces is ListenerToRouter in one of
// 100 namespaces of 100 resources each (a Site and 49 Listener+Connector
// pairs, their routers all running), on linux: 100 routers under the
// test's systemd user manager.
func BenchmarkListenerToRouterManyNamespaces(b *testing.B) {
	b.Run("linux", func(b *testing.B) { benchmarkListenerToRouterIn(b, "linux", 49, 99) })
}

func benchmarkListenerToRouter(b *testing.B, platform string, background int) {
	benchmarkListenerToRouterIn(b, platform, background, 0)
}

// benchmarkListenerToRouterIn measures in a namespace of background pairs
// beside others namespaces of a Site and background pairs each.
func benchmarkListenerToRouterIn(b *testing.B, platform string, background, others int) {
	var otherNS []string
	l := startLiveSiteWith(b, platform, nil, func(home, ns string) {
		if err := scale.Pairs(filepath.Join(namespace.Root(home), ns, "input", "resources"), background, 20000); err != nil {
			b.Fatal(err)
		}
		// removed after the daemon stops
		rt := enginetest.Real(b, platform)
		for k := range others {
			other := fixture.Namespace(fmt.Sprintf("o%d", k))
			otherNS = append(otherNS, other)
			b.Cleanup(func() { rt.Remove(context.Background(), other, fixture.NSDir(home, other)) })
		}
	})
	for k, other := range otherNS {
		res := filepath.Join(namespace.Root(l.home), other, "input", "resources")
		if err := scale.Pairs(res, background, 21000+(k+1)*(background+1)); err != nil {
			b.Fatal(err)
		}
		fixture.WriteFile(b, filepath.Join(res, "site.yaml"), fixture.SiteYAML("s"))
	}
	for _, other := range otherNS {
		fixture.EventuallyWithin(b, 10*time.Minute, "Site of "+other+" ready", fixture.SiteReady(l.home, other, "s"))
	}
	if len(otherNS) > 0 {
		// a router is looked at every 3 s for its first 30 s: measure
		// the steady state, not 99 routers settling
		time.Sleep(30 * time.Second)
	}
	echo := routertest.EchoServer(b, nil)
	fixture.WriteFile(b, filepath.Join(l.res, "echo.yaml"), fixture.ConnectorYAML("echo", "echo", echo))
	if background > 0 {
		waitConfigured(b, l, background)
	}
	// files written in the last two seconds are read by every pass
	// (their times could hide another change): measure a settled site
	time.Sleep(2 * time.Second)
	written := func() float64 { return testutil.ToFloat64(l.daemon().metrics.written.WithLabelValues(l.ns)) }
	ops := func() float64 { return testutil.ToFloat64(l.daemon().metrics.routerOps.WithLabelValues(l.ns)) }
	passes := func() float64 { return testutil.ToFloat64(l.daemon().metrics.reconciles.WithLabelValues(l.ns)) }
	opTime := routerOpTime(b, l)
	// the passes' time (every namespace's: with others, an upper bound)
	histogram := func(h prometheus.Observer) func() (sum, count float64) {
		return func() (float64, float64) { return histStats(b, h) }
	}
	passTime, routerTime := histogram(l.daemon().metrics.duration), histogram(l.daemon().metrics.routerTime)
	phases := map[string]func() (float64, float64){}
	phase0 := map[string][2]float64{}
	for _, p := range []string{"read", "render", "apply", "status"} {
		phases[p] = histogram(l.daemon().metrics.phases.WithLabelValues(p))
		s, c := phases[p]()
		phase0[p] = [2]float64{s, c}
	}
	w0, o0, p0 := written(), ops(), passes()
	ps0, pc0 := passTime()
	rs0, rc0 := routerTime()
	stop := fixture.ProfileLoop(b)
	defer stop()
	var lat []time.Duration
	for b.Loop() {
		for i := range 20 {
			lat = append(lat, landListener(b, l, fmt.Sprintf("b%d", i/2), 30*time.Second))
		}
	}
	slices.Sort(lat)
	b.Logf("slowest: %v", lat[max(0, len(lat)-5):])
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric((written()-w0)/float64(len(lat)), "files/change")
	b.ReportMetric((ops()-o0)/float64(len(lat)), "router-ops/change")
	b.ReportMetric((passes()-p0)/float64(len(lat)), "passes/change")
	b.ReportMetric(opTime, "router-op-ms")
	if ps, pc := passTime(); pc > pc0 && others == 0 {
		b.ReportMetric(1000*(ps-ps0)/(pc-pc0), "pass-ms")
	}
	if rs, rc := routerTime(); rc > rc0 && others == 0 {
		b.ReportMetric(1000*(rs-rs0)/(rc-rc0), "router-ops-ms/pass")
	}
	for p, f := range phases {
		if s, c := f(); c > phase0[p][1] && others == 0 {
			b.ReportMetric(1000*(s-phase0[p][0])/(c-phase0[p][1]), p+"-ms")
		}
	}
}

// BenchmarkBigSiteFirstChanges measures, per platform with the real
// router, the first 30 new Listeners of a site of 2,500 Listener+Connector
// pairs, from the moment every Listener says Configured (nothing else
// asked of the router before): file landing (rename) → a connection
// through it served. Reported: the first change, p50, p99 and the
// slowest, and the router's own time to create a tcpListener measured
// after them in the same run (the floor: a new Listener is one create);
// logged, where a change's pass spent its time. Whatever the first change could
// wait for (the network observer's first look, the session's first full
// read of the router) must not hold it up.
func BenchmarkBigSiteFirstChanges(b *testing.B) {
	for _, platform := range livePlatforms {
		b.Run(platform, func(b *testing.B) {
			var first, p50, p99, slowest, over, opms, passes, patched []float64
			for b.Loop() {
				l := startLiveSiteWith(b, platform, nil, func(home, ns string) {
					if err := scale.Pairs(filepath.Join(namespace.Root(home), ns, "input", "resources"), 2500, 20000); err != nil {
						b.Fatal(err)
					}
				})
				echo := routertest.EchoServer(b, nil)
				fixture.WriteFile(b, filepath.Join(l.res, "echo.yaml"), fixture.ConnectorYAML("echo", "echo", echo))
				waitConfigured(b, l, 2500)
				count := func(c *prometheus.CounterVec) float64 { return testutil.ToFloat64(c.WithLabelValues(l.ns)) }
				m := l.daemon().metrics
				passes0, patched0 := count(m.reconciles), count(m.patched)
				phase := func() []float64 {
					var out []float64
					for _, p := range []string{"read", "render", "apply", "status"} {
						out = append(out, histSum(b, m.phases.WithLabelValues(p)))
					}
					return append(out, histSum(b, m.duration), histSum(b, m.routerTime))
				}
				before := phase()
				var lat, beyond []time.Duration
				stop := fixture.ProfileLoop(b)
				for i := range 30 {
					router, done := histSum(b, m.routerTime), count(m.reconciles)
					d := landListener(b, l, fmt.Sprintf("first%d", i), 60*time.Second)
					lat = append(lat, d)
					// the pass is measured when it ends, which can be just
					// after the connection went through
					for wait := time.Now(); count(m.reconciles) == done && time.Since(wait) < time.Second; {
						time.Sleep(time.Millisecond)
					}
					// what the change took beyond the router's own time for
					// its operations (they vary from one create to the next)
					beyond = append(beyond, d-time.Duration((histSum(b, m.routerTime)-router)*float64(time.Second)))
				}
				stop()
				passes = append(passes, (count(m.reconciles)-passes0)/30)
				patched = append(patched, (count(m.patched)-patched0)/30)
				// where a change's time went, as the daemon measured it
				after := phase()
				mean := func(i int) float64 { return (after[i] - before[i]) * 1000 / 30 }
				b.Logf("%s: a change's pass %.1f ms: read %.1f, render %.1f, apply %.1f (the router's operations %.1f), status %.1f (means)",
					platform, mean(4), mean(0), mean(1), mean(2), mean(5), mean(3))
				ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
				order := make([]string, len(lat))
				for i, d := range lat {
					order[i] = strconv.FormatFloat(ms(d), 'f', 0, 64)
				}
				b.Logf("%s: the 30 changes in order (ms): %s", platform, strings.Join(order, " "))
				for i, d := range beyond {
					order[i] = strconv.FormatFloat(ms(d), 'f', 0, 64)
				}
				b.Logf("%s: each beyond the router's own time for its operations (ms): %s", platform, strings.Join(order, " "))
				slices.Sort(beyond)
				over = append(over, ms(beyond[len(beyond)-1]))
				first = append(first, ms(lat[0]))
				slices.Sort(lat)
				p50, p99, slowest = append(p50, ms(lat[len(lat)/2])), append(p99, ms(lat[len(lat)*99/100])), append(slowest, ms(lat[len(lat)-1]))
				// a new Listener is one create: the router's floor
				creates, deletes := routerOps(b, l)
				opms = append(opms, median(creates))
				b.Logf("%s: the router's own create %.1f ms, delete %.1f ms (medians of 10)", platform, median(creates), median(deletes))
			}
			med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
			b.ReportMetric(med(first), "first-ms")
			b.ReportMetric(med(p50), "p50-ms")
			b.ReportMetric(med(p99), "p99-ms")
			b.ReportMetric(med(slowest), "max-ms")
			b.ReportMetric(med(over), "max-beyond-router-ms")
			b.ReportMetric(med(opms), "router-create-ms")
			b.ReportMetric(med(passes), "passes/change")
			b.ReportMetric(med(patched), "patched/change")
		})
	}
}

// landListener renames a Listener file name (routing key echo, a free
// port) into the site's input and returns the time until a connection
// through it is served, failing the benchmark after limit.
func landListener(b *testing.B, l *liveSite, name string, limit time.Duration) time.Duration {
	port := routertest.FreePort(b)
	tmp := filepath.Join(l.res, ".bench.yaml.tmp")
	os.WriteFile(tmp, []byte(fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: %s\nspec:\n  routingKey: echo\n  host: 127.0.0.1\n  port: %d\n", name, port)), 0o644)
	start := time.Now()
	os.Rename(tmp, filepath.Join(l.res, name+".yaml"))
	for !echoes(port) {
		if time.Since(start) > limit {
			b.Fatalf("listener %s:%d never served", name, port)
		}
		time.Sleep(500 * time.Microsecond)
	}
	return time.Since(start)
}

// routerOpTime returns the median time the router takes to create and
// to delete a tcpListener over management, with whatever it already has:
// the router's share of a change.
func routerOpTime(b *testing.B, l *liveSite) float64 {
	creates, deletes := routerOps(b, l)
	return median(append(creates, deletes...))
}

// routerOps returns the times the router took to create ten tcpListeners
// over management, and to delete them.
func routerOps(b *testing.B, l *liveSite) (creates, deletes []time.Duration) {
	for i := range 10 {
		name := fmt.Sprintf("probe-%d", i)
		start := time.Now()
		if _, err := l.mgmt.Create(context.Background(), management.TypeName("tcpListener"), name,
			map[string]any{"host": "127.0.0.1", "port": strconv.Itoa(routertest.FreePort(b)), "address": "probe"}); err != nil {
			b.Fatal(err)
		}
		creates = append(creates, time.Since(start))
		start = time.Now()
		if err := l.mgmt.Delete(context.Background(), management.TypeName("tcpListener"), name); err != nil {
			b.Fatal(err)
		}
		deletes = append(deletes, time.Since(start))
	}
	return creates, deletes
}

// median is the median of times, in milliseconds.
func median(times []time.Duration) float64 {
	slices.Sort(times)
	return float64(times[len(times)/2].Microseconds()) / 1000
}

// accepts tells whether 127.0.0.1:port accepts a connection.
func accepts(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// echoes tells whether a line sent through 127.0.0.1:port comes back.
func echoes(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		return false
	}
	buf := make([]byte, 5)
	_, err = io.ReadFull(conn, buf)
	return err == nil && string(buf) == "ping\n"
}

// waitConfigured waits until n Listener status files say Configured (the
// router has them) and returns how long it took.
func waitConfigured(t testing.TB, l *liveSite, n int) time.Duration {
	t.Helper()
	start := time.Now()
	dir := filepath.Join(namespace.Root(l.home), l.ns, "runtime", "resources")
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "Listener-bg*.yaml"))
		ok := 0
		for _, f := range files {
			if st, err := status.Read(f); err == nil {
				if c := st.Condition(status.Configured); c != nil && c.Status == "True" {
					ok++
				}
			}
		}
		if ok >= n {
			return time.Since(start)
		}
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("%d of %d Listeners configured after 5 minutes", ok, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// BenchmarkLinkToTraffic measures, per platform with the real router, the
// time from a link file landing in a site's input (renamed into place) to
// the first byte echoed through that link: west's Listener reaching
// east's Connector. Each op is 20 links made and unmade; the median is
// reported.
func BenchmarkLinkToTraffic(b *testing.B) {
	for _, platform := range livePlatforms {
		b.Run(platform, func(b *testing.B) {
			n := startNetwork(b, platform)
			echo := routertest.EchoServer(b, nil)
			east := n.site("east", "", accessAt("east-access", "inter-router"), fixture.ConnectorYAML("backend", "hello", echo))
			port := routertest.FreePort(b)
			west := n.site("west", "", fixture.ListenerYAML("hello", port))
			data, err := os.ReadFile(n.link(east, "east-access", west, ".probe.yaml"))
			if err != nil {
				b.Fatal(err)
			}
			os.Remove(n.res(west, ".probe.yaml")) // a hidden file: never read
			var times []time.Duration
			for b.Loop() {
				for range 20 {
					tmp := n.res(west, ".link.yaml.tmp")
					os.WriteFile(tmp, data, 0o600)
					start := time.Now()
					os.Rename(tmp, n.res(west, "link.yaml"))
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					err := routertest.RoundTrip(ctx, port, nil)
					cancel()
					if err != nil {
						b.Fatalf("no traffic through the link: %v", err)
					}
					times = append(times, time.Since(start))
					b.StopTimer()
					// settled, then unlinked: no status lag or link left
					// over can make the next round faster than it is
					fixture.Eventually(b, "matched", func() bool {
						s := n.status(west, "Listener", "hello")
						return s != nil && s.HasMatchingConnector != nil && *s.HasMatchingConnector
					})
					os.Remove(n.res(west, "link.yaml"))
					fixture.Eventually(b, "link gone", func() bool {
						s := n.status(west, "Listener", "hello")
						probe, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
						defer cancel()
						return s != nil && s.HasMatchingConnector != nil && !*s.HasMatchingConnector && routertest.RoundTrip(probe, port, nil) != nil
					})
					b.StartTimer()
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
		})
	}
}

// BenchmarkRemoteConnectorToMatched measures, per platform with the real
// router, the time from a Connector file landing in one site to the
// status of a Listener with its routing key in a linked site saying
// hasMatchingConnector: true (the router's answer, through the network,
// then the status pass). 20 per op; the median is reported.
func BenchmarkRemoteConnectorToMatched(b *testing.B) {
	for _, platform := range livePlatforms {
		b.Run(platform, func(b *testing.B) {
			n := startNetwork(b, platform)
			echo := routertest.EchoServer(b, nil)
			east := n.site("east", "", accessAt("east-access", "inter-router"))
			port := routertest.FreePort(b)
			west := n.site("west", "", fixture.ListenerYAML("hello", port))
			n.link(east, "east-access", west, "link.yaml")
			fixture.Eventually(b, "linked", func() bool { return ready(n.status(west, "Link", "link-east-access")) })
			matched := func(want bool) func() bool {
				return func() bool {
					s := n.status(west, "Listener", "hello")
					return s != nil && s.HasMatchingConnector != nil && *s.HasMatchingConnector == want
				}
			}
			var times []time.Duration
			for b.Loop() {
				for range 20 {
					tmp := n.res(east, ".c.yaml.tmp")
					os.WriteFile(tmp, []byte(fixture.ConnectorYAML("backend", "hello", echo)), 0o644)
					start := time.Now()
					os.Rename(tmp, n.res(east, "c.yaml"))
					for !matched(true)() {
						if time.Since(start) > 30*time.Second {
							b.Fatal("never matched")
						}
						time.Sleep(time.Millisecond)
					}
					times = append(times, time.Since(start))
					b.StopTimer()
					os.Remove(n.res(east, "c.yaml"))
					fixture.Eventually(b, "unmatched again", matched(false))
					probe, cancel := context.WithTimeout(context.Background(), time.Second)
					if err := routertest.RoundTrip(probe, port, nil); err == nil {
						b.Fatal("traffic flows without the connector")
					}
					cancel()
					b.StartTimer()
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
		})
	}
}

// BenchmarkTokenToLink measures, with the real router (linux), the time
// from an AccessToken file landing in a site's input to its Link Ready:
// the redemption at the other site's grant server (same daemon, over
// TLS), the answer kept, the link made and reported up by the router.
// Each op is 20 tokens placed and removed; the median is reported.
func BenchmarkTokenToLink(b *testing.B) {
	rt := enginetest.Real(b, "linux")
	home := b.TempDir()
	srv, err := grants.New(grants.Options{Addr: "127.0.0.1:0", Host: "127.0.0.1", Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	n := &network{t: b, home: home, rt: rt}
	b.Cleanup(func() {
		for _, ns := range n.nss {
			rt.Remove(context.Background(), ns, fixture.NSDir(home, ns))
		}
	})
	startDaemon(b, home, func(o *Options) {
		o.Platform = "linux"
		o.Runtimes = map[string]runtime.Runtime{"linux": rt}
		o.Live = true
		o.Grants = srv
	})
	a := n.site("a", "", accessAt("a-access", "inter-router"),
		"apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: many\nspec:\n  redemptionsAllowed: 1000\n  expirationWindow: 1h\n")
	bs := n.site("b", "")
	var g *status.Status
	fixture.Eventually(b, "grant served", func() bool {
		g = n.status(a, "AccessGrant", "many")
		return g != nil && g.Status == status.Ready
	})
	token := tokenYAML("tk", g.URL, g.CA)
	token = strings.Replace(token, "code: abcdefghijkl", "code: "+g.Code, 1)
	var times []time.Duration
	for b.Loop() {
		for range 20 {
			tmp := n.res(bs, ".tk.yaml.tmp")
			os.WriteFile(tmp, []byte(token), 0o600)
			start := time.Now()
			os.Rename(tmp, n.res(bs, "tk.yaml"))
			for !ready(n.status(bs, "Link", "tk")) {
				if time.Since(start) > 30*time.Second {
					b.Fatal("no link from the token")
				}
				time.Sleep(time.Millisecond)
			}
			times = append(times, time.Since(start))
			b.StopTimer()
			os.Remove(n.res(bs, "tk.yaml"))
			fixture.Eventually(b, "link gone with its token", func() bool { return n.status(bs, "Link", "tk") == nil })
			b.StartTimer()
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
}

// BenchmarkBigSiteToConfigured measures, per platform with the real
// router, the time from the Site file landing in a namespace that already
// holds 2500 Listener+Connector pairs to every Listener's status saying
// Configured (the router has it); the management operations sent are
// reported too (none: the router starts with its whole configuration).
func BenchmarkBigSiteToConfigured(b *testing.B) {
	const pairs = 2500
	for _, platform := range livePlatforms {
		b.Run(platform, func(b *testing.B) {
			rt := enginetest.Real(b, platform)
			var times, routerShare []time.Duration
			var ops float64
			for b.Loop() {
				b.StopTimer()
				home := b.TempDir()
				ns := fixture.Namespace("big")
				res := filepath.Join(namespace.Root(home), ns, "input", "resources")
				if err := scale.Pairs(res, pairs, 20000); err != nil {
					b.Fatal(err)
				}
				d := startDaemon(b, home, func(o *Options) {
					o.Platform = platform
					o.Runtimes = map[string]runtime.Runtime{platform: rt}
					o.Live = true
				})
				l := &liveSite{t: b, d: d, home: home, ns: ns, rt: rt, res: res}
				tmp := filepath.Join(res, ".site.yaml.tmp")
				os.WriteFile(tmp, []byte(fixture.SiteYAML("s")), 0o644)
				b.StartTimer()
				start := time.Now()
				os.Rename(tmp, filepath.Join(res, "site.yaml"))
				// the router's share: until it has loaded its whole
				// configuration, it listens on the last Listener's port
				loaded := make(chan time.Duration, 1)
				go func() {
					for !accepts(20000 + pairs - 1) {
						time.Sleep(20 * time.Millisecond)
					}
					loaded <- time.Since(start)
				}()
				waitConfigured(b, l, pairs)
				times = append(times, time.Since(start))
				routerShare = append(routerShare, <-loaded)
				b.StopTimer()
				ops += testutil.ToFloat64(d.metrics.routerOps.WithLabelValues(ns))
				d.stop()
				rt.Remove(context.Background(), ns, fixture.NSDir(home, ns))
				b.StartTimer()
			}
			slices.Sort(times)
			slices.Sort(routerShare)
			b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "median-ms")
			b.ReportMetric(float64(routerShare[len(routerShare)/2].Milliseconds()), "router-loaded-ms")
			b.ReportMetric(ops/float64(len(times)), "router-ops")
		})
	}
}

// BenchmarkContainerToTraffic measures, on docker and podman with the real
// router, the time from a labelled container started (the engine's start
// call returned) to a connection through the site's Listener answered by
// it: the engine's event, the container inspected, a pass, the
// tcpConnector created live. 20 per op, each with a new container while
// none other is selected; the median is reported.
func BenchmarkContainerToTraffic(b *testing.B) {
	for _, platform := range []string{"docker", "podman"} {
		b.Run(platform, func(b *testing.B) {
			backends := enginetest.NewBackends(b, platform)
			l := startLiveSite(b, platform)
			sel := "app=backend,sc-test=" + backends.Network
			fixture.WriteFile(b, filepath.Join(l.res, "backend.yaml"), selectorConnectorYAML("backend", "backend", sel, false))
			port := routertest.FreePort(b)
			fixture.WriteFile(b, filepath.Join(l.res, "listener.yaml"), fixture.ListenerYAML("backend", port))
			fixture.Eventually(b, "nothing selected", func() bool {
				s := fixture.StatusOf(l.home, l.ns, "Connector", "backend")
				return s != nil && s.Message == "no running container matches "+sel
			})
			var times []time.Duration
			round := 0
			for b.Loop() {
				for range 20 {
					round++
					name := fmt.Sprintf("%s-%d", backends.Network, round)
					b.StopTimer()
					backends.Start(enginetest.Backend{Name: name, Labels: map[string]string{"app": "backend", "sc-test": backends.Network}})
					b.StartTimer()
					start := time.Now()
					for whoAnswers(port) != name {
						if time.Since(start) > 30*time.Second {
							b.Fatalf("%s never answered", name)
						}
						time.Sleep(2 * time.Millisecond)
					}
					times = append(times, time.Since(start))
					b.StopTimer()
					backends.Remove(name)
					fixture.Eventually(b, "the container's connector gone", func() bool { return l.entity("tcpConnector", "connector/backend@"+name) == nil })
					b.StartTimer()
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// histStats is the sum and the count of what a histogram observed.
func histStats(b *testing.B, h prometheus.Observer) (sum, count float64) {
	var m dto.Metric
	if err := h.(prometheus.Metric).Write(&m); err != nil {
		b.Fatal(err)
	}
	return m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())
}

// histSum is the sum of what a histogram observed.
func histSum(b *testing.B, h prometheus.Observer) float64 {
	sum, _ := histStats(b, h)
	return sum
}
