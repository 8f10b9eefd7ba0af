package controller

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
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/runtime/docker"
	"github.com/site-controller/site-controller/pkg/status"
)

func testNamespace(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e9)
}

// nsDir is the directory of namespace ns under a data home.
func nsDir(home, ns string) string { return filepath.Join(namespace.Root(home), ns) }

func waitRouter(t testing.TB, rt runtime.Runtime, home, ns, what string, cond func(runtime.State) bool) runtime.State {
	t.Helper()
	return routertest.WaitState(t, rt, ns, nsDir(home, ns), what, cond)
}

func siteReady(home, ns, site string) func() bool {
	return func() bool {
		s := statusOf(home, ns, "Site", site)
		return s != nil && s.Status == status.Ready && s.Condition(status.Running) != nil && s.Condition(status.Running).Status == "True"
	}
}

// TestDaemonRunsRouters: on each platform, a Site file makes a router
// run, a change restarts it, and removing the Site removes it, input/
// untouched.
func TestDaemonRunsRouters(t *testing.T) {
	for _, platform := range []string{"docker", "podman", "linux"} {
		t.Run(platform, func(t *testing.T) {
			rt := enginetest.Real(t, platform)
			home := t.TempDir()
			ns := testNamespace("rt")
			t.Cleanup(func() { rt.Remove(context.Background(), ns, nsDir(home, ns)) })
			startDaemon(t, home, func(o *DaemonOptions) {
				o.Platform = platform
				o.Runtimes = map[string]runtime.Runtime{platform: rt}
			})
			res := filepath.Join(namespace.Root(home), ns, "input", "resources")
			writeFile(t, filepath.Join(res, "site.yaml"), siteYAML("s"))
			writeFile(t, filepath.Join(res, "l.yaml"), listenerYAML("l", 19001))
			eventually(t, "Site ready with its router running", siteReady(home, ns, "s"))
			first := waitRouter(t, rt, home, ns, "router running", func(s runtime.State) bool { return s.Running })
			if p, _ := (namespace.Dir{Name: ns, Path: filepath.Join(namespace.Root(home), ns)}).Platform(); p != platform {
				t.Errorf("platform recorded %q, want %q", p, platform)
			}

			writeFile(t, filepath.Join(res, "l.yaml"), listenerYAML("l", 19002))
			waitRouter(t, rt, home, ns, "router restarted with the new configuration", func(s runtime.State) bool {
				return s.Running && s.Started.After(first.Started)
			})
			eventually(t, "Site ready again", siteReady(home, ns, "s"))

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
			eventually(t, "listener waits for a Site", func() bool {
				s := statusOf(home, ns, "Listener", "l")
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
	keep, drop := testNamespace("ka"), testNamespace("kb")
	t.Cleanup(func() { rt.Remove(ctx, keep, nsDir(home, keep)); rt.Remove(ctx, drop, nsDir(home, drop)) })
	for _, ns := range []string{keep, drop} {
		writeFile(t, filepath.Join(namespace.Root(home), ns, "input", "resources", "site.yaml"), siteYAML("s"))
	}
	opts := func(o *DaemonOptions) { o.Platform = "docker"; o.Runtimes = map[string]runtime.Runtime{"docker": rt} }
	d1 := startDaemon(t, home, opts)
	before := waitRouter(t, rt, home, keep, "router running", func(s runtime.State) bool { return s.Running })
	waitRouter(t, rt, home, drop, "router running", func(s runtime.State) bool { return s.Running })
	d1.stop()
	if st, _ := rt.State(ctx, keep, nsDir(home, keep)); !st.Running {
		t.Fatal("stopping the controller stopped a router")
	}
	os.RemoveAll(filepath.Join(namespace.Root(home), drop))

	startDaemon(t, home, opts)
	eventually(t, "orphan removed", func() bool { st, err := rt.State(ctx, drop, nsDir(home, drop)); return err == nil && !st.Exists })
	after, _ := rt.State(ctx, keep, nsDir(home, keep))
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

// TestFaultEngineDownThenBack: with the engine unreachable, the Site status
// says so (Error, with what to do); when it comes back the daemon
// recovers by itself, and other namespaces are not held up.
func TestFaultEngineDownThenBack(t *testing.T) {
	direct := enginetest.RealDocker(t)
	proxy := &socketProxy{path: filepath.Join(t.TempDir(), "docker.sock"), target: strings.TrimPrefix(enginetest.DockerEndpoint(t), "unix://")}
	proxy.start(t)
	t.Cleanup(proxy.stop)
	rt, err := docker.New(docker.Options{Endpoint: "unix://" + proxy.path, Image: routertest.Image(t), Pull: runtime.PullNever})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	ns := testNamespace("down")
	t.Cleanup(func() { direct.Remove(context.Background(), ns, nsDir(home, ns)) })
	startDaemon(t, home, func(o *DaemonOptions) {
		o.Platform = "docker"
		o.Runtimes = map[string]runtime.Runtime{"docker": rt}
	})
	res := filepath.Join(namespace.Root(home), ns, "input", "resources")
	writeFile(t, filepath.Join(res, "site.yaml"), siteYAML("s"))
	eventually(t, "Site ready", siteReady(home, ns, "s"))

	proxy.stop()
	writeFile(t, filepath.Join(res, "l.yaml"), listenerYAML("l", 19011))
	eventually(t, "engine-down status", func() bool {
		s := statusOf(home, ns, "Site", "s")
		return s != nil && s.Status == status.Error && strings.Contains(s.Message, "is not reachable") && strings.Contains(s.Message, "start it")
	})
	// another namespace is still rendered meanwhile
	other := testNamespace("other")
	writeFile(t, filepath.Join(namespace.Root(home), other, "input", "resources", "site.yaml"), siteYAML("o")+"---\n"+listenerYAML("x", 19012))
	eventually(t, "other namespace rendered", func() bool { return hasListener(home, other, "x", 19012) })
	t.Cleanup(func() { direct.Remove(context.Background(), other, nsDir(home, other)) })

	proxy.start(t)
	eventually(t, "recovery after the engine is back", siteReady(home, ns, "s"))
	if !hasListener(home, ns, "l", 19011) {
		t.Error("the change made while the engine was down is not in the config")
	}
}

// TestPlatformChange: editing internal/platform.yaml moves the router from
// one platform to the other.
func TestPlatformChange(t *testing.T) {
	dk, pm := enginetest.RealDocker(t), enginetest.RealPodman(t)
	ctx := context.Background()
	home := t.TempDir()
	ns := testNamespace("mv")
	t.Cleanup(func() { dk.Remove(ctx, ns, nsDir(home, ns)); pm.Remove(ctx, ns, nsDir(home, ns)) })
	startDaemon(t, home, func(o *DaemonOptions) {
		o.Platform = "docker"
		o.Runtimes = map[string]runtime.Runtime{"docker": dk, "podman": pm}
	})
	writeFile(t, filepath.Join(namespace.Root(home), ns, "input", "resources", "site.yaml"), siteYAML("s"))
	waitRouter(t, dk, home, ns, "router on docker", func(s runtime.State) bool { return s.Running })
	writeFile(t, filepath.Join(namespace.Root(home), ns, "internal", "platform.yaml"), "platform: podman\n")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Site status: %+v", statusOf(home, ns, "Site", "s"))
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
	ns := testNamespace("lx")
	t.Cleanup(func() { rt.Remove(context.Background(), ns, nsDir(home, ns)) })
	echo := routertest.EchoServer(t, nil)
	in := routertest.FreePort(t)
	startDaemon(t, home, func(o *DaemonOptions) {
		o.Platform = "linux"
		o.Runtimes = map[string]runtime.Runtime{"linux": rt}
		o.Live = true
	})
	writeFile(t, filepath.Join(namespace.Root(home), ns, "input", "resources", "site.yaml"), routertest.EchoSite("host", in, echo))
	eventually(t, "Site ready with skrouterd running", siteReady(home, ns, "host"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, in, nil); err != nil {
		t.Fatalf("traffic from Listener to Connector: %v", err)
	}
	st, _ := rt.State(context.Background(), ns, nsDir(home, ns))
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
	crash, missing := testNamespace("crash"), testNamespace("noimg")
	t.Cleanup(func() { good.Remove(ctx, crash, nsDir(home, crash)); good.Remove(ctx, missing, nsDir(home, missing)) })
	// the missing-image namespace runs on "podman" here only to give it a
	// runtime of its own: the runtime behind the name is a docker one
	startDaemon(t, home, func(o *DaemonOptions) {
		o.Platform = "docker"
		o.Runtimes = map[string]runtime.Runtime{"docker": good, "podman": noImage}
	})
	writeFile(t, filepath.Join(namespace.Root(home), missing, "internal", "platform.yaml"), "platform: podman\n")
	writeFile(t, filepath.Join(namespace.Root(home), missing, "input", "resources", "site.yaml"), siteYAML("s"))
	writeFile(t, filepath.Join(namespace.Root(home), crash, "input", "resources", "site.yaml"), siteYAML("crash"))
	eventually(t, "missing image reported", func() bool {
		s := statusOf(home, missing, "Site", "s")
		return s != nil && s.Status == status.Error && strings.Contains(s.Message, "router image localhost/no-such-router:0 is not present and could not be pulled") &&
			strings.Contains(s.Message, "SKUPPER_ROUTER_IMAGE")
	})
	eventually(t, "crash loop reported", func() bool {
		s := statusOf(home, crash, "Site", "crash")
		return s != nil && s.Status == status.Pending && strings.Contains(s.Message, "crashing as the site name asks")
	})
}
