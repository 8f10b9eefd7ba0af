package routertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/runtime"
)

// WaitLog waits until a router's output holds want, and returns it.
func WaitLog(t testing.TB, logs func(context.Context, string) (string, error), ns, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := logs(context.Background(), ns)
		if err == nil && strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("router output never showed %q:\n%s (%v)", want, out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitState polls a runtime until the router of ns satisfies cond.
func WaitState(t testing.TB, rt runtime.Runtime, ns, dir, what string, cond func(runtime.State) bool) runtime.State {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := rt.State(context.Background(), ns, dir)
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v %v", what, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
