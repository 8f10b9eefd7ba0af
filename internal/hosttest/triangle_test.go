package hosttest_test

import (
	"testing"
	"time"
)

// TestHostsTriangle: three simulated hosts linked in a triangle (B→A,
// C→A, C→B), real routers. A partition between A and B leaves the path
// through C: once the routers see A and B lost to each other (their HELLOs
// stop), new connections from B to A's service, and from A to B's, go
// through C; C's links and traffic are untouched, no router restarts,
// and after the heal B's link to A is Ready again.
func TestHostsTriangle(t *testing.T) {
	w := newWorld(t, []string{"a", "b", "c"}, options{links: [][2]string{{"b", "a"}, {"c", "a"}, {"c", "b"}}})
	a, b := w.hosts["a"], w.hosts["b"]
	probes := []probe{w.linkProbe("b", "a"), w.linkProbe("c", "a"), w.linkProbe("c", "b"), w.matchedProbe("b", "a"), w.sitesProbe("b")}
	paths := [][2]string{{"b", "a"}, {"a", "b"}, {"c", "a"}, {"c", "b"}}
	r := w.fault(t, probes, paths, func() error { return a.Partition(b) }, 12*time.Second, a.Heal)
	// rerouted: a new connection B→A answered again before the heal,
	// after the first that failed
	failed, _, found := r.watch.first(pathKey("b", "a"), r.mark, is("fails"))
	if !found || failed.After(r.healed) {
		t.Errorf("no new connection B→A failed during the partition: %v", r.watch.values(pathKey("b", "a"), r.mark, r.healed))
	} else if again, _, ok := r.watch.first(pathKey("b", "a"), failed, is("ok")); !ok || again.After(r.healed) {
		t.Errorf("new connections B→A did not go through C during the partition: %v", r.watch.values(pathKey("b", "a"), r.mark, r.healed))
	} else {
		t.Logf("new connections B→A failed from %s after the partition began, went through C from %s", since(r.mark, failed), since(r.mark, again))
	}
	if v := r.watch.values(pathKey("a", "b"), r.mark, r.healed); v[len(v)-1] != "ok" {
		t.Errorf("new connections A→B at the end of the partition: %v, want them through C", v)
	}
	for _, key := range []string{"c's link to a", "c's link to b"} {
		r.untouched(t, key, "Ready")
	}
	for _, p := range [][2]string{{"c", "a"}, {"c", "b"}} {
		r.untouched(t, pathKey(p[0], p[1]), "ok")
	}
	w.sameRouters(r.routers)
	r.report(t, "b's link to a", pathKey("b", "a"), pathKey("a", "b"))
}
