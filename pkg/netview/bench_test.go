package netview

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/management"
)

// cpuTime is the CPU time this process has used (user and system).
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		b.Fatal(err)
	}
	// fields after the command name (which may hold spaces): state is 3rd
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100
}

// waitView waits up to limit for cond on o's view, looking when the set
// says a view changed (not polling: the CPU measured is the observer's).
func waitView(b *testing.B, set *Set, o *Observer, limit time.Duration, what string, cond func(*View) bool) {
	b.Helper()
	changed := make(chan struct{}, 1)
	defer set.Watch(func(string) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})()
	deadline := time.After(limit)
	for {
		if v := o.View(); v != nil && cond(v) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			b.Fatalf("%s: not within %v", what, limit)
		}
	}
}

// manage connects to site's router management.
func manage(b *testing.B, site *routertest.Site) *management.Client {
	b.Helper()
	cfg, err := live.ManagementTLS(site.Dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := management.Dial(ctx, "127.0.0.1:"+strconv.Itoa(site.Management), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkRemoteConnector measures, with two real routers linked (west
// has a listener for hello, east has services other connectors), the time
// from a tcpConnector for hello created in east's router to west's view
// saying that west's listener accepts connections (what its Listener's
// hasMatchingConnector follows), and the CPU this process (west's
// observer) spent per change, with 0 and 2,500 other services in east.
// Each op is 20 connectors created and removed; the median and CPU per
// change (created or removed) are reported, in all and over what the idle
// network costs (measured for 20 s before).
func BenchmarkRemoteConnector(b *testing.B) {
	for _, services := range []int{0, 2500} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			echo := routertest.EchoServer(b, nil)
			others := map[string]int{}
			for i := range services {
				others[fmt.Sprintf("svc-%04d", i)] = echo
			}
			east := &routertest.Site{Name: "east", ID: "e0e0e0e0-1111-4222-8333-444444444444", InterRouter: routertest.FreePort(b), Connectors: others}
			routertest.StartSite(b, east)
			west := &routertest.Site{Name: "west", ID: "0a0a0a0a-5555-4666-8777-888888888888", Links: []int{east.InterRouter},
				Listeners: map[string]int{"hello": routertest.FreePort(b)}}
			routertest.StartSite(b, west)
			var set Set
			o := set.Start(west.Dir, west.Management, nil)
			b.Cleanup(o.Close)
			waitView(b, &set, o, 2*time.Minute, "east's services in west's view", func(v *View) bool {
				return len(v.Sites) == 2 && len(v.Connectors) == services
			})
			mc := manage(b, east)
			ctx := context.Background()
			up := func(want bool) func(*View) bool {
				return func(v *View) bool { return v.ListenerUp["listener/hello"] == want && v.Connectors["hello"] == want }
			}
			// what following the idle network costs, taken off the CPU
			// of the changes
			i0, it0 := cpuTime(b), time.Now()
			time.Sleep(20 * time.Second)
			idle := float64(cpuTime(b)-i0) / float64(time.Since(it0))
			var times []time.Duration
			var cpu, wall time.Duration
			changes := 0
			for b.Loop() {
				for range 20 {
					c0 := cpuTime(b)
					start := time.Now()
					if _, err := mc.Create(ctx, management.TypeName("tcpConnector"), "connector/hello@127.0.0.1",
						map[string]any{"host": "127.0.0.1", "port": strconv.Itoa(echo), "address": "hello"}); err != nil {
						b.Fatal(err)
					}
					waitView(b, &set, o, 30*time.Second, "matched", up(true))
					times = append(times, time.Since(start))
					if err := mc.Delete(ctx, management.TypeName("tcpConnector"), "connector/hello@127.0.0.1"); err != nil {
						b.Fatal(err)
					}
					waitView(b, &set, o, 30*time.Second, "unmatched", up(false))
					time.Sleep(1500 * time.Millisecond) // the follow-up reads of the listeners, counted
					cpu += cpuTime(b) - c0
					wall += time.Since(start)
					changes += 2
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(times[len(times)*9/10].Microseconds())/1000, "p90-ms")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(changes), "cpu-ms/change")
			b.ReportMetric((float64(cpu)-idle*float64(wall))/1e6/float64(changes), "cpu-ms/change-over-idle")
			b.ReportMetric(100*idle, "idle-%core")
		})
	}
}

// BenchmarkIdleNetwork measures the CPU this process spends following an
// idle network of 10 real routers linked in a star (every site a
// listener and a connector), with an observer per site as the daemon has
// one per namespace (all 10 sites on this host; IDLE_OBSERVERS=1 for one
// site here and nine elsewhere): over 60 s (IDLE_SECONDS), once every
// view holds the 10 sites. What the routers spend is reported too (all 10
// together).
func BenchmarkIdleNetwork(b *testing.B) {
	const n = 10
	seconds := 60
	if s, err := strconv.Atoi(os.Getenv("IDLE_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	echo := routertest.EchoServer(b, nil)
	var sites []*routertest.Site
	hub := routertest.FreePort(b)
	for i := range n {
		s := &routertest.Site{Name: fmt.Sprintf("site%d", i), ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i+1, i+1),
			Listeners: map[string]int{fmt.Sprintf("svc-%d", i): routertest.FreePort(b)}, Connectors: map[string]int{fmt.Sprintf("svc-%d", (i+1)%n): echo}}
		if i == 0 {
			s.InterRouter = hub
		} else {
			s.Links = []int{hub}
		}
		routertest.StartSite(b, s)
		sites = append(sites, s)
	}
	observed := n
	if s, err := strconv.Atoi(os.Getenv("IDLE_OBSERVERS")); err == nil && s > 0 && s <= n {
		observed = s
	}
	var set Set
	var obs []*Observer
	for _, s := range sites[:observed] {
		o := set.Start(s.Dir, s.Management, nil)
		b.Cleanup(o.Close)
		obs = append(obs, o)
	}
	for i, o := range obs {
		waitView(b, &set, o, 2*time.Minute, fmt.Sprintf("site%d's view of the network", i), func(v *View) bool {
			return len(v.Sites) == n && len(v.Errs) == 0 && v.ListenerUp[fmt.Sprintf("listener/svc-%d", i)]
		})
	}
	routersCPU := func() time.Duration {
		var sum time.Duration
		for _, s := range sites {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.Router.Cmd.Process.Pid))
			if err != nil {
				b.Fatal(err)
			}
			f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			sum += time.Duration(u+st) * 10 * time.Millisecond
		}
		return sum
	}
	for b.Loop() {
		if path := os.Getenv("IDLE_PROFILE"); path != "" {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		out0 := 0
		for _, s := range sites {
			out0 += len(s.Router.Output())
		}
		d0 := dials.Load()
		c0, r0, t0 := cpuTime(b), routersCPU(), time.Now()
		time.Sleep(time.Duration(seconds) * time.Second)
		wall := time.Since(t0)
		b.ReportMetric(100*float64(cpuTime(b)-c0)/float64(wall), "observers-%core")
		b.ReportMetric(100*float64(routersCPU()-r0)/float64(wall), "routers-%core")
		out1 := 0
		for _, s := range sites {
			out1 += len(s.Router.Output())
		}
		b.ReportMetric(float64(out1-out0)/wall.Seconds(), "router-log-B/s")
		if d := dials.Load() - d0; d > 0 {
			b.Errorf("%d observers connected again while the network was idle", d)
		}
	}
	for i, o := range obs {
		if v := o.View(); len(v.Sites) != n || len(v.Errs) > 0 {
			b.Errorf("site%d's view after the idle time: %d sites, %v", i, len(v.Sites), v.Errs)
		}
	}
}
