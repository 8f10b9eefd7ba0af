package controller

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
)

// requeues records the namespaces a Reconciler asks passes of.
type requeues struct {
	mu    sync.Mutex
	names []string
}

func (q *requeues) add(ns string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.names = append(q.names, ns)
}

func (q *requeues) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.names
	q.names = nil
	slices.Sort(out)
	return slices.Compact(out)
}

// TestPortsOfANamespaceGone: a namespace removed gives its ports up in
// the registry, not only in the controller's memory: made again under its
// name with no Site (nothing of it claims a port), it holds none, and a
// new process's render of the namespace that took the port agrees with
// the daemon's (CI's TestChurn found them disagreeing).
func TestPortsOfANamespaceGone(t *testing.T) {
	home := t.TempDir()
	port := routertest.FreePort(t)
	resources := func(ns string) string { return filepath.Join(fixture.NSDir(home, ns), "input", "resources") }
	fixture.WriteFile(t, filepath.Join(resources("a"), "r.yaml"), fixture.SiteYAML("a")+"---\n"+fixture.ListenerYAML("first", port))
	fixture.WriteFile(t, filepath.Join(resources("b"), "r.yaml"), fixture.SiteYAML("b")+"---\n"+fixture.ListenerYAML("second", port))
	var asked requeues
	r := New(Options{DataHome: home, Requeue: asked.add})
	defer r.Close()
	ctx := context.Background()
	heldBy := func(res *Result) string {
		for _, p := range res.Problems {
			if strings.Contains(p.Message, "is held by") {
				return p.Message
			}
		}
		return ""
	}
	pass := func(r *Reconciler, ns string) *Result {
		t.Helper()
		res, err := r.Reconcile(ctx, ns)
		if err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		return res
	}
	if res := pass(r, "a"); heldBy(res) != "" {
		t.Fatalf("a refused: %s", heldBy(res))
	}
	if res := pass(r, "b"); !strings.Contains(heldBy(res), "held by namespace a (Listener/first)") {
		t.Fatalf("b not refused: %v", res.Problems)
	}
	asked.take()

	if err := os.RemoveAll(fixture.NSDir(home, "a")); err != nil {
		t.Fatal(err)
	}
	if res := pass(r, "a"); !res.Gone {
		t.Fatal("a's pass did not find it gone")
	}
	if got := asked.take(); !slices.Contains(got, "b") {
		t.Errorf("a gone asked for passes of %v, not of b, refused its port", got)
	}
	// a made again holding a file that cannot be read yet: no Site
	fixture.WriteFile(t, filepath.Join(resources("a"), "r.yaml"), "kind: [broken")
	pass(r, "a")
	if res := pass(r, "b"); heldBy(res) != "" {
		t.Fatalf("b still refused: %s", heldBy(res))
	}
	registry, _ := os.ReadFile(filepath.Join(home, "namespaces", ".ports"))
	// a new process: a exists again, and holds nothing
	fresh := New(Options{DataHome: home})
	defer fresh.Close()
	res := pass(fresh, "b")
	if heldBy(res) != "" || len(res.Changed) > 0 {
		t.Errorf("a new process's pass of b: %q, changed %v; registry:\n%s", heldBy(res), res.Changed, registry)
	}
}

// TestRefusedWhileFreed: a namespace refused a port while another frees
// it (after its claim, before it says it was refused) is not left
// refused: either the one freeing sees the refusal, or the refused one
// sees that a port was freed since its pass began, and asks again.
func TestRefusedWhileFreed(t *testing.T) {
	var asked requeues
	r := New(Options{DataHome: t.TempDir(), Requeue: asked.add})
	refused, freeing := &owner{name: "refused"}, &owner{name: "freeing"}
	r.mu.Lock()
	kept := r.owners
	r.owners = map[string]*owner{"refused": refused, "freeing": freeing}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.owners = kept // owners of no directory: nothing to close
		r.mu.Unlock()
		r.Close()
	}()
	for _, tc := range []struct {
		name string
		run  func(seen uint64)
		want []string
	}{
		{"freed between claim and refusal", func(seen uint64) {
			r.portsSettled(freeing, false, true, 0)
			r.portsSettled(refused, true, false, seen)
		}, []string{"refused"}},
		{"freed after the refusal", func(seen uint64) {
			r.portsSettled(refused, true, false, seen)
			r.portsSettled(freeing, false, true, 0)
		}, []string{"refused"}},
		{"a namespace removed meanwhile", func(seen uint64) {
			r.freePorts(nil)
			r.portsSettled(refused, true, false, seen)
		}, []string{"refused"}},
		{"nothing freed", func(seen uint64) {
			r.portsSettled(refused, true, false, seen)
		}, nil},
		{"freed, not refused", func(seen uint64) {
			r.portsSettled(freeing, false, true, 0)
			r.portsSettled(refused, false, false, seen)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused.refused, freeing.refused = false, false
			asked.take()
			tc.run(r.portsFreed.Load())
			if got := asked.take(); !slices.Equal(got, tc.want) {
				t.Errorf("passes asked of %v, want %v", got, tc.want)
			}
		})
	}
}
