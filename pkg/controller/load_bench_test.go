package controller

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/scale"
	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
)

// BenchmarkBigSiteLoad compares, with the real router, the two ways a
// site of 2,500 Listeners and 2,500 Connectors can come up: the router
// started with its whole configuration file (what the controller does),
// until its management answers with every tcpListener; or the router
// started with the Site alone and every Listener and Connector created
// over management afterwards, one operation after another.
func BenchmarkBigSiteLoad(b *testing.B) {
	const pairs = 2500
	for _, way := range []string{"file", "management"} {
		b.Run(way, func(b *testing.B) {
			routertest.Binary(b)
			for b.Loop() {
				b.StopTimer()
				home := b.TempDir()
				if err := scale.Generate(home, "scale", pairs, pairs); err != nil {
					b.Fatal(err)
				}
				dir, _ := namespace.Open(home, "scale")
				if way == "management" {
					// the Site alone in the file
					files, _ := filepath.Glob(filepath.Join(dir.InputResources(), "*-*.yaml"))
					for _, f := range files {
						if filepath.Base(f) != "Site-scale.yaml" {
							os.Remove(f)
						}
					}
				}
				res, err := New(Options{DataHome: home, Platform: "linux"}).Reconcile(context.Background(), "scale")
				if err != nil {
					b.Fatal(err)
				}
				port, _ := res.Config.ManagementPort()
				b.StartTimer()
				start := time.Now()
				routertest.Start(b, dir.RouterConfig())
				c := dialManagement(b, dir, port)
				switch way {
				case "file":
					for {
						ls, err := c.Query(context.Background(), management.TypeName("tcpListener"))
						if err == nil && len(ls) >= pairs {
							break
						}
						time.Sleep(100 * time.Millisecond)
					}
				case "management":
					for i := range pairs {
						if _, err := c.Create(context.Background(), management.TypeName("tcpListener"), fmt.Sprintf("l%d", i),
							map[string]any{"host": "127.0.0.1", "port": strconv.Itoa(10000 + i), "address": fmt.Sprintf("key-%d", i)}); err != nil {
							b.Fatal(err)
						}
						if _, err := c.Create(context.Background(), management.TypeName("tcpConnector"), fmt.Sprintf("c%d", i),
							map[string]any{"host": fmt.Sprintf("backend-%d.example", i), "port": "8080", "address": fmt.Sprintf("key-%d", i)}); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(time.Since(start).Seconds(), "s-to-all-entities")
				c.Close()
			}
		})
	}
}

// dialManagement connects to the router of dir at port once it answers.
func dialManagement(b *testing.B, dir namespace.Dir, port int) *management.Client {
	cfg, err := live.ManagementTLS(dir)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := management.Dial(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cfg)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			b.Fatalf("management never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkBigRouterOps measures what each kind of management operation
// costs a router holding 2,500 Listener+Connector pairs (its whole
// configuration loaded from the file): reading every tcpListener (what a
// look at which listeners accept connections costs), reading one, and
// creating and deleting one. Medians are reported.
func BenchmarkBigRouterOps(b *testing.B) {
	const pairs = 2500
	routertest.Binary(b)
	home := b.TempDir()
	if err := scale.Generate(home, "scale", pairs, pairs); err != nil {
		b.Fatal(err)
	}
	dir, _ := namespace.Open(home, "scale")
	res, err := New(Options{DataHome: home, Platform: "linux"}).Reconcile(context.Background(), "scale")
	if err != nil {
		b.Fatal(err)
	}
	port, _ := res.Config.ManagementPort()
	routertest.Start(b, dir.RouterConfig())
	c := dialManagement(b, dir, port)
	defer c.Close()
	ctx := context.Background()
	typ := management.TypeName("tcpListener")
	for {
		ls, err := c.Query(ctx, typ)
		if err == nil && len(ls) >= pairs {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	median := func(op func(i int)) float64 {
		var times []time.Duration
		for i := range 9 {
			start := time.Now()
			op(i)
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		return float64(times[len(times)/2].Microseconds()) / 1000
	}
	for b.Loop() {
		b.ReportMetric(median(func(int) {
			if _, err := c.Query(ctx, typ); err != nil {
				b.Fatal(err)
			}
		}), "query-all-ms")
		b.ReportMetric(median(func(i int) {
			if _, err := c.Read(ctx, typ, fmt.Sprintf("listener/l%d", i*7)); err != nil {
				b.Fatal(err)
			}
		}), "read-one-ms")
		b.ReportMetric(median(func(i int) {
			name := fmt.Sprintf("probe%d", i)
			if _, err := c.Create(ctx, typ, name, map[string]any{"host": "127.0.0.1", "port": strconv.Itoa(30000 + i), "address": "probe"}); err != nil {
				b.Fatal(err)
			}
			if err := c.Delete(ctx, typ, name); err != nil {
				b.Fatal(err)
			}
		}), "create+delete-ms")
	}
}
