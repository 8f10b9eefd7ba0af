package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/scale"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/runtime/docker"
	"github.com/site-controller/site-controller/pkg/runtime/systemd"
	"github.com/site-controller/site-controller/pkg/status"
)

// openFilesLimit reads a process's open files limits.
func openFilesLimit(t *testing.T, pid int) (soft, hard uint64) {
	t.Helper()
	soft, hard, err := runtime.OpenFilesLimit(pid)
	if err != nil {
		t.Fatal(err)
	}
	return soft, hard
}

func waitRouter(t testing.TB, rt runtime.Runtime, home, ns, what string, cond func(runtime.State) bool) runtime.State {
	t.Helper()
	return routertest.WaitState(t, rt, ns, fixture.NSDir(home, ns), what, cond)
}

// TestDaemonRunsRouters: on each platform, a Site file makes a router
// run, a change restarts it, and removing the Site removes it, input/
// untouched.
func TestDaemonRunsRouters(t *testing.T) {
	for _, platform := range []string{"docker", "podman", "linux"} {
		t.Run(platform, func(t *testing.T) {
			rt := enginetest.Real(t, platform)
			home := t.TempDir()
			ns := fixture.Namespace("rt")
			t.Cleanup(func() { rt.Remove(context.Background(), ns, fixture.NSDir(home, ns)) })
			startDaemon(t, home, func(o *Options) {
				o.Platform = platform
				o.Runtimes = map[string]runtime.Runtime{platform: rt}
			})
			res := filepath.Join(namespace.Root(home), ns, "input", "resources")
			fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("s"))
			fixture.WriteFile(t, filepath.Join(res, "l.yaml"), fixture.ListenerYAML("l", 19001))
			fixture.Eventually(t, "Site ready with its router running", fixture.SiteReady(home, ns, "s"))
			first := waitRouter(t, rt, home, ns, "router running", func(s runtime.State) bool { return s.Running })
			// room for thousands of listeners: not systemd's default 1024,
			// but as much as this process has (podman: what its
			// containers.conf gives, which the Site checks)
			soft, hard := openFilesLimit(t, first.Pid)
			if platform != "podman" && soft != runtime.DefaultNoFile() || soft < 4096 || soft != hard {
				t.Errorf("the router may open %d files (hard limit %d), want %d", soft, hard, runtime.DefaultNoFile())
			}
			if p, _ := (namespace.Dir{Name: ns, Path: filepath.Join(namespace.Root(home), ns)}).Platform(); p != platform {
				t.Errorf("platform recorded %q, want %q", p, platform)
			}

			fixture.WriteFile(t, filepath.Join(res, "l.yaml"), fixture.ListenerYAML("l", 19002))
			waitRouter(t, rt, home, ns, "router restarted with the new configuration", func(s runtime.State) bool {
				return s.Running && s.Started.After(first.Started)
			})
			fixture.Eventually(t, "Site ready again", fixture.SiteReady(home, ns, "s"))

			// what input/ must hold afterwards: all of it but the Site file
			var kept []string
			for _, line := range strings.Split(testfs.Fingerprint(t, filepath.Join(namespace.Root(home), ns, "input")), "\n") {
				if !strings.HasPrefix(line, filepath.Join("resources", "site.yaml")+" ") {
					kept = append(kept, line)
				}
			}
			input := strings.Join(kept, "\n")
			os.Remove(filepath.Join(res, "site.yaml"))
			waitRouter(t, rt, home, ns, "router removed with the Site", func(s runtime.State) bool { return !s.Exists || s.Status == "inactive" })
			fixture.Eventually(t, "listener waits for a Site", func() bool {
				s := fixture.StatusOf(home, ns, "Listener", "l")
				return s != nil && strings.Contains(s.Message, "waiting for a Site")
			})
			if got := testfs.Fingerprint(t, filepath.Join(namespace.Root(home), ns, "input")); got != input {
				t.Errorf("input/ changed beyond the removed Site:\n%s\nwant:\n%s", got, input)
			}
		})
	}
}

// TestRestartAdoptsAndSweeps: stopping the controller leaves routers
// running; a new controller adopts them (same container, no duplicate)
// and removes the router of a namespace deleted while it was down.
func TestRestartAdoptsAndSweeps(t *testing.T) {
	rt := enginetest.RealDocker(t)
	ctx := context.Background()
	home := t.TempDir()
	keep, drop := fixture.Namespace("ka"), fixture.Namespace("kb")
	t.Cleanup(func() {
		rt.Remove(ctx, keep, fixture.NSDir(home, keep))
		rt.Remove(ctx, drop, fixture.NSDir(home, drop))
	})
	for _, ns := range []string{keep, drop} {
		fixture.WriteFile(t, filepath.Join(namespace.Root(home), ns, "input", "resources", "site.yaml"), fixture.SiteYAML("s"))
	}
	opts := func(o *Options) { o.Platform = "docker"; o.Runtimes = map[string]runtime.Runtime{"docker": rt} }
	d1 := startDaemon(t, home, opts)
	before := waitRouter(t, rt, home, keep, "router running", func(s runtime.State) bool { return s.Running })
	waitRouter(t, rt, home, drop, "router running", func(s runtime.State) bool { return s.Running })
	d1.stop()
	if st, _ := rt.State(ctx, keep, fixture.NSDir(home, keep)); !st.Running {
		t.Fatal("stopping the controller stopped a router")
	}
	os.RemoveAll(filepath.Join(namespace.Root(home), drop))

	startDaemon(t, home, opts)
	fixture.Eventually(t, "orphan removed", func() bool {
		st, err := rt.State(ctx, drop, fixture.NSDir(home, drop))
		return err == nil && !st.Exists
	})
	after, _ := rt.State(ctx, keep, fixture.NSDir(home, keep))
	if !after.Running || !after.Started.Equal(before.Started) {
		t.Errorf("the router was restarted by a controller restart: %v -> %v", before.Started, after.Started)
	}
	list, _ := rt.List(ctx)
	n := 0
	for _, r := range list {
		if r.Namespace == keep {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d routers for %s, want 1", n, keep)
	}
}

// socketProxy forwards a unix socket to the real engine socket; stopping
// it is, for the controller, the engine going away (the engine itself is
// shared by other tests and stays up).
type socketProxy struct {
	path, target string
	mu           sync.Mutex
	l            net.Listener
	conns        []net.Conn
}

func (p *socketProxy) start(t testing.TB) {
	l, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("unix", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *socketProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	os.Remove(p.path)
}

// proxiedDocker returns a docker runtime running the real router that
// reaches the test engine through a socketProxy, and the proxy (started):
// stopping it is the engine going away.
func proxiedDocker(t testing.TB) (*docker.Runtime, *socketProxy) {
	t.Helper()
	proxy := &socketProxy{path: filepath.Join(t.TempDir(), "docker.sock"), target: strings.TrimPrefix(enginetest.DockerEndpoint(t), "unix://")}
	proxy.start(t)
	t.Cleanup(proxy.stop)
	rt, err := docker.New(docker.Options{Endpoint: "unix://" + proxy.path, Image: routertest.Image(t), Pull: runtime.PullNever})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt, proxy
}

// TestFaultEngineDownThenBack: with the engine unreachable, the Site status
// says so (Error, with what to do); when it comes back the daemon
// recovers by itself, and other namespaces are not held up.
func TestFaultEngineDownThenBack(t *testing.T) {
	direct := enginetest.RealDocker(t)
	rt, proxy := proxiedDocker(t)
	home := t.TempDir()
	ns := fixture.Namespace("down")
	t.Cleanup(func() { direct.Remove(context.Background(), ns, fixture.NSDir(home, ns)) })
	startDaemon(t, home, func(o *Options) {
		o.Platform = "docker"
		o.Runtimes = map[string]runtime.Runtime{"docker": rt}
	})
	res := filepath.Join(namespace.Root(home), ns, "input", "resources")
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("s"))
	fixture.Eventually(t, "Site ready", fixture.SiteReady(home, ns, "s"))

	proxy.stop()
	fixture.WriteFile(t, filepath.Join(res, "l.yaml"), fixture.ListenerYAML("l", 19011))
	fixture.Eventually(t, "engine-down status", func() bool {
		s := fixture.StatusOf(home, ns, "Site", "s")
		return s != nil && s.Status == status.Error && strings.Contains(s.Message, "is not reachable") && strings.Contains(s.Message, "start it")
	})
	// another namespace is still rendered meanwhile
	other := fixture.Namespace("other")
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), other, "input", "resources", "site.yaml"), fixture.SiteYAML("o")+"---\n"+fixture.ListenerYAML("x", 19012))
	fixture.Eventually(t, "other namespace rendered", func() bool { return fixture.HasListener(home, other, "x", 19012) })
	t.Cleanup(func() { direct.Remove(context.Background(), other, fixture.NSDir(home, other)) })

	proxy.start(t)
	fixture.Eventually(t, "recovery after the engine is back", fixture.SiteReady(home, ns, "s"))
	if !fixture.HasListener(home, ns, "l", 19011) {
		t.Error("the change made while the engine was down is not in the config")
	}
}

// TestPlatformChange: editing internal/platform.yaml moves the router from
// one platform to the other.
func TestPlatformChange(t *testing.T) {
	dk, pm := enginetest.RealDocker(t), enginetest.RealPodman(t)
	ctx := context.Background()
	home := t.TempDir()
	ns := fixture.Namespace("mv")
	t.Cleanup(func() { dk.Remove(ctx, ns, fixture.NSDir(home, ns)); pm.Remove(ctx, ns, fixture.NSDir(home, ns)) })
	startDaemon(t, home, func(o *Options) {
		o.Platform = "docker"
		o.Runtimes = map[string]runtime.Runtime{"docker": dk, "podman": pm}
	})
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), ns, "input", "resources", "site.yaml"), fixture.SiteYAML("s"))
	waitRouter(t, dk, home, ns, "router on docker", func(s runtime.State) bool { return s.Running })
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), ns, "internal", "platform.yaml"), "platform: podman\n")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Site status: %+v", fixture.StatusOf(home, ns, "Site", "s"))
		}
	})
	waitRouter(t, pm, home, ns, "router on podman", func(s runtime.State) bool { return s.Running })
	waitRouter(t, dk, home, ns, "router gone from docker", func(s runtime.State) bool { return !s.Exists })
	data, _ := os.ReadFile(filepath.Join(namespace.Root(home), ns, "runtime", "router", "skrouterd.json"))
	if !strings.Contains(string(data), `\"platform\":\"podman\"`) {
		t.Error("config not rendered for podman")
	}
}

// TestLinuxPlatformRealRouter runs the real skrouterd as a systemd service
// (user manager) from a Site, a Listener and a Connector, and sends
// traffic from the Listener's port to a server behind the Connector.
func TestLinuxPlatformRealRouter(t *testing.T) {
	binary := routertest.Binary(t)
	rt := enginetest.Systemd(t, binary)
	home := t.TempDir()
	ns := fixture.Namespace("lx")
	t.Cleanup(func() { rt.Remove(context.Background(), ns, fixture.NSDir(home, ns)) })
	echo := routertest.EchoServer(t, nil)
	in := routertest.FreePort(t)
	startDaemon(t, home, func(o *Options) {
		o.Platform = "linux"
		o.Runtimes = map[string]runtime.Runtime{"linux": rt}
		o.Live = true
	})
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), ns, "input", "resources", "site.yaml"), routertest.EchoSite("host", in, echo))
	fixture.Eventually(t, "Site ready with skrouterd running", fixture.SiteReady(home, ns, "host"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, in, nil); err != nil {
		t.Fatalf("traffic from Listener to Connector: %v", err)
	}
	st, _ := rt.State(context.Background(), ns, fixture.NSDir(home, ns))
	if !st.Running || st.Restarts != 0 {
		t.Errorf("router state %+v", st)
	}
}

// TestRuntimeFailuresBecomeStatus: an image that is missing and cannot be
// pulled, and a router that crash-loops, each show in the Site's status
// with what to do; the daemon keeps running and the other namespace is
// fine.
func TestRuntimeFailuresBecomeStatus(t *testing.T) {
	good := enginetest.Docker(t)
	noImage, err := docker.New(docker.Options{Endpoint: enginetest.DockerEndpoint(t), Image: "localhost/no-such-router:0", Pull: runtime.PullMissing})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	home := t.TempDir()
	crash, missing := fixture.Namespace("crash"), fixture.Namespace("noimg")
	t.Cleanup(func() {
		good.Remove(ctx, crash, fixture.NSDir(home, crash))
		good.Remove(ctx, missing, fixture.NSDir(home, missing))
	})
	// the missing-image namespace runs on "podman" here only to give it a
	// runtime of its own: the runtime behind the name is a docker one
	startDaemon(t, home, func(o *Options) {
		o.Platform = "docker"
		o.Runtimes = map[string]runtime.Runtime{"docker": good, "podman": noImage}
	})
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), missing, "internal", "platform.yaml"), "platform: podman\n")
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), missing, "input", "resources", "site.yaml"), fixture.SiteYAML("s"))
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), crash, "input", "resources", "site.yaml"), fixture.SiteYAML("crash"))
	fixture.Eventually(t, "missing image reported", func() bool {
		s := fixture.StatusOf(home, missing, "Site", "s")
		return s != nil && s.Status == status.Error && strings.Contains(s.Message, "router image localhost/no-such-router:0 is not present and could not be pulled") &&
			strings.Contains(s.Message, "SKUPPER_ROUTER_IMAGE")
	})
	fixture.Eventually(t, "crash loop reported", func() bool {
		s := fixture.StatusOf(home, crash, "Site", "crash")
		return s != nil && s.Status == status.Pending && strings.Contains(s.Message, "crashing as the site name asks")
	})
}

// TestRouterRoomWarning: a router whose open files limit is too small for
// its site (here a unit limited to 1100 files, for 100 Listeners and
// Connectors) runs, and the Site says so and what to raise; within its
// limit it does not.
func TestRouterRoomWarning(t *testing.T) {
	rt := enginetest.SystemdWith(t, systemd.Options{Binary: routertest.Binary(t), NoFile: 1100})
	home := t.TempDir()
	ns := fixture.Namespace("room")
	t.Cleanup(func() { rt.Remove(context.Background(), ns, fixture.NSDir(home, ns)) })
	res := filepath.Join(namespace.Root(home), ns, "input", "resources")
	if err := scale.Pairs(res, 50, routertest.FreePort(t)); err != nil {
		t.Fatal(err)
	}
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("s"))
	startDaemon(t, home, func(o *Options) {
		o.Platform = "linux"
		o.Runtimes = map[string]runtime.Runtime{"linux": rt}
		o.Live = true
	})
	want := "the router may open 1100 files (its open files limit), fewer than the "
	fixture.EventuallyWithin(t, time.Minute, "the Site warns of the open files limit", func() bool {
		st := fixture.StatusOf(home, ns, "Site", "s")
		return st != nil && st.Status == status.Ready && strings.Contains(st.Message, want)
	})
	// fewer resources: within the limit, no warning
	for i := 5; i < 50; i++ {
		os.Remove(filepath.Join(res, fmt.Sprintf("Listener-bg%d.yaml", i)))
		os.Remove(filepath.Join(res, fmt.Sprintf("Connector-bg%d.yaml", i)))
	}
	fixture.EventuallyWithin(t, time.Minute, "the warning gone", func() bool {
		st := fixture.StatusOf(home, ns, "Site", "s")
		return st != nil && st.Status == status.Ready && !strings.Contains(st.Message, "open files")
	})
}
