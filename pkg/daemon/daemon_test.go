package daemon

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/skschema"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/status"
)

// notes records systemd notifications.
type notes struct {
	mu  sync.Mutex
	all []string
}

func (n *notes) add(s string) { n.mu.Lock(); n.all = append(n.all, s); n.mu.Unlock() }
func (n *notes) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.all...)
}

type testDaemon struct {
	*Daemon
	home  string
	notes *notes
	stop  func()
}

// startDaemon runs a daemon on home until the test ends and waits for its
// first full pass.
func startDaemon(t testing.TB, home string, tweak func(*Options)) *testDaemon {
	t.Helper()
	n := &notes{}
	opts := Options{Options: controller.Options{DataHome: home}, Notify: n.add, Rescan: -1}
	if tweak != nil {
		tweak(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	// every configuration the daemon rendered fits the router's schema
	t.Cleanup(func() { skschema.CheckTree(t, namespace.Root(home)) })
	t.Cleanup(stop)
	fixture.EventuallyWithin(t, time.Minute, "first full pass", d.Ready) // routers of several sites may be starting
	return &testDaemon{Daemon: d, home: home, notes: n, stop: stop}
}

func reconciles(d *Daemon, ns string) float64 {
	return testutil.ToFloat64(d.metrics.reconciles.WithLabelValues(ns))
}

// TestDaemonFollowsEveryKindOfChange drives one namespace through every
// kind of file system change, with real inotify.
func TestDaemonFollowsEveryKindOfChange(t *testing.T) {
	home := t.TempDir()
	res := filepath.Join(namespace.Root(home), "ev", "input", "resources")
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("ev"))
	d := startDaemon(t, home, nil)
	outside := t.TempDir()
	file := filepath.Join(res, "l.yaml")

	step := func(name string, do func(), cond func() bool) {
		t.Helper()
		do()
		fixture.Eventually(t, name, cond)
	}
	afterReconcile := func(do func()) (func(), func() bool) {
		var before float64
		return func() { before = reconciles(d.Daemon, "ev"); do() }, func() bool { return reconciles(d.Daemon, "ev") > before }
	}

	step("create", func() { fixture.WriteFile(t, file, fixture.ListenerYAML("a", 1001)) }, func() bool { return fixture.HasListener(home, "ev", "a", 1001) })
	step("write in place", func() {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(f, fixture.ListenerYAML("a", 1002))
		f.Close()
	}, func() bool { return fixture.HasListener(home, "ev", "a", 1002) })
	do, cond := afterReconcile(func() { os.Chmod(file, 0o600) })
	step("chmod", do, cond)
	do, cond = afterReconcile(func() { os.Rename(file, filepath.Join(res, "b.yaml")) })
	step("rename within", do, func() bool { return cond() && fixture.HasListener(home, "ev", "a", 1002) })
	step("move out", func() { os.Rename(filepath.Join(res, "b.yaml"), filepath.Join(outside, "b.yaml")) }, func() bool { return fixture.NoListener(home, "ev", "a") })
	step("move in", func() { os.Rename(filepath.Join(outside, "b.yaml"), file) }, func() bool { return fixture.HasListener(home, "ev", "a", 1002) })
	step("remove", func() { os.Remove(file) }, func() bool { return fixture.NoListener(home, "ev", "a") })

	step("vim-style save", func() {
		fixture.WriteFile(t, file, fixture.ListenerYAML("v", 2001))
		fixture.Eventually(t, "vim file", func() bool { return fixture.HasListener(home, "ev", "v", 2001) })
		probe := filepath.Join(res, "4913")
		fixture.WriteFile(t, probe, "")
		os.Remove(probe)
		swp := filepath.Join(res, ".l.yaml.swp")
		fixture.WriteFile(t, swp, "swap content: [")
		os.Rename(file, file+"~")
		fixture.WriteFile(t, file, fixture.ListenerYAML("v", 2002))
		os.Remove(file + "~")
		os.Remove(swp)
	}, func() bool { return fixture.HasListener(home, "ev", "v", 2002) })
	// editor debris alone: the watcher sees its events and starts no pass
	events := func() float64 { return testutil.ToFloat64(d.metrics.events.WithLabelValues("create")) }
	fixture.Eventually(t, "quiet before the debris", func() bool { return d.queue.Len() == 0 })
	passes, seen := reconciles(d.Daemon, "ev"), events()
	fixture.WriteFile(t, filepath.Join(res, ".#l.yaml"), "garbage: [")
	fixture.WriteFile(t, filepath.Join(res, "l.yaml~"), "garbage: [")
	fixture.Eventually(t, "the watcher saw the debris", func() bool { return events() >= seen+2 })
	time.Sleep(3*d.opts.Quiet + 50*time.Millisecond) // longer than a mark waits for its pass
	if n := reconciles(d.Daemon, "ev"); n != passes || d.queue.Len() != 0 {
		t.Errorf("editor debris alone started %v passes (queue %d)", n-passes, d.queue.Len())
	}

	step("..data symlink swap", func() {
		os.Mkdir(filepath.Join(res, "..2026_a"), 0o755)
		fixture.WriteFile(t, filepath.Join(res, "..2026_a", "k.yaml"), fixture.ListenerYAML("k", 3001))
		os.Symlink("..2026_a", filepath.Join(res, "..data"))
		os.Symlink("..data/k.yaml", filepath.Join(res, "k.yaml"))
		fixture.Eventually(t, "configmap file", func() bool { return fixture.HasListener(home, "ev", "k", 3001) })
		fixture.WriteFile(t, filepath.Join(res, "..2026_b", "k.yaml"), fixture.ListenerYAML("k", 3002))
		os.Symlink("..2026_b", filepath.Join(res, "..data_tmp"))
		os.Rename(filepath.Join(res, "..data_tmp"), filepath.Join(res, "..data"))
		os.RemoveAll(filepath.Join(res, "..2026_a"))
	}, func() bool { return fixture.HasListener(home, "ev", "k", 3002) })

	step("valid to invalid", func() { fixture.WriteFile(t, file, fixture.ListenerYAML("v", 70000)) }, func() bool {
		s := fixture.StatusOf(home, "ev", "Listener", "v")
		return fixture.NoListener(home, "ev", "v") && s != nil && s.Status == status.Error && strings.Contains(s.Message, "must be between 1 and 65535, got 70000")
	})
	step("invalid to valid", func() { fixture.WriteFile(t, file, fixture.ListenerYAML("v", 2003)) }, func() bool {
		s := fixture.StatusOf(home, "ev", "Listener", "v")
		return fixture.HasListener(home, "ev", "v", 2003) && s != nil && s.Status != status.Error
	})
	step("new subdirectory, file added after", func() {
		os.Mkdir(filepath.Join(res, "team"), 0o755)
		fixture.Eventually(t, "watch on the subdirectory", func() bool { return d.watch.IsWatched(filepath.Join(res, "team")) })
		fixture.WriteFile(t, filepath.Join(res, "team", "t.yaml"), fixture.ListenerYAML("t", 4001))
	}, func() bool { return fixture.HasListener(home, "ev", "t", 4001) })
	// a Listener serving input/certs/x: replacing the files reaches the
	// router's copy
	ca, _, err := certs.EnsureCA(filepath.Join(t.TempDir(), "ca"), "user-ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	userCert := func(host string) []byte {
		dir := filepath.Join(t.TempDir(), "x")
		if _, err := certs.EnsureLeaf(dir, ca, certs.Leaf{CommonName: host, Hosts: []string{host}, Server: true}, time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{certs.CAFile, certs.CertFile, certs.KeyFile} {
			data, _ := os.ReadFile(filepath.Join(dir, f))
			fixture.WriteFile(t, filepath.Join(res, "..", "certs", "x", f), string(data))
		}
		data, _ := os.ReadFile(filepath.Join(dir, certs.CertFile))
		return data
	}
	copied := func(want []byte) func() bool {
		return func() bool {
			got, err := os.ReadFile(filepath.Join(namespace.Root(home), "ev", "runtime", "certs", "x", certs.CertFile))
			return err == nil && bytes.Equal(got, want)
		}
	}
	first := userCert("one.example")
	step("user credential added", func() {
		fixture.WriteFile(t, filepath.Join(res, "tls.yaml"), "apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: tls}\nspec: {routingKey: tls, host: 127.0.0.1, port: 4100, tlsCredentials: x}\n")
	}, copied(first))
	var second []byte
	step("user credential change", func() { second = userCert("two.example") }, func() bool { return copied(second)() })

	// namespaces appearing and disappearing
	newNS := filepath.Join(namespace.Root(home), "late")
	step("new namespace", func() {
		fixture.WriteFile(t, filepath.Join(newNS, "input", "resources", "all.yaml"), fixture.SiteYAML("late")+"---\n"+fixture.ListenerYAML("n", 5001))
	}, func() bool { return fixture.StatusOf(home, "late", "Listener", "n") != nil && d.queue.Len() == 0 })
	step("namespace removed", func() { os.RemoveAll(newNS) }, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		_, known := d.summary["late"]
		return !known && d.queue.Len() == 0
	})
	if _, err := os.Stat(newNS); !os.IsNotExist(err) {
		t.Errorf("removed namespace directory was recreated: %v", err)
	}
	// the inotify instance is one for everything
	if n := inotifyInstances(t); n != 1 {
		t.Errorf("%d inotify instances, want 1", n)
	}
}

// inotifyInstances counts this process's inotify file descriptors.
func inotifyInstances(t *testing.T) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc")
	}
	n := 0
	for _, fd := range fds {
		if link, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); link == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// TestForcedRescan loses events on purpose (the daemon drops them, as
// after a kernel queue overflow) and proves that the rescan forced by an
// overflow catches up.
func TestForcedRescan(t *testing.T) {
	home := t.TempDir()
	res := filepath.Join(namespace.Root(home), "lost", "input", "resources")
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("lost"))
	var lose atomic.Bool
	d := startDaemon(t, home, func(o *Options) { o.TakeEvent = func(string, string) bool { return !lose.Load() } }) // no periodic rescan
	lose.Store(true)
	fixture.WriteFile(t, filepath.Join(res, "l.yaml"), fixture.ListenerYAML("x", 6001))
	time.Sleep(200 * time.Millisecond)
	if fixture.HasListener(home, "lost", "x", 6001) {
		t.Fatal("the change arrived although its events were lost")
	}
	d.Rescan("overflow")
	fixture.Eventually(t, "rescan after overflow", func() bool { return fixture.HasListener(home, "lost", "x", 6001) })
	if got := testutil.ToFloat64(d.metrics.rescans.WithLabelValues("overflow")); got != 1 {
		t.Errorf("overflow rescans = %v", got)
	}
	if got := testutil.ToFloat64(d.metrics.overflows); got != 1 {
		t.Errorf("overflows = %v", got)
	}
}

// TestPeriodicRescan: with every event lost, the periodic content-hash
// rescan alone brings a change in.
func TestPeriodicRescan(t *testing.T) {
	home := t.TempDir()
	res := filepath.Join(namespace.Root(home), "lost", "input", "resources")
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("lost"))
	var lose atomic.Bool
	d := startDaemon(t, home, func(o *Options) {
		o.Rescan = 100 * time.Millisecond
		o.TakeEvent = func(string, string) bool { return !lose.Load() }
	})
	lose.Store(true)
	fixture.WriteFile(t, filepath.Join(res, "l.yaml"), fixture.ListenerYAML("x", 6002))
	fixture.Eventually(t, "periodic rescan", func() bool { return fixture.HasListener(home, "lost", "x", 6002) })
	if testutil.ToFloat64(d.metrics.rescans.WithLabelValues("periodic")) < 1 {
		t.Error("no periodic rescan counted")
	}
	// nothing changes: later rescans reconcile nothing
	fixture.Eventually(t, "queue drained", func() bool { return d.queue.Len() == 0 })
	before := reconciles(d.Daemon, "lost")
	time.Sleep(350 * time.Millisecond)
	if after := reconciles(d.Daemon, "lost"); after != before {
		t.Errorf("unchanged input reconciled %v more times", after-before)
	}
}

// TestFullPass: between full passes a pass trusts what it kept (the files
// it read, the status files it wrote); the periodic full pass trusts
// nothing, so it repairs a status file removed behind the daemon's back,
// and an unchanged namespace costs it no write of anything else.
func TestFullPass(t *testing.T) {
	home := t.TempDir()
	res := filepath.Join(namespace.Root(home), "full", "input", "resources")
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("full"))
	fixture.WriteFile(t, filepath.Join(res, "l.yaml"), fixture.ListenerYAML("x", 6003))
	d := startDaemon(t, home, func(o *Options) { o.Rescan = -1; o.FullPass = time.Hour })
	listener := filepath.Join(namespace.Root(home), "full", "runtime", "resources", "Listener-x.yaml")
	fixture.Eventually(t, "listener status", func() bool { _, err := os.Stat(listener); return err == nil })
	// a file changed in the last two seconds is read by every pass (its
	// times could hide another change), and its status compared anew
	time.Sleep(2100 * time.Millisecond)
	fixture.WriteFile(t, filepath.Join(res, "n.yaml"), fixture.ListenerYAML("z", 6005))
	fixture.Eventually(t, "queue drained", func() bool {
		return fixture.HasListener(home, "full", "z", 6005) && d.queue.Len() == 0 && d.queue.Scheduled() == 0
	})
	written := func() float64 { return testutil.ToFloat64(d.metrics.written.WithLabelValues("full")) }

	// an ordinary pass (another file changed) trusts the status it wrote
	os.Remove(listener)
	fixture.WriteFile(t, filepath.Join(res, "m.yaml"), fixture.ListenerYAML("y", 6004))
	fixture.Eventually(t, "the other listener's status", func() bool { return fixture.HasListener(home, "full", "y", 6004) })
	if _, err := os.Stat(listener); err == nil {
		t.Fatal("an ordinary pass rewrote a status file it had written unchanged: it is not incremental")
	}
	fixture.Eventually(t, "queue drained", func() bool { return d.queue.Len() == 0 && d.queue.Scheduled() == 0 })

	// the full pass writes it again, and nothing else
	before := written()
	d.fullPass() // what the periodic rescan does every FullPass
	fixture.Eventually(t, "full pass repairs the status file", func() bool { _, err := os.Stat(listener); return err == nil })
	fixture.Eventually(t, "queue drained", func() bool { return d.queue.Len() == 0 && d.queue.Scheduled() == 0 })
	if got := written() - before; got != 1 {
		t.Errorf("the full pass wrote %v files, want 1 (the one removed)", got)
	}
	if testutil.ToFloat64(d.metrics.rescans.WithLabelValues("full")) < 1 {
		t.Error("no full pass counted")
	}
}

// TestOneNamespaceFailingLeavesOthersAlone panics inside one namespace's
// reconcile: the others are reconciled, the failure lands in the Site's
// status, and the namespace recovers by itself once the fault is gone.
func TestOneNamespaceFailingLeavesOthersAlone(t *testing.T) {
	home := t.TempDir()
	for _, ns := range []string{"boom", "fine"} {
		fixture.WriteFile(t, filepath.Join(namespace.Root(home), ns, "input", "resources", "site.yaml"), fixture.SiteYAML(ns))
	}
	var broken sync.Map
	broken.Store("boom", true)
	d := startDaemon(t, home, func(o *Options) {
		o.BeforePass = func(ns string) {
			if _, ok := broken.Load(ns); ok {
				panic("injected fault")
			}
		}
	})
	fixture.Eventually(t, "failure status", func() bool {
		s := fixture.StatusOf(home, "boom", "Site", "boom")
		return s != nil && s.Status == status.Error && strings.Contains(s.Message, "reconcile failed: internal error: injected fault; retrying in")
	})
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), "fine", "input", "resources", "l.yaml"), fixture.ListenerYAML("f", 7001))
	fixture.Eventually(t, "other namespace", func() bool { return fixture.HasListener(home, "fine", "f", 7001) })
	if testutil.ToFloat64(d.metrics.errors.WithLabelValues("boom")) < 1 {
		t.Error("error not counted")
	}
	broken.Delete("boom")
	fixture.Eventually(t, "recovery with backoff", func() bool {
		s := fixture.StatusOf(home, "boom", "Site", "boom")
		return s != nil && s.Status != status.Error && fixture.Config(home, "boom") != ""
	})
}

// TestFailureAfterSuccess: a namespace that fails after passing has the
// failure written into its Site's status, and the pass that recovers
// writes the good status again, although it is what the passes before the
// failure wrote (their memo of the file is not trusted after the failure
// wrote it).
func TestFailureAfterSuccess(t *testing.T) {
	home := t.TempDir()
	res := filepath.Join(namespace.Root(home), "flaky", "input", "resources")
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("flaky"))
	var broken atomic.Bool
	d := startDaemon(t, home, func(o *Options) {
		o.BeforePass = func(ns string) {
			if ns == "flaky" && broken.Load() {
				panic("injected fault")
			}
		}
	})
	fixture.Eventually(t, "first status", func() bool {
		s := fixture.StatusOf(home, "flaky", "Site", "flaky")
		return s != nil && s.Status != status.Error
	})
	// files changed in the last two seconds are read, and their statuses
	// compared, anew by every pass: this is about the others
	time.Sleep(2100 * time.Millisecond)
	// a file that is not a resource: a pass, and nothing else changes
	passes := reconciles(d.Daemon, "flaky")
	fixture.WriteFile(t, filepath.Join(res, "notes.txt"), "a")
	fixture.Eventually(t, "a pass that keeps the site's file", func() bool { return reconciles(d.Daemon, "flaky") > passes })
	before := fixture.StatusOf(home, "flaky", "Site", "flaky")
	broken.Store(true)
	fixture.WriteFile(t, filepath.Join(res, "notes.txt"), "b")
	fixture.Eventually(t, "failure status", func() bool {
		s := fixture.StatusOf(home, "flaky", "Site", "flaky")
		return s != nil && s.Status == status.Error
	})
	broken.Store(false)
	fixture.EventuallyWithin(t, 5*time.Second, "the status as before the failure", func() bool {
		s := fixture.StatusOf(home, "flaky", "Site", "flaky")
		return s != nil && s.Status == before.Status && s.Message == before.Message
	})
}

func TestSecondInstanceIsRefused(t *testing.T) {
	home := t.TempDir()
	startDaemon(t, home, nil)
	d2, err := New(Options{Options: controller.Options{DataHome: home}})
	if err != nil {
		t.Fatal(err)
	}
	// a broken lock would let it run: that fails here, it does not hang
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = d2.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "another site-controller manages this data home") {
		t.Errorf("second instance: %v", err)
	}
}

func TestNotificationsAndHTTP(t *testing.T) {
	home := t.TempDir()
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), "n", "input", "resources", "all.yaml"), fixture.SiteYAML("n")+"---\n"+fixture.ListenerYAML("bad", 0))
	d := startDaemon(t, home, func(o *Options) { o.Watchdog = 20 * time.Millisecond })
	fixture.Eventually(t, "watchdog", func() bool { return strings.Contains(strings.Join(d.notes.list(), "|"), "WATCHDOG=1") })
	first := d.notes.list()
	readyAt := -1
	for i, n := range first {
		if strings.HasPrefix(n, "READY=1\nSTATUS=1 namespaces, 2 resources, 1 with errors") {
			readyAt = i
		}
	}
	if readyAt < 0 {
		t.Fatalf("no READY=1 with a status line in %q", first)
	}
	d.Reload()
	fixture.Eventually(t, "READY after reload", func() bool {
		all := d.notes.list()
		for i, n := range all {
			if strings.HasPrefix(n, "RELOADING=1\nMONOTONIC_USEC=") {
				for _, m := range all[i+1:] {
					if strings.HasPrefix(m, "READY=1") {
						return true
					}
				}
			}
		}
		return false
	})
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ok",
		"/metrics": `site_controller_resources{kind="Listener",namespace="n",status="Error"} 1`,
	} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %q lacks %q", path, resp.StatusCode, body, want)
		}
	}
	d.stop()
	if last := d.notes.list(); last[len(last)-1] != "STOPPING=1" {
		t.Errorf("last notification %q, want STOPPING=1", last[len(last)-1])
	}
}

// TestResourceSeriesFollowStatuses: a namespace's resource series follow
// its statuses: a Listener fixed leaves the Error series, and another
// namespace's series stay as they were.
func TestResourceSeriesFollowStatuses(t *testing.T) {
	home := t.TempDir()
	res := func(ns string) string { return filepath.Join(namespace.Root(home), ns, "input", "resources") }
	fixture.WriteFile(t, filepath.Join(res("n"), "site.yaml"), fixture.SiteYAML("n"))
	fixture.WriteFile(t, filepath.Join(res("n"), "l.yaml"), fixture.ListenerYAML("bad", 0))
	fixture.WriteFile(t, filepath.Join(res("m"), "site.yaml"), fixture.SiteYAML("m"))
	fixture.WriteFile(t, filepath.Join(res("m"), "l.yaml"), fixture.ListenerYAML("bad", 0))
	d := startDaemon(t, home, func(o *Options) { o.Platform = "none" })
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	metrics := func() string {
		resp, err := srv.Client().Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	errorSeries := func(ns string) string {
		return `site_controller_resources{kind="Listener",namespace="` + ns + `",status="Error"} 1`
	}
	fixture.Eventually(t, "both Listeners in error", func() bool {
		m := metrics()
		return strings.Contains(m, errorSeries("n")) && strings.Contains(m, errorSeries("m"))
	})
	fixture.WriteFile(t, filepath.Join(res("n"), "l.yaml"), fixture.ListenerYAML("good", 41990))
	fixture.Eventually(t, "n's Listener out of the Error series", func() bool {
		m := metrics()
		return !strings.Contains(m, `kind="Listener",namespace="n",status="Error"`) &&
			strings.Contains(m, `kind="Listener",namespace="n",status=`) && strings.Contains(m, errorSeries("m"))
	})
}
