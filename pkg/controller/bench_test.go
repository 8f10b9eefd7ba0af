package controller

import (
	"context"
	"os"
	"testing"

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
	b.Run("unchanged", func(b *testing.B) {
		r := New(Options{DataHome: home})
		if _, err := r.Reconcile(context.Background(), "scale"); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			res, err := r.Reconcile(context.Background(), "scale")
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Changed) != 0 {
				b.Fatalf("unchanged pass changed %d files", len(res.Changed))
			}
		}
	})
}
