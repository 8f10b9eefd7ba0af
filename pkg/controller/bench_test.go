package controller

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/scale"
)

// BenchmarkReconcile2500x2500 runs full passes over a namespace with one
// Site, 2500 Listeners and 2500 Connectors: the first (cold) pass writes
// everything, later ones find nothing to change. Both are reported.
func BenchmarkReconcile2500x2500(b *testing.B) {
	home := b.TempDir()
	if err := scale.Generate(home, "scale", 2500, 2500); err != nil {
		b.Fatal(err)
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			os.RemoveAll(home + "/namespaces/scale/runtime")
			b.StartTimer()
			if _, err := New(Options{DataHome: home}).Reconcile(context.Background(), "scale"); err != nil {
				b.Fatal(err)
			}
		}
	})
	// unchanged-process: a new Reconciler over the rendered namespace, as
	// `render` run again (nothing kept in memory)
	b.Run("unchanged-process", func(b *testing.B) {
		if _, err := New(Options{DataHome: home}).Reconcile(context.Background(), "scale"); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			res, err := New(Options{DataHome: home}).Reconcile(context.Background(), "scale")
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Changed) != 0 {
				b.Fatalf("an unchanged pass changed %v", res.Changed)
			}
		}
	})
	// unchanged: a pass that looks at every file's stat (a rescan's);
	// unchanged-told: a pass told by the watcher that nothing changed
	for _, told := range []bool{false, true} {
		name := "unchanged"
		var changed []string
		if told {
			name, changed = "unchanged-told", []string{}
		}
		b.Run(name, func(b *testing.B) {
			time.Sleep(2 * time.Second) // see BenchmarkReconcileOneChange
			r := New(Options{DataHome: home})
			if _, err := r.Reconcile(context.Background(), "scale"); err != nil {
				b.Fatal(err)
			}
			written, passes := 0, 0
			for b.Loop() {
				res, err := r.ReconcileChanged(context.Background(), "scale", changed)
				if err != nil {
					b.Fatal(err)
				}
				written, passes = written+len(res.Changed), passes+1
			}
			if written != 0 {
				b.Errorf("unchanged passes changed %d files", written)
			}
			b.ReportMetric(float64(written)/float64(passes), "files/op")
		})
	}
}

// BenchmarkReconcileOneChange runs passes over the same 5,001-resource
// namespace, each after one Listener file changed (its port): the cost of
// an ordinary edit in a large site. Files written per pass are reported.
func BenchmarkReconcileOneChange(b *testing.B) {
	home := b.TempDir()
	if err := scale.Generate(home, "scale", 2500, 2500); err != nil {
		b.Fatal(err)
	}
	// files changed in the last two seconds are read by every pass (their
	// times could hide another change): the figure is of a site whose
	// files are older
	time.Sleep(2 * time.Second)
	r := New(Options{DataHome: home})
	if _, err := r.Reconcile(context.Background(), "scale"); err != nil {
		b.Fatal(err)
	}
	file := home + "/namespaces/scale/input/resources/Listener-l7.yaml"
	written, i := 0, 0
	var phases Phases
	stop := fixture.ProfileLoop(b)
	defer stop()
	for b.Loop() {
		i++
		b.StopTimer()
		data := fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: l7\nspec:\n  routingKey: key-7\n  host: 127.0.0.1\n  port: %d\n", 20000+i%2)
		if err := os.WriteFile(file+".tmp", []byte(data), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := r.ReconcileChanged(context.Background(), "scale", []string{"input/resources/Listener-l7.yaml"})
		if err != nil {
			b.Fatal(err)
		}
		written += len(res.Changed)
		phases.Read += res.Phases.Read
		phases.Render += res.Phases.Render
		phases.Status += res.Phases.Status
	}
	b.ReportMetric(float64(written)/float64(i), "files/op")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(i) }
	b.ReportMetric(ms(phases.Read), "read-ms")
	b.ReportMetric(ms(phases.Render), "render-ms")
	b.ReportMetric(ms(phases.Status), "status-ms")
}
