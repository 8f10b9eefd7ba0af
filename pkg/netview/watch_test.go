package netview

import (
	"testing"

	"github.com/site-controller/site-controller/pkg/namespace"
)

// TestWatch: a watcher hears of an observer that ends, until cancelled.
func TestWatch(t *testing.T) {
	var set Set
	var heard []string
	cancel := set.Watch(func(ns string) { heard = append(heard, ns) })
	// port 1: nothing listens; the observer never stores a view
	o := set.Start(namespace.Dir{Name: "east", Path: t.TempDir()}, 1, nil)
	if v := set.Views(); len(v) != 1 || v["east"] != nil {
		t.Fatalf("Views() = %v, want east with no view yet", v)
	}
	o.Close()
	if len(heard) != 1 || heard[0] != "east" {
		t.Fatalf("heard %q after the observer ended, want [east]", heard)
	}
	cancel()
	o = set.Start(namespace.Dir{Name: "west", Path: t.TempDir()}, 1, nil)
	o.Close()
	if len(heard) != 1 {
		t.Fatalf("heard %q after cancel", heard)
	}
	if v := set.Views(); len(v) != 0 {
		t.Fatalf("Views() = %v after every observer ended", v)
	}
}
