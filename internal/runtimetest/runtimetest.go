// Package runtimetest is the contract both container runtimes (docker,
// podman) are tested against, on their real engines with the stand-in
// router image: what a router container must look like, and what Ensure,
// State, List and Remove must do over its life. Each runtime's own tests
// add what only its engine can show.
package runtimetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/sitetest"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// SiteAndListener is a Site named by the first argument and a Listener on
// the port the second gives, with generated TLS credentials.
const SiteAndListener = `apiVersion: skupper.io/v2alpha1
kind: Site
metadata: {name: %s}
---
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata: {name: l}
spec: {routingKey: k, host: 127.0.0.1, port: %d, tlsCredentials: l-tls}
`

// Endpoint returns the test engine's endpoint from the environment
// variable env, which scripts/with-engines.sh sets, or skips the test.
func Endpoint(t *testing.T, env, what string) string {
	t.Helper()
	ep := os.Getenv(env)
	if ep == "" {
		t.Skipf("no %s for tests: run under scripts/with-engines.sh (sets %s)", what, env)
	}
	return ep
}

// Container is a router container as its engine reports it.
type Container struct {
	ID, Name, Image, User, Network, Restart string
	Started                                 time.Time
	Env                                     []string
	// Mounts maps each path in the container to the host path bound there;
	// Writable lists the ones the container may write.
	Mounts   map[string]string
	Writable []string
	Labels   map[string]string
	// the confinement as the engine reports it
	CapDrop, CapAdd, SecurityOpt []string
	ReadOnlyRoot                 bool
	Tmpfs                        []string
}

// Engine is a container runtime under test, with what the contract needs
// to look at its engine directly.
type Engine struct {
	Platform string // docker or podman
	Runtime  runtime.Runtime
	// Again returns a new runtime on the same engine: a controller restart.
	Again   func() runtime.Runtime
	Logs    func(ctx context.Context, ns string) (string, error)
	Inspect func(ns string) (Container, error)
	// Stop stops a container without removing it, as someone might.
	Stop func(id string) error
}

// Site renders a namespace of resources for the engine's platform.
func (e Engine) Site(t *testing.T, home, ns, resources string) runtime.Site {
	return sitetest.RenderFor(t, home, ns, e.Runtime, resources)
}

func (e Engine) inspect(t *testing.T, ns string) Container {
	t.Helper()
	c, err := e.Inspect(ns)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ProcStatus reads /proc/<pid>/status as a map (CapEff, CapBnd,
// NoNewPrivs, Uid, …).
func ProcStatus(t testing.TB, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// Lifecycle: Ensure creates the container as a router container must be
// and the router reads the rendered configuration and credentials; an
// unchanged site is adopted, also by a new runtime (controller restart);
// a configuration change restarts it with the new configuration; a
// container someone stopped is started again; Remove removes it, twice
// without error, and leaves input/ untouched. check adds what only the
// engine can show.
func Lifecycle(t *testing.T, e Engine, port int, check func(t *testing.T, s runtime.Site, c Container)) {
	r, ctx, home, ns := e.Runtime, context.Background(), t.TempDir(), fixture.Namespace(e.Platform[:2])
	s := e.Site(t, home, ns, fmt.Sprintf(SiteAndListener, "life", port))
	t.Cleanup(func() { r.Remove(context.Background(), ns, s.Dir) })

	if st, err := r.Ensure(ctx, s); err != nil || !st.Exists {
		t.Fatalf("Ensure: %+v %v", st, err)
	}
	c := e.inspect(t, ns)
	if c.Name != runtime.ContainerName(ns) || c.Image != routertest.StandinImage {
		t.Errorf("name %q image %q", c.Name, c.Image)
	}
	for _, env := range []string{
		"QDROUTERD_CONF=/etc/skupper-router/config/skrouterd.json", "QDROUTERD_CONF_TYPE=json",
		"SKUPPER_SITE_ID=" + s.SiteID, "SSL_PROFILE_BASE_PATH=/etc/skupper-router",
	} {
		if !slices.Contains(c.Env, env) {
			t.Errorf("env lacks %s: %v", env, c.Env)
		}
	}
	for dst, src := range map[string]string{
		"/etc/skupper-router/config":        s.Dir + "/runtime/router",
		"/etc/skupper-router/runtime/certs": s.Dir + "/runtime/certs",
	} {
		if c.Mounts[dst] != src {
			t.Errorf("mount %s from %q, want %q", dst, c.Mounts[dst], src)
		}
	}
	for k, v := range map[string]string{"application": "skupper-v2", "skupper.io/site-id": s.SiteID, "skupper.io/v2-component": "router",
		runtime.LabelNamespace: ns, runtime.LabelSiteDir: s.Dir} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if c.Network != "host" || c.Restart != "always" {
		t.Errorf("network %q restart %q", c.Network, c.Restart)
	}
	uid, gid := r.RouterUser(false)
	if want := fmt.Sprintf("%d:%d", uid, gid); c.User != want || os.Getuid() == 0 && uid == 0 {
		t.Errorf("user %q, want %q (never root)", c.User, want)
	}
	// confined: nothing bound is writable, no capability, no new
	// privileges, a read-only root with a tmpfs at /tmp
	if len(c.Writable) != 0 || len(c.CapAdd) != 0 ||
		!slices.ContainsFunc(c.SecurityOpt, func(o string) bool { return strings.HasPrefix(o, "no-new-privileges") }) ||
		!c.ReadOnlyRoot || !slices.Equal(c.Tmpfs, []string{"/tmp"}) {
		t.Errorf("confinement: writable binds %v, cap-add %v, security %v, read-only root %v, tmpfs %v",
			c.Writable, c.CapAdd, c.SecurityOpt, c.ReadOnlyRoot, c.Tmpfs)
	}
	// and as the kernel sees the router's process: no capability, not
	// even in its bounding set, and no way to gain one
	if st, err := r.State(ctx, ns, s.Dir); err == nil && st.Pid > 0 {
		if p := ProcStatus(t, st.Pid); p["CapEff"] != "0000000000000000" || p["CapBnd"] != "0000000000000000" || p["NoNewPrivs"] != "1" {
			t.Errorf("the router's process: CapEff %s CapBnd %s NoNewPrivs %s", p["CapEff"], p["CapBnd"], p["NoNewPrivs"])
		}
	} else {
		t.Errorf("the router's process: %+v %v", st, err)
	}
	if check != nil {
		check(t, s, c)
	}
	// the stand-in read the configuration and every credential (keys 0600)
	logs := routertest.WaitLog(t, e.Logs, ns, "standin: running")
	if !strings.Contains(logs, sitetest.ConfigSum(t, s)) || !strings.Contains(logs, "credentials=") || strings.Contains(logs, "credentials=0 ") {
		t.Errorf("the container did not see the rendered configuration and credentials:\n%s", logs)
	}

	// unchanged: adopted, not recreated, also by a new runtime
	if _, err := e.Again().Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	if c2 := e.inspect(t, ns); c2.ID != c.ID || !c2.Started.Equal(c.Started) {
		t.Error("an unchanged site's container was recreated or restarted")
	}
	if list, _ := r.List(ctx); !slices.Contains(list, runtime.Router{Namespace: ns, Dir: s.Dir}) {
		t.Errorf("List = %v, want %s once", list, ns)
	}

	// a configuration change restarts it, and it sees the new one
	s2 := e.Site(t, home, ns, fmt.Sprintf(SiteAndListener, "life", port+1))
	if s2.Hash == s.Hash {
		t.Fatal("input hash did not change")
	}
	if _, err := r.Ensure(ctx, s2); err != nil {
		t.Fatal(err)
	}
	c3 := e.inspect(t, ns)
	if c3.ID == c.ID {
		t.Error("configuration change did not restart the router")
	}
	routertest.WaitLog(t, e.Logs, ns, sitetest.ConfigSum(t, s2))

	// a container someone stopped is started again
	if err := e.Stop(c3.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := r.Ensure(ctx, s2); err != nil || !st.Running {
		t.Errorf("stopped router not started: %+v %v", st, err)
	}

	// removal leaves input/ untouched
	input := testfs.Fingerprint(t, filepath.Join(s.Dir, "input"))
	if err := r.Remove(ctx, ns, s.Dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.State(ctx, ns, s.Dir); st.Exists {
		t.Error("container still there after Remove")
	}
	if got := testfs.Fingerprint(t, filepath.Join(s.Dir, "input")); got != input {
		t.Error("input/ changed")
	}
	if err := r.Remove(ctx, ns, s.Dir); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// CrashLoop: a router that keeps exiting is reported, with its exit code
// and restarts, in the state's message.
func CrashLoop(t *testing.T, e Engine, port int) {
	ns := fixture.Namespace(e.Platform[:2])
	s := e.Site(t, t.TempDir(), ns, fmt.Sprintf(SiteAndListener, "crash", port))
	t.Cleanup(func() { e.Runtime.Remove(context.Background(), ns, s.Dir) })
	e.Runtime.Ensure(context.Background(), s)
	routertest.WaitState(t, e.Runtime, ns, s.Dir, "crash loop reported", func(st runtime.State) bool {
		return !st.Running && st.Restarts > 0 && strings.Contains(st.Message, "crashing as the site name asks")
	})
}

// EngineDown: a runtime whose engine socket is not there says so, as an
// Unavailable error.
func EngineDown(t *testing.T, rt runtime.Runtime) {
	_, err := rt.Ensure(context.Background(), runtime.Site{Namespace: "x", Dir: t.TempDir()})
	if !runtime.IsUnavailable(err) || !strings.Contains(err.Error(), "is not reachable") {
		t.Errorf("err = %v", err)
	}
}

// SilentEngine listens on a unix socket in a directory of the test's and
// accepts every connection without ever answering (a service that hangs):
// it returns the socket's path.
func SilentEngine(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "silent.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return path
}

// EngineSilent: against an engine that accepts and never answers
// (SilentEngine), a call ends at its context's deadline with an error, and
// so does the next; and a call made while another still waits for the
// connection ends at its own, shorter, deadline, before the other.
func EngineSilent(t *testing.T, rt runtime.Runtime) {
	t.Helper()
	// call asks for a state within d; its error arrives on the channel
	call := func(d time.Duration) (<-chan error, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		done := make(chan error, 1)
		go func() {
			_, err := rt.State(ctx, "x", t.TempDir())
			done <- err
		}()
		return done, cancel
	}
	first, cancelLong := call(5 * time.Second)
	defer cancelLong()
	time.Sleep(100 * time.Millisecond) // the first waits by now
	second, cancelShort := call(200 * time.Millisecond)
	firstDone := false
	select {
	case err := <-second:
		if err == nil {
			t.Error("the second call: no error from an engine that never answers")
		}
	case <-first:
		firstDone = true
		t.Error("a call with a 200 ms deadline ended after one with 5 s: it waited for the other's connection")
	case <-time.After(20 * time.Second):
		t.Fatal("the second call: still waiting 20 s after its 200 ms deadline")
	}
	cancelShort()
	cancelLong()
	if !firstDone {
		<-first
	}
	for i := range 2 {
		done, cancel := call(300 * time.Millisecond)
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("call %d: no error from an engine that never answers", i+1)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("call %d: still waiting 20 s after its 300 ms deadline", i+1)
		}
		cancel()
	}
}
