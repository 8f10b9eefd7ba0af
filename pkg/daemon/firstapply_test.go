package daemon

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/scale"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// TestFirstApplyChangesNothing: a site whose resources are all there when
// its Site lands starts its router with its whole rendered configuration;
// the controller's first look at the running router, and a new
// controller's after a restart, find nothing to create, update or delete:
// not a listener, not a credential's profile.
func TestFirstApplyChangesNothing(t *testing.T) { eachPlatform(t, testFirstApplyChangesNothing) }

func testFirstApplyChangesNothing(t *testing.T, platform string) {
	const pairs = 200
	rt := enginetest.Real(t, platform)
	home := t.TempDir()
	ns := fixture.Namespace("first")
	t.Cleanup(func() { rt.Remove(context.Background(), ns, fixture.NSDir(home, ns)) })
	res := filepath.Join(namespace.Root(home), ns, "input", "resources")
	if err := scale.Pairs(res, pairs, routertest.FreePort(t)); err != nil {
		t.Fatal(err)
	}
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("s"))
	run := func() *testDaemon {
		return startDaemon(t, home, func(o *Options) {
			o.Platform = platform
			o.Runtimes = map[string]runtime.Runtime{platform: rt}
			o.Live = true
		})
	}
	ops := func(d *testDaemon) float64 { return testutil.ToFloat64(d.metrics.routerOps.WithLabelValues(ns)) }
	d := run()
	l := &liveSite{t: t, d: d, home: home, ns: ns, rt: rt, res: res}
	waitConfigured(t, l, pairs)
	if n := ops(d); n != 0 {
		t.Errorf("the first passes sent %v management operations to a router started with its configuration", n)
	}
	pid := l.pid()
	d.stop()

	d = run()
	l.d = d
	waitConfigured(t, l, pairs)
	time.Sleep(time.Second) // and a few more passes (the network observer's)
	if n := ops(d); n != 0 {
		t.Errorf("a new controller sent %v management operations to a router that has its configuration", n)
	}
	if l.pid() != pid {
		t.Error("the router was restarted")
	}
}
