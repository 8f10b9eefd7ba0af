package hosttest_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/hosttest"
)

// Benchmarks across simulated hosts, with real routers; run them with
// -benchtime Nx (each op is slow):
//
//	go test -tags remote,exclude_graphdriver_btrfs,containers_image_openpgp -run '^$' \
//	    -bench Hosts -benchtime 5x ./internal/hosttest/

// median is the middle of ds, in milliseconds.
func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// BenchmarkHostsLinkToTraffic: from B's link file for A's address landing
// in B's input (renamed into place) to the first byte echoed from A's
// service through B's Listener, across the simulated network. Between ops
// the link is removed and gone (the Listener unmatched, new connections
// refused).
func BenchmarkHostsLinkToTraffic(b *testing.B) {
	w := newWorld(b, []string{"a", "b"}, options{accept: []string{"a"}})
	hb := w.hosts["b"]
	data := w.linkFile("a", w.hosts["a"].Addr)
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := hb.Write(hosttest.NS, "link-a.yaml", string(data)); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := hb.RoundTrip(ctx, hosttest.Loopback(port("a")), 500*time.Millisecond)
		cancel()
		if err != nil {
			b.Fatalf("no traffic through the link: %v", err)
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		w.unlink("b", "a")
		eventually(b, time.Minute, "the link gone", func() bool {
			m := hb.Status(hosttest.NS, "Listener", key("a"))
			pctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			return w.linkStatus("b", "a") == nil && m != nil && m.HasMatchingConnector != nil && !*m.HasMatchingConnector &&
				hb.Ping(pctx, hosttest.Loopback(port("a"))) != nil
		})
		b.StartTimer()
	}
	b.ReportMetric(median(times), "median-ms")
}

// BenchmarkHostsPartitionHeal: A and B partitioned, then healed; the time
// from the heal to the first byte echoed again from A's service through
// B's link (a new connection tried every 50 ms, each given 500 ms), and
// to B's Link Ready again (0 when it never left Ready).
//
// hold=10s is below the routers' idle timeout (16 s): the link's
// connection survives the partition. Beyond it the router's connector
// tries again (2 s after losing the connection, 5 s after a failed try),
// each try a TCP connect the kernel retries for about two minutes, so the
// heal waits for the next SYN of the try under way: that depends on when
// the heal falls, so hold=30-90s holds the partition 30, 45, 60, 75 and
// 90 s in turn (run it 5x) and reports the median and the longest. With
// syn-retries=3, B's host has net.ipv4.tcp_syn_retries=3 (Linux's default
// is 6), which ends a try after about 20 s.
func BenchmarkHostsPartitionHeal(b *testing.B) {
	for _, c := range []struct {
		name       string
		holds      []time.Duration
		synRetries string
	}{
		{"hold=10s", []time.Duration{10 * time.Second}, ""},
		{"hold=30-90s", []time.Duration{30 * time.Second, 45 * time.Second, 60 * time.Second, 75 * time.Second, 90 * time.Second}, ""},
		{"hold=30-90s/syn-retries=3", []time.Duration{30 * time.Second, 45 * time.Second, 60 * time.Second, 75 * time.Second, 90 * time.Second}, "3"},
		{"hold=120s", []time.Duration{120 * time.Second}, ""},
		{"hold=120s/syn-retries=3", []time.Duration{120 * time.Second}, "3"},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := newWorld(b, []string{"a", "b"}, options{links: [][2]string{{"b", "a"}}})
			a, hb := w.hosts["a"], w.hosts["b"]
			if c.synRetries != "" {
				if err := hb.Sysctl("net.ipv4.tcp_syn_retries", c.synRetries); err != nil {
					b.Fatal(err)
				}
			}
			var traffic, ready []time.Duration
			for i := 0; b.Loop(); i++ {
				hold := c.holds[i%len(c.holds)]
				b.StopTimer()
				w.steady("steady", 2*time.Minute, false)
				if err := a.Partition(hb); err != nil {
					b.Fatal(err)
				}
				time.Sleep(hold)
				b.StartTimer()
				healed := time.Now()
				if err := a.Heal(); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				// B's Link Ready: at once when it never left Ready
				linkReady := make(chan time.Duration, 1)
				go func() {
					for ctx.Err() == nil {
						if s := w.linkStatus("b", "a"); s != nil && s.Status == "Ready" {
							linkReady <- time.Since(healed)
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
					linkReady <- -1
				}()
				at, err := hb.RoundTrip(ctx, hosttest.Loopback(port("a")), 500*time.Millisecond)
				if err != nil {
					b.Fatalf("no traffic after the heal: %v", err)
				}
				traffic = append(traffic, at.Sub(healed))
				d := <-linkReady
				cancel()
				if d < 0 {
					b.Fatal("B's link not Ready after the heal")
				}
				ready = append(ready, d)
				b.Logf("held %v: after the heal, first byte %v, link Ready %v", hold, at.Sub(healed).Round(10*time.Millisecond), d.Round(10*time.Millisecond))
			}
			b.ReportMetric(median(traffic), "first-byte-median-ms")
			b.ReportMetric(float64(slices.Max(traffic).Microseconds())/1000, "first-byte-max-ms")
			b.ReportMetric(median(ready), "link-ready-median-ms")
		})
	}
}

// BenchmarkHostsThroughput: bytes from B to a sink on A, on one and on 8
// parallel TCP streams, through B's Listener, the link and A's Connector
// (link/…), and directly between the two namespaces (direct/…), 32 MiB a
// stream per op. The router's dataConnectionCount (the Site's
// router-data-connection-count setting; unset, the router's "auto") is
// reported for the link runs.
func BenchmarkHostsThroughput(b *testing.B) {
	w := newWorld(b, []string{"a", "b"}, options{links: [][2]string{{"b", "a"}}})
	a, hb := w.hosts["a"], w.hosts["b"]
	sink := a.SinkServer(b)
	// the sink behind A's Connector "sink", B's Listener for it
	const sinkPort = 9100
	for _, name := range []string{"a", "b"} {
		s := w.spec(name, nil)
		if name == "a" {
			s.Connectors["sink"] = sink
		} else {
			s.Listeners["sink"] = sinkPort
		}
		if err := w.hosts[name].Write(hosttest.NS, "site.yaml", s.YAML()); err != nil {
			b.Fatal(err)
		}
	}
	eventually(b, time.Minute, "B's sink listener matched", func() bool {
		m := hb.Status(hosttest.NS, "Listener", "sink")
		return m != nil && m.HasMatchingConnector != nil && *m.HasMatchingConnector
	})
	// the setting, and the inter-router-data connections it gave
	dcc := "?"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if rs, err := hb.Query(ctx, hosttest.NS, "router"); err == nil && len(rs) == 1 {
		dcc = fmt.Sprint(rs[0]["dataConnectionCount"])
	}
	if cs, err := hb.Query(ctx, hosttest.NS, "connection"); err == nil {
		n := 0
		for _, c := range cs {
			if c["role"] == "inter-router-data" {
				n++
			}
		}
		dcc += fmt.Sprintf(" (%d inter-router-data connections)", n)
	}
	cancel()
	const size = 32 << 20
	for _, path := range []struct{ name, addr string }{
		{"direct", net.JoinHostPort(a.Addr, strconv.Itoa(sink))},
		{"link", hosttest.Loopback(sinkPort)},
	} {
		for _, streams := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/streams=%d", path.name, streams), func(b *testing.B) {
				b.SetBytes(int64(size * streams))
				for b.Loop() {
					var wg sync.WaitGroup
					errs := make(chan error, streams)
					for range streams {
						wg.Add(1)
						go func() {
							defer wg.Done()
							ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
							defer cancel()
							errs <- hb.Send(ctx, path.addr, size)
						}()
					}
					wg.Wait()
					close(errs)
					for err := range errs {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				if path.name == "link" {
					b.Logf("B's router dataConnectionCount: %s", dcc)
				}
			})
		}
	}
}
