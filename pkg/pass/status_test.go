package pass

import (
	"errors"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestSiteStatusSays: what the Site's status says of its router, from the
// pass's result: a router loading a large configuration says so, with how
// long it has been at it, not a bare "not reachable"; an upgrade under way
// or waiting says which.
func TestSiteStatusSays(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	big := make(routerconfig.Config, 5001)
	running := func(ago time.Duration) *runtime.State {
		return &runtime.State{Exists: true, Running: true, Status: "running", Started: now.Add(-ago)}
	}
	unreachable := errors.New("connection refused")
	for _, tc := range []struct {
		name   string
		res    Result
		status string
		msg    string
	}{
		{"loading", Result{Platform: "linux", Config: big, Router: running(12 * time.Second), LiveErr: unreachable}, status.Pending,
			"router running on linux, loading 5001 entities (started 12s ago); it answers once it has: connection refused"},
		{"long unreachable", Result{Platform: "linux", Config: big, Router: running(5 * time.Minute), LiveErr: unreachable}, status.Pending,
			"router running on linux, but its management is not reachable yet: connection refused"},
		{"restarting for an upgrade", Result{Platform: "docker", Router: &runtime.State{Exists: true, Status: "created", Message: "router container x is created"},
			Upgrading: "image a (1) → b (2)"}, status.Pending, "restarting the router for image a (1) → b (2): router container x is created"},
		{"upgrade waits", Result{Platform: "docker", Router: running(time.Hour), UpgradePending: "router upgrade pending: image a → b (one router at a time)"},
			status.Ready, "OK; router upgrade pending: image a → b (one router at a time)"},
		{"upgraded", Result{Platform: "docker", Router: running(time.Minute), Restarted: "it was upgraded: image a → b"},
			status.Ready, "OK; router restarted because it was upgraded: image a → b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := siteStatus(&tc.res, Cond(status.Configured, true, "Configured", "OK", 0), 0, now)
			if st.Status != tc.status || st.Message != tc.msg {
				t.Errorf("%s: %q, want %s: %q", st.Status, st.Message, tc.status, tc.msg)
			}
		})
	}
}
