package daemon

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/scale"
	"github.com/site-controller/site-controller/pkg/controller"
)

// BenchmarkColdStart starts the daemon (platform none) on a data home of
// 1,000 namespaces of 10 resources each (and of 100 of 100), a Site and
// Listener+Connector pairs on ports of their own, and measures the time
// to ready (every namespace's first pass done): on a fresh data home
// (everything generated and written: credentials, port reservations,
// statuses), and again on the same data home after a stop (a restart:
// little to write). The in-process part of `make coldstart`, for
// profiles (SC_BENCH_CPUPROFILE; SC_BENCH_HEAPPROFILE: the heap in use at
// ready, after a collection, untimed).
func BenchmarkColdStart(b *testing.B) {
	for _, size := range []struct {
		namespaces, resources int
		restart               bool
	}{{1000, 10, false}, {1000, 10, true}, {100, 100, false}, {100, 100, true}} {
		name := fmt.Sprintf("%dx%d/fresh", size.namespaces, size.resources)
		if size.restart {
			name = fmt.Sprintf("%dx%d/restart", size.namespaces, size.resources)
		}
		b.Run(name, func(b *testing.B) {
			var homes []string
			for range b.N + 1 {
				home := b.TempDir()
				if err := scale.Namespaces(home, size.namespaces, size.resources); err != nil {
					b.Fatal(err)
				}
				homes = append(homes, home)
				if size.restart {
					b.StopTimer()
					startUntilReady(b, home)
					b.StartTimer()
				}
			}
			stop := fixture.ProfileLoop(b)
			defer stop()
			i := 0
			for b.Loop() {
				startUntilReady(b, homes[i])
				i++
			}
		})
	}
}

var coldWorkers = func() int { n, _ := strconv.Atoi(os.Getenv("SC_BENCH_WORKERS")); return n }()

// startUntilReady runs a daemon on home until it is ready, and stops it
// (the stop untimed).
func startUntilReady(b *testing.B, home string) {
	d, err := New(Options{Options: controller.Options{DataHome: home, Platform: "none"}, Rescan: -1, Workers: coldWorkers})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for !d.Ready() {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if path := os.Getenv("SC_BENCH_HEAPPROFILE"); path != "" {
		runtime.GC()
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}
