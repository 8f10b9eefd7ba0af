package systemd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/runtimetest"
	"github.com/site-controller/site-controller/internal/sitetest"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
)

func TestUnitFile(t *testing.T) {
	s := runtime.Site{Namespace: "west", SiteID: "0a1b", Dir: "/var/lib/skupper/namespaces/west", Hash: "abc"}
	got := Unit(s, System, "/usr/sbin/skrouterd", 524288)
	want := `# Written by site-controller for namespace west; do not edit: it is rewritten on every change.
[Unit]
Description=Skupper router of site namespace west
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=0

[Service]
Type=simple
Environment=SKUPPER_SITE_ID=0a1b
Environment=SITE_CONTROLLER_INPUT=abc
Environment=SITE_CONTROLLER_DIR=/var/lib/skupper/namespaces/west
ExecStart=/usr/sbin/skrouterd -c /var/lib/skupper/namespaces/west/runtime/router/skrouterd.json
Restart=always
RestartSec=2s
LimitNOFILE=524288
# confinement: the router reads its configuration and credentials and writes nothing
NoNewPrivileges=yes
UMask=0077
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
CapabilityBoundingSet=
ProtectSystem=strict
ProtectHome=read-only
PrivateDevices=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
PrivateMounts=yes
MemoryDenyWriteExecute=yes
DevicePolicy=closed
ReadOnlyPaths=-/var/lib/skupper/namespaces/west/runtime/router -/var/lib/skupper/namespaces/west/runtime/certs

[Install]
WantedBy=multi-user.target
`
	if got != want {
		t.Errorf("unit:\n%s\nwant:\n%s", got, want)
	}
	odd := Unit(runtime.Site{Namespace: "n", Dir: "/data/100% sure/ns"}, User, "/opt/router bin/skrouterd", 0)
	if !strings.Contains(odd, `ExecStart="/opt/router bin/skrouterd" -c "/data/100%% sure/ns/runtime/router/skrouterd.json"`) ||
		!strings.Contains(odd, "WantedBy=default.target") {
		t.Errorf("escaping:\n%s", odd)
	}
}

// TestUnitVerifies runs systemd-analyze verify on a generated unit: exit
// 0 and no output.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	self, _ := os.Executable()
	for _, scope := range []Scope{System, User} {
		dir := t.TempDir()
		unit := filepath.Join(dir, "skupper-x.service")
		os.WriteFile(unit, []byte(Unit(runtime.Site{Namespace: "x", SiteID: "id", Dir: dir, Hash: "h"}, scope, self, 65536)), 0o644)
		os.Mkdir(filepath.Join(dir, "run"), 0o700)
		cmd := exec.Command(analyze, "--"+string(scope), "verify", unit)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil || out.Len() > 0 {
			t.Errorf("%s: systemd-analyze verify: %v\n%s", scope, err, out.String())
		}
	}
}

// TestUnitSecurity: systemd's own assessment of the system unit's
// sandbox (systemd-analyze security, offline) rates it OK, and a port
// below 1024 keeps only the capability to bind it.
func TestUnitSecurity(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	for _, low := range []bool{false, true} {
		dir := t.TempDir()
		unit := filepath.Join(dir, "skupper-x.service")
		text := Unit(runtime.Site{Namespace: "x", SiteID: "id", Dir: dir, Hash: "h", LowPorts: low}, System, "/usr/sbin/skrouterd", 65536)
		os.WriteFile(unit, []byte(text), 0o644)
		out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=25", unit).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze security: %v\n%s", err, out)
		}
		// "→ Overall exposure level for skupper-x.service: 1.6 OK 🙂"
		m := regexp.MustCompile(`Overall exposure level for skupper-x.service: (\d+\.\d) (\w+)`).FindSubmatch(out)
		if m == nil || string(m[2]) != "OK" {
			t.Errorf("low ports %v: exposure %q, want OK (at most 2.0):\n%s", low, m, out)
		}
		t.Logf("low ports %v: exposure %s %s", low, m[1], m[2])
		caps := "CapabilityBoundingSet=\n"
		if low {
			caps = "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"
		}
		if !strings.Contains(text, caps) {
			t.Errorf("low ports %v: capabilities:\n%s", low, text)
		}
	}
}

// TestUnitSandboxRunsRouter runs the real skrouterd under the system
// unit's sandbox (the test's user manager runs as root, so it applies
// every setting a system manager would): the router serves its
// management listener with its mutual TLS, from read-only configuration
// and credentials, without a capability or a way to gain one.
func TestUnitSandboxRunsRouter(t *testing.T) {
	r := userManager(t, routertest.Binary(t))
	if os.Geteuid() != 0 {
		t.Skip("the system unit's sandbox needs a manager running as root")
	}
	// outside /tmp, so that the unit gets a private /tmp too
	if err := os.MkdirAll("/var/lib/site-controller-tests", 0o700); err != nil {
		t.Fatal(err)
	}
	home, err := os.MkdirTemp("/var/lib/site-controller-tests", "sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	ns := fmt.Sprintf("sb%d", time.Now().UnixNano()%1e9)
	s := render(t, home, ns, "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: sandboxed}\n")
	unitFile := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "systemd", "user", runtime.UnitName(ns))
	if err := os.WriteFile(unitFile, []byte(Unit(s, System, r.opts.Binary, 65536)), 0o644); err != nil {
		t.Fatal(err)
	}
	systemctl := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "systemctl", append([]string{"--user"}, args...)...).CombinedOutput()
		if err != nil {
			t.Errorf("systemctl %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	t.Cleanup(func() {
		systemctl("stop", runtime.UnitName(ns))
		os.Remove(unitFile)
		systemctl("daemon-reload")
	})
	systemctl("daemon-reload")
	systemctl("start", runtime.UnitName(ns))

	dir, _ := namespace.Open(home, ns)
	cfg, err := live.ManagementTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := os.ReadFile(filepath.Join(dir.Internal(), "management-port"))
	var routers []map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := management.Dial(ctx, "127.0.0.1:"+strings.TrimSpace(string(port)), cfg)
		if err == nil {
			routers, err = c.Query(ctx, "router")
			c.Close()
		}
		cancel()
		if err == nil && len(routers) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sandboxed router never answered its management listener: %v\n%s", err, systemctl("status", runtime.UnitName(ns)))
		}
		time.Sleep(200 * time.Millisecond)
	}
	pid := systemctl("show", "-p", "MainPID", "--value", runtime.UnitName(ns))
	status, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, want := range []string{"CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !strings.Contains(string(status), want+"\n") {
			t.Errorf("the router's process lacks %q:\n%s", want, status)
		}
	}
	// the mount that holds each directory, as the router sees it: the
	// longest mount point above it
	mounts, _ := os.ReadFile("/proc/" + pid + "/mountinfo")
	for _, sub := range []string{"router", "certs"} {
		path := filepath.Join(s.Dir, "runtime", sub)
		best, opts := "", ""
		for _, line := range strings.Split(string(mounts), "\n") {
			f := strings.Fields(line)
			if len(f) > 5 && (path == f[4] || strings.HasPrefix(path, strings.TrimSuffix(f[4], "/")+"/")) && len(f[4]) >= len(best) {
				best, opts = f[4], f[5]
			}
		}
		if !strings.HasPrefix(opts+",", "ro,") {
			t.Errorf("runtime/%s is not read-only for the router: mounted at %s with %s", sub, best, opts)
		}
	}
}

// userManager returns a runtime on the test's systemd user manager, or
// skips.
func userManager(t *testing.T, binary string) *Runtime {
	t.Helper()
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" || os.Getenv("XDG_CONFIG_HOME") == "" {
		t.Skip("no systemd user manager for tests: run under scripts/with-engines.sh")
	}
	r := New(Options{Scope: User, Binary: binary})
	t.Cleanup(r.Close)
	if _, err := r.connect(context.Background()); err != nil {
		t.Skipf("systemd user manager not reachable: %v", err)
	}
	return r
}

func render(t *testing.T, home, ns, resources string) runtime.Site {
	return sitetest.Render(t, home, ns, "linux", resources)
}

func waitReport(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), want) {
			return string(data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the router never reported %q:\n%s", want, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUnitLifecycle: a real systemd user manager loads, starts, restarts
// on change, stops and removes the unit; the stand-in router runs in place
// of skrouterd and proves it read the configuration and credentials.
func TestUnitLifecycle(t *testing.T) {
	r := userManager(t, routertest.Standin(t))
	report := routertest.ReportFile(t)
	ctx := context.Background()
	home := t.TempDir()
	ns := fmt.Sprintf("sd%d", time.Now().UnixNano()%1e9)
	t.Cleanup(func() { r.Remove(context.Background(), ns, filepath.Join(home, "namespaces", ns)) })
	yaml := "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: host}\n---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: l}\nspec: {routingKey: k, host: 127.0.0.1, port: %d, tlsCredentials: t}\n"
	s := render(t, home, ns, fmt.Sprintf(yaml, 18101))

	st, err := r.Ensure(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Exists || st.Status != "active" {
		t.Fatalf("state %+v", st)
	}
	unitFile := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "systemd", "user", runtime.UnitName(ns))
	if data, err := os.ReadFile(unitFile); err != nil || !strings.Contains(string(data), "ExecStart="+routertest.Standin(t)+" -c "+s.ConfigPath()) {
		t.Errorf("unit file %s: %v\n%s", unitFile, err, data)
	}
	if _, err := os.Lstat(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "systemd", "user", "default.target.wants", runtime.UnitName(ns))); err != nil {
		t.Errorf("unit not enabled: %v", err)
	}
	data, _ := os.ReadFile(s.ConfigPath())
	seen := waitReport(t, report, fmt.Sprintf("config-sha256=%x", sha256.Sum256(data)))
	if strings.Contains(seen, "credentials=0 ") || !strings.Contains(seen, "credentials=") {
		t.Errorf("the router read no credentials: %s", seen)
	}
	started := st.Started
	// unchanged: left running
	st2, err := r.Ensure(ctx, s)
	if err != nil || !st2.Started.Equal(started) {
		t.Errorf("unchanged unit restarted: %+v %v", st2, err)
	}
	// changed configuration: restarted, and the router sees the new one
	s2 := render(t, home, ns, fmt.Sprintf(yaml, 18102))
	st3, err := r.Ensure(ctx, s2)
	if err != nil || !st3.Started.After(started) {
		t.Errorf("changed unit not restarted: %+v %v", st3, err)
	}
	data, _ = os.ReadFile(s2.ConfigPath())
	waitReport(t, report, fmt.Sprintf("config-sha256=%x", sha256.Sum256(data)))
	if list, _ := r.List(ctx); !slices.Contains(list, runtime.Router{Namespace: ns, Dir: s.Dir}) {
		t.Errorf("List = %v", list)
	}

	input := testfs.Fingerprint(t, filepath.Join(s.Dir, "input"))
	if err := r.Remove(ctx, ns, s.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(unitFile); !os.IsNotExist(err) {
		t.Errorf("unit file left: %v", err)
	}
	if st, _ := r.State(ctx, ns, s.Dir); st.Exists && st.Status == "active" {
		t.Errorf("unit still active: %+v", st)
	}
	if got := testfs.Fingerprint(t, filepath.Join(s.Dir, "input")); got != input {
		t.Error("input/ changed")
	}
}

func TestCrashLoopAndForeignUnit(t *testing.T) {
	r := userManager(t, routertest.Standin(t))
	ctx := context.Background()
	ns := fmt.Sprintf("sc%d", time.Now().UnixNano()%1e9)
	s := render(t, t.TempDir(), ns, "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: crash}\n")
	t.Cleanup(func() { r.Remove(context.Background(), ns, s.Dir) })
	r.Ensure(ctx, s)
	routertest.WaitState(t, r, ns, s.Dir, "crash loop reported", func(st runtime.State) bool {
		return !st.Running && st.Restarts > 0 && strings.Contains(st.Message, "exit code 3")
	})
	// a unit of the same name that is not ours is never touched: neither
	// someone else's nor one site-controller wrote for another directory
	otherSite := render(t, t.TempDir(), "other", "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: other}\n")
	for name, content := range map[string]string{
		"someone else's":      "[Service]\nExecStart=/bin/true\n",
		"another data home's": Unit(otherSite, User, "/usr/sbin/skrouterd", 0),
	} {
		path := filepath.Join(r.opts.UnitDir, runtime.UnitName("other"))
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		mine := runtime.Site{Namespace: "other", Dir: t.TempDir()}
		if err := r.Remove(ctx, "other", mine.Dir); err != nil {
			t.Errorf("%s unit: Remove = %v, want nil (nothing of this site's)", name, err)
		}
		if _, err := r.Ensure(ctx, mine); !runtime.IsForeign(err) || !strings.Contains(err.Error(), "was not created by site-controller for this site") {
			t.Errorf("%s unit: Ensure = %v, want a foreign unit error", name, err)
		}
		if _, err := r.State(ctx, "other", mine.Dir); !runtime.IsForeign(err) {
			t.Errorf("%s unit: State = %v, want a foreign unit error", name, err)
		}
		if data, _ := os.ReadFile(path); string(data) != content {
			t.Errorf("%s unit changed", name)
		}
	}
	// the owner can still manage it
	if err := r.Remove(ctx, "other", otherSite.Dir); err != nil {
		t.Errorf("owner's Remove: %v", err)
	}
}

// TestConnectionOutlivesTheCallThatMadeIt: the connection to the manager
// is made by one namespace's call and shared by all; the end of that
// call's context (its pass done, its deadline past) must not close it
// under the others' calls (D-Bus closes a connection whose context is
// done: it was once made with the caller's). A call whose context is over
// before a connection is made gets an error, not a wait.
func TestConnectionOutlivesTheCallThatMadeIt(t *testing.T) {
	userManager(t, routertest.Standin(t)) // skips without a manager
	r := New(Options{Scope: User, Binary: routertest.Standin(t)})
	t.Cleanup(r.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	ns := fmt.Sprintf("sdconn%d", time.Now().UnixNano()%1e9)
	if _, err := r.State(ctx, ns, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	first, _ := r.conn.Current()
	cancel()
	// D-Bus closes a connection as soon as its context ends; give it the
	// time to, were it the call's
	time.Sleep(200 * time.Millisecond)
	if !first.Connected() {
		t.Fatal("the connection was closed when the context of the call that made it ended")
	}
	_, err := r.State(context.Background(), ns, t.TempDir())
	if now, _ := r.conn.Current(); err != nil || now != first {
		t.Errorf("the next call: %v, same connection %v", err, now == first)
	}

	over, stop := context.WithCancel(context.Background())
	stop()
	fresh := New(Options{Scope: User, Binary: routertest.Standin(t)})
	t.Cleanup(fresh.Close)
	if _, err := fresh.connect(over); !errors.Is(err, context.Canceled) {
		t.Errorf("a connection made for a call already over: %v, want its context's error", err)
	}
}

// TestManagerSilent: a manager's bus that accepts and never answers costs
// each call its own deadline (the connection is made apart from the
// calls, each waiting for it within its own context), whoever asked first.
func TestManagerSilent(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+runtimetest.SilentEngine(t))
	r := New(Options{Scope: User, Binary: "/usr/sbin/skrouterd", UnitDir: t.TempDir()})
	t.Cleanup(r.Close)
	runtimetest.EngineSilent(t, r)
}
