package daemon

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestRouterUpgrade: three sites run on the real router image; the
// controller is started again with another image (the same router, re-
// tagged with another label): the routers restart one at a time, each
// after the one before serves again, so traffic through every other site
// never stops; the Site statuses say which waits and why it restarted.
// With --router-upgrade=manual the routers are left as they are, and their
// Site statuses say an upgrade is pending.
func TestRouterUpgrade(t *testing.T) {
	t.Run("docker", func(t *testing.T) {
		ep := enginetest.DockerEndpoint(t)
		base := routertest.Image(t)
		next := "localhost/site-controller-router-upgrade:test"
		build := exec.Command("docker", "-H", ep, "build", "-q", "-t", next, "-")
		build.Stdin = strings.NewReader("FROM " + base + "\nLABEL site-controller.test=upgrade\n")
		build.Env = append(build.Environ(), "DOCKER_BUILDKIT=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", next, err, out)
		}
		t.Cleanup(func() { exec.Command("docker", "-H", ep, "rmi", next).Run() })
		testRouterUpgrade(t, upgradeCase{
			platform: "docker", old: enginetest.RealDocker(t),
			upgrade: func() runtime.Runtime { return enginetest.RealDockerImage(t, next) },
			from:    "image " + base, to: "→ " + next,
			on: func(_, ns string) bool { // "" while it is being made again
				out, _ := exec.Command("docker", "-H", ep, "inspect", "-f", "{{.Config.Image}}", runtime.ContainerName(ns)).Output()
				return strings.TrimSpace(string(out)) == next
			},
		})
	})
	t.Run("linux", func(t *testing.T) {
		// a skrouterd of the test's own, replaced in place as a package
		// upgrade replaces it
		real, err := filepath.EvalSymlinks(routertest.Binary(t))
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(t.TempDir(), "skrouterd")
		testfs.CopyFile(t, real, bin, 0o755)
		rt := enginetest.Systemd(t, bin)
		var replacedAt time.Time
		testRouterUpgrade(t, upgradeCase{
			platform: "linux", old: rt,
			upgrade: func() runtime.Runtime {
				testfs.CopyFile(t, real, bin+".new", 0o755)
				if err := os.Rename(bin+".new", bin); err != nil {
					t.Fatal(err)
				}
				replacedAt = time.Now()
				return rt
			},
			from: "skrouterd " + bin + " (the one running)", to: "→ " + bin + " (the file there now)",
			on: func(home, ns string) bool {
				st, err := rt.State(context.Background(), ns, fixture.NSDir(home, ns))
				return err == nil && st.Running && st.Started.After(replacedAt)
			},
		})
	})
}

// upgradeCase is a router upgrade on one platform: the runtime the sites
// start on, the one after the upgrade (made by upgrade), what the
// statuses call the old and new router, and whether a namespace's router
// runs the new one.
type upgradeCase struct {
	platform string
	old      runtime.Runtime
	upgrade  func() runtime.Runtime
	from, to string
	on       func(home, ns string) bool
}

func testRouterUpgrade(t *testing.T, c upgradeCase) {
	home := t.TempDir()
	names := []string{fixture.Namespace("upa"), fixture.Namespace("upb"), fixture.Namespace("upc")}
	ports := map[string]int{}
	for _, ns := range names {
		ports[ns] = routertest.FreePort(t)
		echo := routertest.EchoServer(t, nil)
		fixture.WriteFile(t, filepath.Join(namespace.Root(home), ns, "input", "resources", "site.yaml"), routertest.EchoSite("s", ports[ns], echo))
	}
	old := c.old
	t.Cleanup(func() {
		for _, ns := range names {
			old.Remove(context.Background(), ns, fixture.NSDir(home, ns))
		}
	})
	start := func(rt runtime.Runtime, upgrade string) *testDaemon {
		return startDaemon(t, home, func(o *Options) {
			o.Platform, o.Runtimes, o.Live, o.RouterUpgrade = c.platform, map[string]runtime.Runtime{c.platform: rt}, true, upgrade
		})
	}
	serving := func() {
		t.Helper()
		for _, ns := range names {
			fixture.EventuallyWithin(t, time.Minute, ns+" ready", fixture.SiteReady(home, ns, "s"))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := routertest.RoundTrip(ctx, ports[ns], nil); err != nil {
				t.Fatalf("%s: %v", ns, err)
			}
			cancel()
		}
	}
	first := start(old, "auto")
	serving()
	first.stop()

	// traffic through every site, a new connection every 20 ms, and what
	// the statuses say
	type outage struct{ from, to time.Time }
	var mu sync.Mutex
	down := map[string]*outage{}
	said := map[string][]string{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, ns := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				err := routertest.RoundTrip(rctx, ports[ns], nil)
				rcancel()
				now := time.Now()
				mu.Lock()
				if err != nil && ctx.Err() == nil {
					if down[ns] == nil {
						down[ns] = &outage{from: now}
					}
					down[ns].to = now
				}
				if s := fixture.StatusOf(home, ns, "Site", "s"); s != nil && (len(said[ns]) == 0 || said[ns][len(said[ns])-1] != s.Message) {
					said[ns] = append(said[ns], s.Message)
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	second := start(c.upgrade(), "auto")
	fixture.EventuallyWithin(t, 3*time.Minute, "every router upgraded", func() bool {
		for _, ns := range names {
			if !c.on(home, ns) {
				return false
			}
		}
		return true
	})
	serving()
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	// one at a time: no two sites were out at once
	for i, a := range names {
		for _, b := range names[i+1:] {
			if da, db := down[a], down[b]; da != nil && db != nil && da.from.Before(db.to) && db.from.Before(da.to) {
				t.Errorf("%s (out %s–%s) and %s (out %s–%s) were out at once", a, da.from.Format("15:04:05.000"), da.to.Format("15:04:05.000"),
					b, db.from.Format("15:04:05.000"), db.to.Format("15:04:05.000"))
			}
		}
	}
	var waited bool
	for _, ns := range names {
		msgs := strings.Join(said[ns], "\n")
		waited = waited || strings.Contains(msgs, "router upgrade pending: "+c.from)
		if !strings.Contains(msgs, "restarting the router for "+c.from) && down[ns] != nil && down[ns].to.Sub(down[ns].from) > time.Second {
			t.Errorf("%s was out for %s and its Site never said it restarts for the new image:\n%s", ns, down[ns].to.Sub(down[ns].from), msgs)
		}
		// the status follows the router's answer: the pass that finds
		// the new router's management reachable may come just after the
		// traffic does
		upgraded := func() (*status.Status, bool) {
			s := fixture.StatusOf(home, ns, "Site", "s")
			return s, s != nil && s.Status == status.Ready && strings.Contains(s.Message, "router restarted because it was upgraded: "+c.from) && strings.Contains(s.Message, c.to)
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, ok := upgraded(); !ok && time.Now().Before(deadline); _, ok = upgraded() {
			time.Sleep(50 * time.Millisecond)
		}
		if s, ok := upgraded(); !ok {
			t.Errorf("%s: Site status after the upgrade: %+v", ns, s)
		}
		if d := down[ns]; d != nil {
			t.Logf("%s out for %s", ns, d.to.Sub(d.from).Round(time.Millisecond))
		}
	}
	if !waited {
		t.Errorf("no Site said its upgrade waits for another's: %v", said)
	}
	second.stop()

	// manual: the routers stay as they are (on docker: back to the image
	// they ran first, which they no longer run)
	if c.platform != "docker" {
		return
	}
	third := start(old, "manual")
	fixture.Eventually(t, "upgrade pending said", func() bool {
		for _, ns := range names {
			s := fixture.StatusOf(home, ns, "Site", "s")
			if s == nil || s.Status != status.Ready || !strings.Contains(s.Message, "router upgrade pending: image") || !strings.Contains(s.Message, "--router-upgrade=manual") {
				return false
			}
		}
		return true
	})
	for _, ns := range names {
		if !c.on(home, ns) {
			t.Errorf("%s: manual, yet its router no longer runs the upgraded image", ns)
		}
	}
	third.stop()
}
