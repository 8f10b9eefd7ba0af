package daemon

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
)

// helperKinds are the goroutines of a namespace's long-lived helpers, by
// a function on their stacks: the network observer, the container
// follower, a token redemption, and the AMQP connections of the live
// session and the observer.
var helperKinds = map[string]*regexp.Regexp{
	"network observer":   regexp.MustCompile(`pkg/netview\.\(\*Observer\)\.run`),
	"container follower": regexp.MustCompile(`pkg/follow\.\(\*Engine\)\.run`),
	"token redemption":   regexp.MustCompile(`pkg/tokens\.\(\*Redemptions\)\.start\.func`),
	"AMQP connection":    regexp.MustCompile(`go-amqp\.\(\*Conn\)\.conn(Reader|Writer)`),
}

// helpers counts the running goroutines of each helper kind.
func helpers() map[string]int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]int{}
	for _, g := range regexp.MustCompile(`\n\n`).Split(string(buf), -1) {
		for kind, re := range helperKinds {
			if re.MatchString(g) {
				out[kind]++
			}
		}
	}
	return out
}

// silentServer accepts connections and never answers them (a grant server
// that hangs), counting them.
func silentServer(t *testing.T) (addr string, accepted *atomic.Int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), accepted
}

// TestNamespaceHelpersEnd: while every kind of long-lived helper of a
// namespace is at work — a token redemption against a grant server that
// accepts and never answers, the follower of the engine's containers for a
// selector, the live management session and the network observer of the
// real router — the namespace is removed, its directory replaced (mv), or
// the daemon stopped: 2 s later none of its helpers runs, the grant server
// sees no new connection, and nothing of the namespace comes back.
func TestNamespaceHelpersEnd(t *testing.T) {
	for _, end := range []string{"removed", "replaced", "shutdown"} {
		t.Run(end, func(t *testing.T) { testNamespaceHelpersEnd(t, end) })
	}
}

func testNamespaceHelpersEnd(t *testing.T, end string) {
	if n := helpers(); len(n) > 0 {
		t.Fatalf("helpers running before the test: %v", n)
	}
	addr, accepted := silentServer(t)
	_, ca, err := certs.NewCA("silent-ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l := startLiveSiteWith(t, "docker", func(o *Options) { o.RedeemTimeout = 300 * time.Millisecond }, nil)
	l.mgmt.Close() // the test's own connection: only the daemon's count
	fixture.WriteFile(t, filepath.Join(l.res, "token.yaml"), tokenYAML("tk", "https://"+addr+"/grant", string(ca.Cert)))
	fixture.WriteFile(t, filepath.Join(l.res, "backend.yaml"), selectorConnectorYAML("backend", "backend", "app=helpers-end-test", false))
	var n map[string]int
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n = helpers()
		if accepted.Load() > 0 && n["network observer"] == 1 && n["container follower"] >= 1 &&
			n["token redemption"] == 1 && n["AMQP connection"] >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every helper at work: %v, grant server connections %d", n, accepted.Load())
		}
	}
	dir := fixture.NSDir(l.home, l.ns)
	var moved string
	switch end {
	case "removed":
		// a pass under way may put a status file into a directory between
		// the removal's listing of it and its rmdir (a namespace
		// directory without input/ gets nothing, but input/ may go last):
		// as with rm -rf, a second go removes it; what matters is that it
		// goes, and stays gone
		err := os.RemoveAll(dir)
		for try := 0; err != nil && try < 3; try++ {
			err = os.RemoveAll(dir)
		}
		if err != nil {
			t.Fatal(err)
		}
	case "replaced":
		// another directory, holding only a Site, takes the name
		fresh := filepath.Join(namespace.Root(l.home), ".fresh")
		fixture.WriteFile(t, filepath.Join(fresh, "input", "resources", "site.yaml"), fixture.SiteYAML("s"))
		moved = filepath.Join(namespace.Root(l.home), ".old")
		if err := os.Rename(dir, moved); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(fresh, dir); err != nil {
			t.Fatal(err)
		}
	case "shutdown":
		l.d.stop()
	}
	time.Sleep(2 * time.Second)
	n = helpers()
	want := map[string]int{}
	if end == "replaced" {
		// the new directory's site runs: its own session and observer
		want = map[string]int{"network observer": n["network observer"], "AMQP connection": n["AMQP connection"]}
		if n["network observer"] > 1 {
			t.Errorf("%d network observers: the old directory's still runs", n["network observer"])
		}
	}
	for kind := range helperKinds {
		if n[kind] != want[kind] {
			t.Errorf("2 s after the namespace was %s: %d %s goroutines still run", end, n[kind], kind)
		}
	}
	// the redemption would have tried again within a second or two
	seen := accepted.Load()
	var before string
	if moved != "" {
		before = testfs.Fingerprint(t, moved)
	}
	watch := 5 * time.Second
	if end == "removed" {
		watch = 30 * time.Second
	}
	for deadline := time.Now().Add(watch); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if end == "removed" {
			if _, err := os.Lstat(dir); err == nil {
				t.Fatalf("the removed namespace directory %s came back", dir)
			}
		}
	}
	if got := accepted.Load(); got != seen {
		t.Errorf("the grant server got %d more connections after the namespace was %s", got-seen, end)
	}
	if moved != "" && testfs.Fingerprint(t, moved) != before {
		t.Error("something was written into the directory that was moved away")
	}
}
