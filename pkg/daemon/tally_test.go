package daemon

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/site-controller/site-controller/internal/scale"
	"github.com/site-controller/site-controller/pkg/controller"
)

// TestTallyPatched: the tally after patched passes (by what they changed)
// is the one counted anew from the namespace, and the tallies before stay
// as they were (the console may be reading them), folds included.
func TestTallyPatched(t *testing.T) {
	home := t.TempDir()
	if err := scale.Generate(home, "p", 5, 5); err != nil {
		t.Fatal(err)
	}
	r := controller.New(controller.Options{DataHome: home, Platform: "none"})
	defer r.Close()
	ctx := context.Background()
	res, err := r.Reconcile(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	tl := tallyOf(res)
	dir := filepath.Join(home, "namespaces", "p", "input", "resources")
	for i := range foldAt + 10 {
		name := fmt.Sprintf("n%d.yaml", i%7)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: n%d-%d\nspec:\n  routingKey: k\n  host: 127.0.0.1\n  port: %d\n", i%7, i, 20000+i)), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := r.ReconcileChanged(ctx, "p", []string{"input/resources/" + name})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Patched {
			t.Fatalf("change %d: not patched", i)
		}
		before := *tl.origins
		next := tl.patched(res)
		want := tallyOf(res)
		if !maps.Equal(positive(next.counts), positive(want.counts)) || next.summary != want.summary {
			t.Fatalf("change %d: counts %v %+v, counted anew %v %+v", i, next.counts, next.summary, want.counts, want.summary)
		}
		for id, o := range want.origins.base {
			if got, ok := next.origins.lookup(id); !ok || got != o {
				t.Fatalf("change %d: %s at %v, want %v", i, id, got, o)
			}
		}
		if _, ok := next.origins.lookup(fmt.Sprintf("Listener/n%d-%d", i%7, i-7)); ok && i >= 7 {
			t.Fatalf("change %d: a Listener gone is still found", i)
		}
		if len(tl.origins.delta) != len(before.delta) {
			t.Fatalf("change %d: the tally before changed", i)
		}
		tl = next
	}
}

func positive(m map[[2]string]int) map[[2]string]int {
	out := map[[2]string]int{}
	for k, n := range m {
		if n != 0 {
			out[k] = n
		}
	}
	return out
}
