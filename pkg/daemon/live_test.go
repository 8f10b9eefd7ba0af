package daemon

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
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
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
)

// livePlatforms are the platforms the live tests run on, each with the
// real router: skrouterd under the systemd user manager (linux), the
// router image under Docker and under Podman.
var livePlatforms = []string{"linux", "docker", "podman"}

// eachPlatform runs a test once per live platform.
func eachPlatform(t *testing.T, test func(t *testing.T, platform string)) {
	for _, p := range livePlatforms {
		t.Run(p, func(t *testing.T) { test(t, p) })
	}
}

// liveSite runs a daemon with live management (as run does) on a platform
// with the real router, and returns what the tests need to look at the
// router.
type liveSite struct {
	t    testing.TB
	d    *testDaemon
	home string
	ns   string
	res  string // input/resources
	rt   runtime.Runtime
	mgmt *management.Client
}

func startLiveSite(t testing.TB, platform string) *liveSite {
	t.Helper()
	return startLiveSiteWith(t, platform, nil, nil)
}

// startLiveSiteWith is startLiveSite with the daemon's options tweaked and
// prepare run on the namespace before the daemon starts.
func startLiveSiteWith(t testing.TB, platform string, tweak func(*Options), prepare func(home, ns string)) *liveSite {
	t.Helper()
	return startLiveSiteIn(t, platform, fixture.Namespace("live"), tweak, prepare)
}

// startLiveSiteIn is startLiveSiteWith in namespace ns.
func startLiveSiteIn(t testing.TB, platform, ns string, tweak func(*Options), prepare func(home, ns string)) *liveSite {
	t.Helper()
	rt := enginetest.Real(t, platform)
	home := t.TempDir()
	t.Cleanup(func() { rt.Remove(context.Background(), ns, fixture.NSDir(home, ns)) })
	if prepare != nil {
		prepare(home, ns)
	}
	d := startDaemon(t, home, func(o *Options) {
		o.Platform = platform
		o.Runtimes = map[string]runtime.Runtime{platform: rt}
		o.Live = true
		if tweak != nil {
			tweak(o)
		}
	})
	l := &liveSite{t: t, d: d, home: home, ns: ns, rt: rt, res: filepath.Join(namespace.Root(home), ns, "input", "resources")}
	fixture.WriteFile(t, filepath.Join(l.res, "site.yaml"), fixture.SiteYAML("s"))
	// a site prepared with thousands of resources takes its time
	fixture.EventuallyWithin(t, 5*time.Minute, "Site ready", fixture.SiteReady(home, ns, "s"))
	dir, _ := namespace.Open(home, ns)
	cfg, err := live.ManagementTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := os.ReadFile(filepath.Join(dir.Internal(), "management-port"))
	l.mgmt, err = management.Dial(context.Background(), "127.0.0.1:"+strings.TrimSpace(string(port)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.mgmt.Close() })
	return l
}

func (l *liveSite) daemon() *Daemon { return l.d.Daemon }

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

func (l *liveSite) pid() int {
	st, err := l.rt.State(context.Background(), l.ns, fixture.NSDir(l.home, l.ns))
	if err != nil || !st.Running {
		l.t.Fatalf("router not running: %+v %v", st, err)
	}
	return st.Pid
}

// entity reads an entity from the router, nil when it has none.
func (l *liveSite) entity(typ, name string) map[string]any {
	e, err := l.mgmt.Read(context.Background(), management.TypeName(typ), name)
	if err != nil {
		return nil
	}
	return e
}

// echoConn opens a connection to an echo server through 127.0.0.1:port
// and returns a function that sends a line on it and checks the echo.
func echoConn(t testing.TB, port int) func(msg string) error {
	t.Helper()
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rd := bufio.NewReader(conn)
	return func(msg string) error {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, msg+"\n"); err != nil {
			return err
		}
		got, err := rd.ReadString('\n')
		if err != nil || got != msg+"\n" {
			return fmt.Errorf("echo %q: %v", got, err)
		}
		return nil
	}
}

// TestLiveChanges: Listener and Connector files added, changed and deleted
// reach the running router (read back over management) while its process
// stays the same; traffic flows; a connection through an unchanged
// Listener survives unrelated changes; statuses follow the router.
func TestLiveChanges(t *testing.T) { eachPlatform(t, testLiveChanges) }

func testLiveChanges(t *testing.T, platform string) {
	l := startLiveSite(t, platform)
	pid := l.pid()
	echo := routertest.EchoServer(t, nil)
	p1, p2 := routertest.FreePort(t), routertest.FreePort(t)

	// add a Listener and its Connector: present, up, traffic flows
	fixture.WriteFile(t, filepath.Join(l.res, "front.yaml"), fixture.ListenerYAML("front", p1))
	fixture.WriteFile(t, filepath.Join(l.res, "back.yaml"), fixture.ConnectorYAML("back", "front", echo))
	fixture.Eventually(t, "listener in the router", func() bool {
		e := l.entity("tcpListener", "listener/front")
		return e != nil && e["port"] == strconv.Itoa(p1) && e["operStatus"] == "up"
	})
	fixture.Eventually(t, "connector in the router", func() bool { return l.entity("tcpConnector", "connector/back@127.0.0.1") != nil })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, p1, nil); err != nil {
		t.Fatalf("traffic: %v", err)
	}
	fixture.Eventually(t, "statuses Ready and matched", func() bool {
		ls, cs := fixture.StatusOf(l.home, l.ns, "Listener", "front"), fixture.StatusOf(l.home, l.ns, "Connector", "back")
		return ls != nil && cs != nil && ls.Status == status.Ready && cs.Status == status.Ready &&
			ls.HasMatchingConnector != nil && *ls.HasMatchingConnector && cs.HasMatchingListener != nil && *cs.HasMatchingListener
	})

	// a connection open through the listener
	ping := echoConn(t, p1)
	if err := ping("before"); err != nil {
		t.Fatal(err)
	}

	// unrelated changes: a second listener added, then its port changed
	fixture.WriteFile(t, filepath.Join(l.res, "other.yaml"), fixture.ListenerYAML("other", p2))
	fixture.Eventually(t, "second listener", func() bool { return l.entity("tcpListener", "listener/other") != nil })
	p3 := routertest.FreePort(t)
	fixture.WriteFile(t, filepath.Join(l.res, "other.yaml"), fixture.ListenerYAML("other", p3))
	fixture.Eventually(t, "second listener moved", func() bool {
		e := l.entity("tcpListener", "listener/other")
		return e != nil && e["port"] == strconv.Itoa(p3)
	})
	// observer changes in place
	fixture.WriteFile(t, filepath.Join(l.res, "other.yaml"), fixture.ListenerYAML("other", p3)+"  observer: none\n")
	fixture.Eventually(t, "observer updated", func() bool {
		e := l.entity("tcpListener", "listener/other")
		return e != nil && e["observer"] == "none"
	})
	if err := ping("after unrelated changes"); err != nil {
		t.Errorf("the open connection did not survive unrelated changes: %v", err)
	}

	// the peer goes: status back to unmatched, the listener stops
	// accepting
	os.Remove(filepath.Join(l.res, "back.yaml"))
	fixture.Eventually(t, "connector deleted from the router", func() bool { return l.entity("tcpConnector", "connector/back@127.0.0.1") == nil })
	fixture.Eventually(t, "listener unmatched", func() bool {
		ls := fixture.StatusOf(l.home, l.ns, "Listener", "front")
		return ls != nil && ls.Status == status.Pending && ls.HasMatchingConnector != nil && !*ls.HasMatchingConnector
	})
	// delete a listener
	os.Remove(filepath.Join(l.res, "other.yaml"))
	fixture.Eventually(t, "listener deleted from the router", func() bool { return l.entity("tcpListener", "listener/other") == nil })

	// the connector comes back, matched; then its listener goes and the
	// connector is unmatched again
	fixture.WriteFile(t, filepath.Join(l.res, "back.yaml"), fixture.ConnectorYAML("back", "front", echo))
	fixture.Eventually(t, "connector matched again", func() bool {
		cs := fixture.StatusOf(l.home, l.ns, "Connector", "back")
		return cs != nil && cs.Status == status.Ready && cs.HasMatchingListener != nil && *cs.HasMatchingListener
	})
	os.Remove(filepath.Join(l.res, "front.yaml"))
	fixture.Eventually(t, "connector unmatched without its listener", func() bool {
		cs := fixture.StatusOf(l.home, l.ns, "Connector", "back")
		return cs != nil && cs.Status == status.Pending && cs.HasMatchingListener != nil && !*cs.HasMatchingListener
	})

	if got := l.pid(); got != pid {
		t.Errorf("router process changed from %d to %d: a live change restarted it", pid, got)
	}
	// the changes of Listener and Connector files patched the passes
	// before them (the statuses above are a patch's)
	if n := testutil.ToFloat64(l.daemon().metrics.patched.WithLabelValues(l.ns)); n == 0 {
		t.Error("no pass patched the one before it")
	}
	// a change the router cannot take live restarts it, and says so
	fixture.WriteFile(t, filepath.Join(l.res, "site.yaml"), fixture.SiteYAML("s")+"spec:\n  edge: true\n")
	var last *status.Status
	defer func() {
		if t.Failed() && last != nil {
			t.Logf("the Site's last status: %s: %s", last.Status, last.Message)
		}
	}()
	// a restart under a busy engine can take a while: what is asserted
	// is that it happens and is announced
	fixture.EventuallyWithin(t, 30*time.Second, "restart announced", func() bool {
		last = fixture.StatusOf(l.home, l.ns, "Site", "s")
		return last != nil && last.Status == status.Ready && strings.Contains(last.Message, "restarted because the router mode")
	})
	if got := l.pid(); got == pid {
		t.Error("a router mode change did not restart the router")
	}
}

// TestLiveCredentialRotation: a new certificate in input/certs/<name>/
// reaches the running router's listener without a restart.
func TestLiveCredentialRotation(t *testing.T) { eachPlatform(t, testLiveCredentialRotation) }

func testLiveCredentialRotation(t *testing.T, platform string) {
	l := startLiveSite(t, platform)
	pid := l.pid()
	echo := routertest.EchoServer(t, nil)
	port := routertest.FreePort(t)
	userCA, _, err := certs.EnsureCA(filepath.Join(t.TempDir(), "ca"), "rotation-ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	credDir := filepath.Join(l.res, "..", "certs", "front-tls")
	issue := func(cn string) {
		tmp := filepath.Join(t.TempDir(), cn)
		if _, err := certs.EnsureLeaf(tmp, userCA, certs.Leaf{CommonName: cn, Hosts: []string{"127.0.0.1"}, Server: true}, time.Now()); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(credDir, 0o755)
		for _, f := range []string{certs.CAFile, certs.CertFile, certs.KeyFile} {
			data, _ := os.ReadFile(filepath.Join(tmp, f))
			os.WriteFile(filepath.Join(credDir, f), data, 0o600)
		}
	}
	issue("first")
	fixture.WriteFile(t, filepath.Join(l.res, "front.yaml"), fixture.ListenerYAML("front", port)+"  tlsCredentials: front-tls\n")
	fixture.WriteFile(t, filepath.Join(l.res, "back.yaml"), fixture.ConnectorYAML("back", "front", echo))
	pool := x509.NewCertPool()
	pool.AddCert(userCA.Cert)
	servedCN := func() string {
		c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return ""
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	fixture.Eventually(t, "listener serves the first certificate", func() bool { return servedCN() == "first" })
	issue("second")
	fixture.Eventually(t, "listener serves the rotated certificate", func() bool { return servedCN() == "second" })
	if got := l.pid(); got != pid {
		t.Errorf("router restarted (%d -> %d) for a certificate change", pid, got)
	}
}

// TestLiveReconnect: when the router dies and its runtime (systemd, the
// container engine's restart policy) starts it again,
// the controller reconnects and its statuses come back; and what the
// router lost or someone changed behind its back is put back by the next
// pass (the full desired state is diffed, not a change log).
func TestLiveReconnect(t *testing.T) { eachPlatform(t, testLiveReconnect) }

func testLiveReconnect(t *testing.T, platform string) {
	l := startLiveSite(t, platform)
	echo := routertest.EchoServer(t, nil)
	port := routertest.FreePort(t)
	fixture.WriteFile(t, filepath.Join(l.res, "front.yaml"), fixture.ListenerYAML("front", port))
	fixture.WriteFile(t, filepath.Join(l.res, "back.yaml"), fixture.ConnectorYAML("back", "front", echo))
	fixture.Eventually(t, "listener up", func() bool {
		e := l.entity("tcpListener", "listener/front")
		return e != nil && e["operStatus"] == "up"
	})
	// drift: someone deletes the listener over management
	if err := l.mgmt.Delete(context.Background(), management.TypeName("tcpListener"), "listener/front"); err != nil {
		t.Fatal(err)
	}
	d := l.daemon()
	d.Reload()
	fixture.Eventually(t, "listener put back", func() bool { return l.entity("tcpListener", "listener/front") != nil })

	// the router dies; systemd restarts it; the controller reconnects
	old := l.pid()
	if err := syscallKill(old); err != nil {
		t.Fatal(err)
	}
	fixture.WriteFile(t, filepath.Join(l.res, "other.yaml"), fixture.ListenerYAML("other", routertest.FreePort(t)))
	fixture.Eventually(t, "router back", func() bool {
		st, err := l.rt.State(context.Background(), l.ns, fixture.NSDir(l.home, l.ns))
		return err == nil && st.Running && st.Pid != old
	})
	fixture.Eventually(t, "controller reconnected and applied", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Listener", "other")
		return s != nil && s.Condition(status.Configured) != nil && s.Condition(status.Configured).Status == "True" &&
			s.Condition(status.Configured).Message == "in the router"
	})
	fixture.Eventually(t, "Site ready again", fixture.SiteReady(l.home, l.ns, "s"))
}

// TestReloadDuringPasses: SIGHUP (Reload) while passes apply changes to a
// live router is free of data races (run with -race) and loses nothing:
// every Listener written meanwhile ends up in the router.
func TestReloadDuringPasses(t *testing.T) {
	l := startLiveSite(t, "linux")
	done := make(chan struct{})
	reloaded := make(chan int)
	go func() {
		n := 0
		defer func() { reloaded <- n }()
		for {
			select {
			case <-done:
				return
			default:
			}
			l.daemon().Reload()
			n++
			time.Sleep(time.Millisecond)
		}
	}()
	const listeners = 20
	for i := range listeners {
		fixture.WriteFile(t, filepath.Join(l.res, fmt.Sprintf("l%d.yaml", i)), fixture.ListenerYAML(fmt.Sprintf("l%d", i), routertest.FreePort(t)))
		time.Sleep(5 * time.Millisecond)
	}
	missing := func() []string {
		var out []string
		for i := range listeners {
			if l.entity("tcpListener", fmt.Sprintf("listener/l%d", i)) == nil {
				out = append(out, fmt.Sprintf("l%d", i))
			}
		}
		return out
	}
	for deadline := time.Now().Add(10 * time.Second); len(missing()) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(done)
			<-reloaded
			// what the controller says of them, for the next one to look
			for _, name := range missing() {
				s := fixture.StatusOf(l.home, l.ns, "Listener", name)
				t.Logf("Listener/%s not in the router; its status: %+v", name, s)
			}
			t.Logf("Site: %+v; passes %v, failed %v", fixture.StatusOf(l.home, l.ns, "Site", "s"),
				reconciles(l.daemon(), l.ns), testutil.ToFloat64(l.daemon().metrics.errors.WithLabelValues(l.ns)))
			t.Fatal("timed out waiting for every Listener in the router")
		}
	}
	close(done)
	if n := <-reloaded; n < 10 {
		t.Errorf("only %d reloads overlapped the passes", n)
	}
}
