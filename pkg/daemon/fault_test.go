package daemon

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/runtime/docker"
	"github.com/site-controller/site-controller/pkg/status"
)

// breakings are the ways a resource file is caught broken: a typo, a slow
// writer (empty, cut short), something that is not a file to read.
var breakings = []struct {
	name  string
	apply func(t *testing.T, path, good string)
}{
	{"syntax error", func(t *testing.T, path, good string) { fixture.WriteFile(t, path, good+"\n  port: [1,\n") }},
	{"empty", func(t *testing.T, path, _ string) { fixture.WriteFile(t, path, "") }},
	{"cut short", func(t *testing.T, path, good string) { fixture.WriteFile(t, path, good[:len(good)/3]+"\n  x: {") }},
	{"named pipe", func(t *testing.T, path, _ string) {
		replaceWith(t, path, func(tmp string) error { return syscall.Mkfifo(tmp, 0o644) })
	}},
	{"symlink loop", func(t *testing.T, path, _ string) {
		replaceWith(t, path, func(tmp string) error { return os.Symlink(filepath.Base(path), tmp) })
	}},
}

// replaceWith makes something at a hidden name beside path and renames it
// over path in one step: a file removed first, even for a moment, is
// positive evidence to a pass that runs in between (the Site gone, its
// router removed), not a broken file.
func replaceWith(t *testing.T, path string, create func(tmp string) error) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	os.Remove(tmp)
	if err := create(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// replaceFile puts content at path in one step (a rename over whatever
// is there): removing the file first would be positive evidence to a pass
// that ran in between that its resources are gone.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	fixture.WriteFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestFaultBrokenSiteFileKeepsRouter: a Site file caught broken in any way
// never removes the running router, not even across a controller restart;
// the Site status names the file; removing the file does.
func TestFaultBrokenSiteFileKeepsRouter(t *testing.T) {
	rt := enginetest.RealDocker(t)
	home := t.TempDir()
	ns := fixture.Namespace("brk")
	t.Cleanup(func() { rt.Remove(context.Background(), ns, fixture.NSDir(home, ns)) })
	opts := func(o *Options) { o.Platform = "docker"; o.Runtimes = map[string]runtime.Runtime{"docker": rt} }
	d := startDaemon(t, home, opts)
	site := filepath.Join(namespace.Root(home), ns, "input", "resources", "site.yaml")
	lport := routertest.FreePort(t)
	good := fixture.SiteYAML("s") + "---\n" + fixture.ListenerYAML("l", lport)
	fixture.WriteFile(t, site, good)
	fixture.Eventually(t, "Site ready", fixture.SiteReady(home, ns, "s"))
	first := waitRouter(t, rt, home, ns, "router running", func(s runtime.State) bool { return s.Running })

	kept := func(what string) {
		t.Helper()
		fixture.Eventually(t, what+": Site status names the broken file", func() bool {
			s := fixture.StatusOf(home, ns, "Site", "s")
			return s != nil && strings.Contains(s.Message, "input/resources/site.yaml is broken since")
		})
		if st, err := rt.State(context.Background(), ns, fixture.NSDir(home, ns)); err != nil || !st.Running || !st.Started.Equal(first.Started) {
			t.Fatalf("%s: the router was touched: %+v %v", what, st, err)
		}
		if !fixture.HasListener(home, ns, "l", lport) {
			t.Fatalf("%s: the broken file's Listener left the configuration", what)
		}
	}
	for _, b := range breakings {
		b.apply(t, site, good)
		kept(b.name)
		replaceFile(t, site, good)
		fixture.Eventually(t, b.name+": fixed", func() bool {
			s := fixture.StatusOf(home, ns, "Site", "s")
			return s != nil && s.Status == status.Ready && !strings.Contains(s.Message, "broken")
		})
	}

	// the last good content outlives the controller
	breakings[0].apply(t, site, good)
	kept("before the restart")
	d.stop()
	startDaemon(t, home, opts)
	kept("after the restart")

	// positive evidence: the file is gone
	os.Remove(site)
	waitRouter(t, rt, home, ns, "router removed with its Site file", func(s runtime.State) bool { return !s.Exists })
}

// TestFaultBrokenListenerFileKeepsEntity: a Listener file that breaks
// keeps its tcpListener in the running router, and the connection through
// it, across a controller restart; its status says since when; a file that
// parses and holds another resource replaces it.
func TestFaultBrokenListenerFileKeepsEntity(t *testing.T) {
	l := startLiveSite(t, "linux")
	echo := routertest.EchoServer(t, nil)
	port := routertest.FreePort(t)
	front := filepath.Join(l.res, "front.yaml")
	good := fixture.ListenerYAML("front", port)
	fixture.WriteFile(t, front, good)
	fixture.WriteFile(t, filepath.Join(l.res, "back.yaml"), fixture.ConnectorYAML("back", "front", echo))
	fixture.Eventually(t, "listener up", func() bool {
		e := l.entity("tcpListener", "listener/front")
		return e != nil && e["operStatus"] == "up"
	})
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ping := func(msg string) {
		t.Helper()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintln(conn, msg)
		buf := make([]byte, len(msg)+1)
		if _, err := conn.Read(buf); err != nil || string(buf) != msg+"\n" {
			t.Fatalf("connection through the listener: %q %v", buf, err)
		}
	}
	ping("before")
	for _, b := range breakings {
		b.apply(t, front, good)
		fixture.Eventually(t, b.name+": Listener status says the file is broken", func() bool {
			s := fixture.StatusOf(l.home, l.ns, "Listener", "front")
			return s != nil && strings.Contains(s.Message, "input/resources/front.yaml is broken since")
		})
		if l.entity("tcpListener", "listener/front") == nil {
			t.Fatalf("%s: the tcpListener was deleted", b.name)
		}
		ping(b.name)
		replaceFile(t, front, good)
	}
	breakings[0].apply(t, front, good)
	fixture.Eventually(t, "broken again", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Listener", "front")
		return s != nil && strings.Contains(s.Message, "is broken since")
	})
	l.d.stop()
	startDaemon(t, l.home, func(o *Options) {
		o.Platform = "linux"
		o.Runtimes = map[string]runtime.Runtime{"linux": l.rt}
		o.Live = true
	})
	var last *status.Status
	defer func() {
		if t.Failed() && last != nil {
			t.Logf("the Listener's last status: %s: %s", last.Status, last.Message)
		}
	}()
	fixture.Eventually(t, "after a restart: status from the new controller", func() bool {
		last = fixture.StatusOf(l.home, l.ns, "Listener", "front")
		return last != nil && last.Status == status.Ready && strings.Contains(last.Message, "is broken since")
	})
	if l.entity("tcpListener", "listener/front") == nil {
		t.Fatal("the tcpListener was deleted after a restart")
	}
	ping("after the restart")

	// parses, and holds something else: the old listener goes
	other := routertest.FreePort(t)
	fixture.WriteFile(t, front, fixture.ListenerYAML("other", other))
	fixture.Eventually(t, "listener replaced", func() bool {
		return l.entity("tcpListener", "listener/front") == nil && l.entity("tcpListener", "listener/other") != nil
	})
}

// TestFaultHungEngine: an engine socket that accepts and never answers
// costs its namespaces a failed pass each (retried with backoff), with the
// reason in the Site status; more such namespaces than workers do not keep
// another namespace from being reconciled, and the daemon stops cleanly.
func TestFaultHungEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "hung.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []net.Conn)
	t.Cleanup(func() {
		l.Close()
		for _, c := range <-done {
			c.Close()
		}
	})
	go func() {
		var held []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				done <- held
				return
			}
			held = append(held, c) // never answered
		}
	}()
	hung, err := docker.New(docker.Options{Endpoint: "unix://" + sock, Image: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	d := startDaemon(t, home, func(o *Options) {
		o.Platform = "docker"
		o.Runtimes = map[string]runtime.Runtime{"docker": hung}
		o.RuntimeTimeout = 500 * time.Millisecond
	})
	for i := range 6 {
		fixture.WriteFile(t, filepath.Join(namespace.Root(home), fmt.Sprintf("hung%d", i), "input", "resources", "site.yaml"), fixture.SiteYAML("s"))
	}
	fixture.Eventually(t, "the hung engine reported", func() bool {
		s := fixture.StatusOf(home, "hung0", "Site", "s")
		return s != nil && s.Status == status.Error && strings.Contains(s.Message, "did not answer within 500ms")
	})
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), "fine", "internal", "platform.yaml"), "platform: linux\n") // no runtime for linux here: rendered only
	fixture.WriteFile(t, filepath.Join(namespace.Root(home), "fine", "input", "resources", "site.yaml"), fixture.SiteYAML("f")+"---\n"+fixture.ListenerYAML("x", 1000))
	fixture.Eventually(t, "another namespace reconciled meanwhile", func() bool { return fixture.HasListener(home, "fine", "x", 1000) })
	stopped := make(chan struct{})
	go func() { d.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon does not stop while an engine hangs")
	}
}

// TestFaultForeignContainer: a container with the router's name that this
// controller did not create for the namespace directory (another data
// home's, or one without our labels) is never removed or replaced: the
// Site status says whose it is and how to free the name; removing the Site
// leaves it alone; once it is gone, the site's own router comes up by
// itself.
func TestFaultForeignContainer(t *testing.T) {
	for _, platform := range []string{"docker", "podman"} {
		t.Run(platform, func(t *testing.T) {
			rt := enginetest.Real(t, platform)
			ctx := context.Background()
			ns := fixture.Namespace("fgn")
			// the same namespace name under another data home
			otherHome := t.TempDir()
			fixture.WriteFile(t, filepath.Join(fixture.NSDir(otherHome, ns), "input", "resources", "site.yaml"), fixture.SiteYAML("other"))
			other, err := controller.New(controller.Options{DataHome: otherHome, Platform: platform}).Reconcile(ctx, ns)
			if err != nil || other.Config == nil {
				t.Fatalf("rendering the other site: %v %v", err, other.Problems)
			}
			hash, err := runtime.InputHash(fixture.NSDir(otherHome, ns))
			if err != nil {
				t.Fatal(err)
			}
			theirs := runtime.Site{Namespace: ns, SiteID: other.SiteID, Dir: fixture.NSDir(otherHome, ns), Hash: hash}
			if _, err := rt.Ensure(ctx, theirs); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rt.Remove(context.Background(), ns, theirs.Dir) })
			before := waitRouter(t, rt, otherHome, ns, "the other home's router", func(s runtime.State) bool { return s.Exists })

			home := t.TempDir()
			t.Cleanup(func() { rt.Remove(context.Background(), ns, fixture.NSDir(home, ns)) })
			d := startDaemon(t, home, func(o *Options) { o.Platform = platform; o.Runtimes = map[string]runtime.Runtime{platform: rt} })
			site := filepath.Join(fixture.NSDir(home, ns), "input", "resources", "site.yaml")
			fixture.WriteFile(t, site, fixture.SiteYAML("s"))
			fixture.Eventually(t, "Site status names the foreign container", func() bool {
				s := fixture.StatusOf(home, ns, "Site", "s")
				return s != nil && s.Status == status.Error &&
					strings.Contains(s.Message, "container "+runtime.ContainerName(ns)+" exists and was not created by site-controller for this site: it belongs to the site in "+theirs.Dir) &&
					strings.Contains(s.Message, platform+" rm -f "+runtime.ContainerName(ns))
			})
			untouched := func(what string) {
				t.Helper()
				st, err := rt.State(ctx, ns, theirs.Dir)
				if err != nil || !st.Exists || !st.Started.Equal(before.Started) {
					t.Fatalf("%s: the foreign container was touched: %+v %v", what, st, err)
				}
			}
			untouched("Site written")
			if _, err := rt.State(ctx, ns, fixture.NSDir(home, ns)); !runtime.IsForeign(err) {
				t.Errorf("State for this site = %v, want a foreign container error", err)
			}

			// removing the Site: nothing of ours to remove
			passes := reconciles(d.Daemon, ns)
			os.Remove(site)
			fixture.Eventually(t, "a pass after the Site went", func() bool { return reconciles(d.Daemon, ns) > passes })
			untouched("Site removed")

			// the name freed: the site's own router comes up unaided
			fixture.WriteFile(t, site, fixture.SiteYAML("s"))
			fixture.Eventually(t, "foreign container reported again", func() bool {
				s := fixture.StatusOf(home, ns, "Site", "s")
				return s != nil && s.Status == status.Error && strings.Contains(s.Message, "was not created by site-controller")
			})
			if err := rt.Remove(ctx, ns, theirs.Dir); err != nil {
				t.Fatal(err)
			}
			freed := time.Now()
			fixture.Eventually(t, "the site's own router once the name is free", fixture.SiteReady(home, ns, "s"))
			t.Logf("recovered %v after the foreign container was removed", time.Since(freed).Round(time.Millisecond))
		})
	}
}

// TestFaultRouterStopped: a router process stopped (SIGSTOP) costs its
// namespace failed live applies, each within the management deadline and
// said in the statuses; its router is not removed or restarted, another
// namespace keeps reconciling, and the change made meanwhile reaches the
// router once it is continued.
func TestFaultRouterStopped(t *testing.T) {
	l := startLiveSiteWith(t, "linux", func(o *Options) { o.ManagementTimeout = time.Second }, nil)
	before, err := l.rt.State(context.Background(), l.ns, fixture.NSDir(l.home, l.ns))
	if err != nil || !before.Running {
		t.Fatalf("router %+v %v", before, err)
	}
	if err := syscall.Kill(before.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	continued := false
	cont := func() {
		if !continued {
			continued = true
			syscall.Kill(before.Pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(cont)

	port := routertest.FreePort(t)
	fixture.WriteFile(t, filepath.Join(l.res, "late.yaml"), fixture.ListenerYAML("late", port))
	fixture.Eventually(t, "the stopped router said in the statuses", func() bool {
		site, late := fixture.StatusOf(l.home, l.ns, "Site", "s"), fixture.StatusOf(l.home, l.ns, "Listener", "late")
		return site != nil && strings.Contains(site.Message, "the router did not answer within 1s (stopped, or overloaded?)") &&
			late != nil && late.Status != status.Ready && strings.Contains(late.Message, "not confirmed by the router")
	})
	other := fixture.Namespace("other")
	fixture.WriteFile(t, filepath.Join(fixture.NSDir(l.home, other), "input", "resources", "l.yaml"), fixture.ListenerYAML("x", 1000))
	fixture.Eventually(t, "another namespace reconciled meanwhile", func() bool { return fixture.StatusOf(l.home, other, "Listener", "x") != nil })
	if st, err := l.rt.State(context.Background(), l.ns, fixture.NSDir(l.home, l.ns)); err != nil || st.Pid != before.Pid || !st.Started.Equal(before.Started) {
		t.Fatalf("the stopped router was touched: %+v %v", st, err)
	}

	cont()
	start := time.Now()
	fixture.Eventually(t, "the change reaches the router once it is continued", func() bool {
		return l.entity("tcpListener", "listener/late") != nil
	})
	fixture.Eventually(t, "statuses recover", func() bool {
		site := fixture.StatusOf(l.home, l.ns, "Site", "s")
		return site != nil && site.Status == status.Ready
	})
	t.Logf("recovered %v after SIGCONT", time.Since(start).Round(time.Millisecond))
}

// checkNoKeyReadable fails the test when a file under dir (input/ aside)
// holds a private key and is readable by group or others.
func checkNoKeyReadable(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.Contains(p, "/input/") {
			return nil
		}
		fi, err := e.Info()
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("%s holds a private key with mode %v", p, fi.Mode().Perm())
		}
		return nil
	})
}

// runtimeFault is a fault of the file system under a namespace's runtime/.
type runtimeFault struct {
	name string
	// prepare runs before the site starts (a mount point under runtime/).
	prepare func(t *testing.T, runtimeDir string)
	// begin starts the fault on a running site; end ends it.
	begin, end func(t *testing.T, runtimeDir string)
}

var runtimeFaults = []runtimeFault{{
	name: "disk full",
	prepare: func(t *testing.T, dir string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "sc-fault", dir).CombinedOutput(); err != nil {
			t.Fatalf("mounting a small tmpfs on %s (needs root): %v %s", dir, err, out)
		}
		t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	},
	begin: func(t *testing.T, dir string) {
		// fill it: dd ends with "no space left"
		exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(dir, "filler"), "bs=64k").Run()
	},
	end: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "filler")) },
}, {
	name: "permission denied",
	begin: func(t *testing.T, dir string) {
		chattr(t, dir, "+i")
		t.Cleanup(func() { chattr(t, dir, "-i") })
	},
	end: func(t *testing.T, dir string) { chattr(t, dir, "-i") },
}}

// chattr sets or clears the immutable attribute of every directory under
// dir: nothing can be created, renamed or removed in them, not even by
// root (permissions do not stop root).
func chattr(t *testing.T, dir, op string) {
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			if out, err := exec.Command("chattr", op, p).CombinedOutput(); err != nil {
				t.Fatalf("chattr %s %s: %v %s", op, p, err, out)
			}
		}
		return nil
	})
}

// TestFaultRuntimeUnwritable: runtime/ full or not writable fails the
// namespace's passes (counted, retried with backoff) without tearing a file
// or exposing a key; its router is not removed; another namespace keeps
// reconciling; once the fault ends, the change made meanwhile lands by
// itself.
func TestFaultRuntimeUnwritable(t *testing.T) {
	for _, f := range runtimeFaults {
		t.Run(f.name, func(t *testing.T) {
			var runtimeDir string
			l := startLiveSiteWith(t, "linux", nil, func(home, ns string) {
				runtimeDir = filepath.Join(fixture.NSDir(home, ns), "runtime")
				if f.prepare != nil {
					f.prepare(t, runtimeDir)
				}
			})
			before, err := l.rt.State(context.Background(), l.ns, fixture.NSDir(l.home, l.ns))
			if err != nil || !before.Running {
				t.Fatalf("router %+v %v", before, err)
			}
			input := testfs.Fingerprint(t, filepath.Join(fixture.NSDir(l.home, l.ns), "input"))
			failures := testutil.ToFloat64(l.daemon().metrics.errors.WithLabelValues(l.ns))
			f.begin(t, runtimeDir)
			port := routertest.FreePort(t)
			fixture.WriteFile(t, filepath.Join(l.res, "late.yaml"), fixture.ListenerYAML("late", port))
			fixture.Eventually(t, "failed passes counted", func() bool {
				return testutil.ToFloat64(l.daemon().metrics.errors.WithLabelValues(l.ns)) > failures+1
			})
			other := fixture.Namespace("other")
			fixture.WriteFile(t, filepath.Join(fixture.NSDir(l.home, other), "input", "resources", "l.yaml"), fixture.ListenerYAML("x", 1000))
			fixture.Eventually(t, "another namespace reconciled meanwhile", func() bool { return fixture.StatusOf(l.home, other, "Listener", "x") != nil })
			if st, err := l.rt.State(context.Background(), l.ns, fixture.NSDir(l.home, l.ns)); err != nil || !st.Running || !st.Started.Equal(before.Started) {
				t.Fatalf("the router was touched: %+v %v", st, err)
			}
			checkNotTorn(t, l.home)
			checkNoKeyReadable(t, l.home)

			f.end(t, runtimeDir)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("Site: %+v", fixture.StatusOf(l.home, l.ns, "Site", "s"))
					t.Logf("Listener: %+v", fixture.StatusOf(l.home, l.ns, "Listener", "late"))
					t.Logf("entity: %v", l.entity("tcpListener", "listener/late"))
				}
			})
			start := time.Now()
			// no event says that space was freed or a mode fixed: the
			// retry finds it, after at most the longest backoff
			fixture.EventuallyWithin(t, maxBackoff+5*time.Second, "the change lands once the fault ends", func() bool {
				s := fixture.StatusOf(l.home, l.ns, "Listener", "late")
				return l.entity("tcpListener", "listener/late") != nil && s != nil &&
					s.Condition(status.Configured) != nil && s.Condition(status.Configured).Status == "True"
			})
			t.Logf("recovered %v after the fault ended", time.Since(start).Round(time.Millisecond))
			var kept []string
			for _, line := range strings.Split(testfs.Fingerprint(t, filepath.Join(fixture.NSDir(l.home, l.ns), "input")), "\n") {
				if !strings.HasPrefix(line, filepath.Join("resources", "late.yaml")+" ") {
					kept = append(kept, line)
				}
			}
			if got := strings.Join(kept, "\n"); got != input {
				t.Errorf("input/ changed beyond the file the test added:\n%s\nwant:\n%s", got, input)
			}
			checkNotTorn(t, l.home)
			checkNoKeyReadable(t, l.home)
		})
	}
}

// inotifyWatchesInUse counts the inotify watches of root's processes: the
// limit fs.inotify.max_user_watches counts per user.
func inotifyWatchesInUse(t *testing.T) int {
	n := 0
	fdinfos, _ := filepath.Glob("/proc/[0-9]*/fdinfo/*")
	for _, f := range fdinfos {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Dir(filepath.Dir(f)), &st) != nil || st.Uid != 0 {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n += strings.Count(string(data), "\ninotify wd:")
	}
	return n
}

// TestFaultWatchLimit: with fs.inotify.max_user_watches exhausted, a new
// namespace's directories go unwatched; the daemon says so (log, metric,
// service status line), finds changes there by rescans, keeps following
// the other namespaces by events, and watches them all again once the
// limit allows.
func TestFaultWatchLimit(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("lowering fs.inotify.max_user_watches needs root")
	}
	const sysctl = "/proc/sys/fs/inotify/max_user_watches"
	orig, err := os.ReadFile(sysctl)
	if err != nil {
		t.Skipf("no %s: %v", sysctl, err)
	}
	restore := func() { os.WriteFile(sysctl, orig, 0o644) }
	t.Cleanup(restore)

	home := t.TempDir()
	fixture.WriteFile(t, filepath.Join(fixture.NSDir(home, "a"), "input", "resources", "site.yaml"), fixture.SiteYAML("a"))
	d := startDaemon(t, home, func(o *Options) { o.UnwatchedRescan = 300 * time.Millisecond })
	fixture.Eventually(t, "namespace a", func() bool { return fixture.StatusOf(home, "a", "Site", "a") != nil })

	if err := os.WriteFile(sysctl, []byte(strconv.Itoa(inotifyWatchesInUse(t)+1)), 0o644); err != nil {
		t.Fatalf("lowering %s: %v", sysctl, err)
	}
	res := filepath.Join(fixture.NSDir(home, "b"), "input", "resources")
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("b")+"---\n"+fixture.ListenerYAML("l", 1001))
	fixture.Eventually(t, "unwatched directories said", func() bool {
		return testutil.ToFloat64(d.metrics.unwatched) > 0 && strings.Contains(strings.Join(d.notes.list(), "|"), "directories unwatched (inotify limit?), rescanned every 300ms")
	})
	fixture.Eventually(t, "namespace b rendered", func() bool { return fixture.HasListener(home, "b", "l", 1001) })
	if d.watch.IsWatched(res) {
		t.Fatalf("%s got a watch under a limit of the watches in use", res)
	}
	fixture.Eventually(t, "quiet", func() bool { return d.queue.Len() == 0 })
	start := time.Now()
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("b")+"---\n"+fixture.ListenerYAML("l", 1002))
	fixture.Eventually(t, "a change in an unwatched directory found by a rescan", func() bool { return fixture.HasListener(home, "b", "l", 1002) })
	t.Logf("change found %v after it was made, without a watch", time.Since(start).Round(time.Millisecond))
	if testutil.ToFloat64(d.metrics.rescans.WithLabelValues("unwatched")) == 0 {
		t.Error("no rescan for the unwatched directories counted")
	}
	fixture.WriteFile(t, filepath.Join(fixture.NSDir(home, "a"), "input", "resources", "l.yaml"), fixture.ListenerYAML("x", 2001))
	fixture.Eventually(t, "the watched namespace still follows its files", func() bool { return fixture.HasListener(home, "a", "x", 2001) })

	restore()
	fixture.Eventually(t, "every directory watched again", func() bool {
		return testutil.ToFloat64(d.metrics.unwatched) == 0 && d.watch.IsWatched(res)
	})
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("b")+"---\n"+fixture.ListenerYAML("l", 1003))
	fixture.Eventually(t, "namespace b follows its files by events again", func() bool { return fixture.HasListener(home, "b", "l", 1003) })
}

// TestFaultTenThousandFiles: 10,000 resource files land in a namespace
// with a running router; another namespace keeps reconciling meanwhile,
// the router ends up with every one of them, and input/ is untouched.
func TestFaultTenThousandFiles(t *testing.T) {
	rt := enginetest.Real(t, "linux")
	home := t.TempDir()
	const big, files = "big", 10000
	t.Cleanup(func() { rt.Remove(context.Background(), big, fixture.NSDir(home, big)) })
	startDaemon(t, home, func(o *Options) { o.Platform = "linux"; o.Runtimes = map[string]runtime.Runtime{"linux": rt} })
	res := filepath.Join(fixture.NSDir(home, big), "input", "resources")
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("s"))
	fixture.Eventually(t, "Site ready", fixture.SiteReady(home, big, "s"))

	start := time.Now()
	for i := range files {
		name := fmt.Sprintf("c%05d", i)
		if err := os.WriteFile(filepath.Join(res, name+".yaml"), []byte(fixture.ConnectorYAML(name, name, 1+i%60000)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	written := time.Since(start)
	input := testfs.Fingerprint(t, filepath.Join(fixture.NSDir(home, big), "input"))
	smallStart := time.Now()
	fixture.WriteFile(t, filepath.Join(fixture.NSDir(home, "small"), "input", "resources", "l.yaml"), fixture.ListenerYAML("x", 1000))
	fixture.Eventually(t, "another namespace reconciled meanwhile", func() bool { return fixture.StatusOf(home, "small", "Listener", "x") != nil })
	small := time.Since(smallStart)

	fixture.EventuallyWithin(t, 2*time.Minute, "every Connector in the running router's configuration", func() bool {
		data, err := os.ReadFile(filepath.Join(fixture.NSDir(home, big), "runtime", "router", "skrouterd.json"))
		return err == nil && strings.Count(string(data), `"tcpConnector"`) == files && fixture.SiteReady(home, big, "s")() &&
			fixture.StatusOf(home, big, "Connector", fmt.Sprintf("c%05d", files-1)) != nil
	})
	t.Logf("%d files written in %v; another namespace reconciled %v after its change; all in the router %v after the first",
		files, written.Round(time.Millisecond), small.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if st, err := rt.State(context.Background(), big, fixture.NSDir(home, big)); err != nil || !st.Running {
		t.Errorf("router %+v %v", st, err)
	}
	if got := testfs.Fingerprint(t, filepath.Join(fixture.NSDir(home, big), "input")); got != input {
		t.Error("input/ changed")
	}
}

// TestFaultHostileFilesRunningSite: all the hostile files at once in a
// namespace whose router runs live: each is named in the Site status, the
// router and its listener are untouched, another namespace keeps
// reconciling, and removing them clears the status.
func TestFaultHostileFilesRunningSite(t *testing.T) {
	l := startLiveSite(t, "linux")
	fixture.WriteFile(t, filepath.Join(l.res, "ok.yaml"), fixture.ListenerYAML("ok", routertest.FreePort(t)))
	fixture.Eventually(t, "listener in the router", func() bool { return l.entity("tcpListener", "listener/ok") != nil })
	before, _ := l.rt.State(context.Background(), l.ns, fixture.NSDir(l.home, l.ns))
	for _, c := range fixture.HostileFiles {
		c.Make(t, filepath.Join(l.res, c.Name))
	}
	fixture.Eventually(t, "every hostile file named in the Site status", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Site", "s")
		if s == nil {
			return false
		}
		for _, c := range fixture.HostileFiles {
			if !strings.Contains(s.Message, "input/resources/"+c.Name) {
				return false
			}
		}
		return true
	})
	other := fixture.Namespace("other")
	fixture.WriteFile(t, filepath.Join(fixture.NSDir(l.home, other), "input", "resources", "l.yaml"), fixture.ListenerYAML("x", 1000))
	fixture.Eventually(t, "another namespace reconciled meanwhile", func() bool { return fixture.StatusOf(l.home, other, "Listener", "x") != nil })
	if st, err := l.rt.State(context.Background(), l.ns, fixture.NSDir(l.home, l.ns)); err != nil || !st.Running || !st.Started.Equal(before.Started) {
		t.Fatalf("the router was touched: %+v %v", st, err)
	}
	if l.entity("tcpListener", "listener/ok") == nil {
		t.Fatal("the listener left the router")
	}
	for _, c := range fixture.HostileFiles {
		os.Remove(filepath.Join(l.res, c.Name))
	}
	fixture.Eventually(t, "Site status clear once they are gone", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Site", "s")
		return s != nil && s.Status == status.Ready && !strings.Contains(s.Message, "input/resources/")
	})
}
