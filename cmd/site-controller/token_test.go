package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/daemon"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
)

// startLinuxDaemon runs the daemon (live, linux platform) on home, with
// a grant server on 127.0.0.1 as run --grant-server runs one when
// withGrants, until the returned stop.
func startLinuxDaemon(t *testing.T, home string, rt runtime.Runtime, withGrants bool) (stop func()) {
	t.Helper()
	opts := controller.Options{DataHome: home, Platform: "linux", Runtimes: map[string]runtime.Runtime{"linux": rt}, Live: true}
	if withGrants {
		srv, err := grants.New(grants.Options{Addr: "127.0.0.1:0", Host: "127.0.0.1", Dir: filepath.Join(home, "grant-server")})
		if err != nil {
			t.Fatal(err)
		}
		opts.Grants = srv
	}
	d, err := daemon.New(daemon.Options{Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.Run(ctx) }()
	if opts.Grants != nil {
		wg.Add(1)
		go func() { defer wg.Done(); opts.Grants.Serve(ctx) }()
	}
	return sync.OnceFunc(func() { cancel(); wg.Wait() })
}

// TestTokenLink: site A accepts links and serves grants (run
// --grant-server); `token issue` on A writes a token, `token redeem` puts
// it into B; B's daemon redeems it, the link comes up, and traffic flows
// B→A and A→B, with the real router. The grant then is used up.
func TestTokenLink(t *testing.T) {
	rt := enginetest.Real(t, "linux")
	home := t.TempDir()
	a, b := fixture.Namespace("tka"), fixture.Namespace("tkb")
	for _, ns := range []string{a, b} {
		t.Cleanup(func() { rt.Remove(context.Background(), ns, fixture.NSDir(home, ns)) })
	}
	start := func() func() { return startLinuxDaemon(t, home, rt, true) }
	stop := start()
	t.Cleanup(func() { stop() })
	t.Cleanup(func() {
		if t.Failed() {
			files, _ := filepath.Glob(filepath.Join(home, "namespaces", "*", "runtime", "resources", "*.yaml"))
			for _, f := range files {
				if s, err := status.Read(f); err == nil {
					t.Logf("%s: %s: %s", f[len(home):], s.Status, s.Message)
				}
			}
		}
	})

	echoA, echoB := routertest.EchoServer(t, nil), routertest.EchoServer(t, nil)
	inA, inB := routertest.FreePort(t), routertest.FreePort(t)
	res := func(ns, file string) string {
		return filepath.Join(fixture.NSDir(home, ns), "input", "resources", file)
	}
	fixture.WriteFile(t, res(a, "site.yaml"), fixture.SiteYAML("a")+
		"---\napiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: a-access\nspec:\n  bindHost: 127.0.0.1\n  roles:\n  - name: inter-router\n  - name: edge\n---\n"+
		fixture.ConnectorYAML("to-a", "svc-a", echoA)+"---\n"+fixture.ListenerYAML("svc-b", inB))
	fixture.WriteFile(t, res(b, "site.yaml"), fixture.SiteYAML("b")+"---\n"+
		fixture.ConnectorYAML("to-b", "svc-b", echoB)+"---\n"+fixture.ListenerYAML("svc-a", inA))
	fixture.EventuallyWithin(t, time.Minute, "both sites running", func() bool { return fixture.SiteReady(home, a, "a")() && fixture.SiteReady(home, b, "b")() })

	token := filepath.Join(t.TempDir(), "token.yaml")
	out, _, err := run(t, "token", "issue", "--data-home", home, a, token)
	if err != nil {
		t.Fatalf("token issue: %v", err)
	}
	if st, err := os.Stat(token); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
	if _, _, err := run(t, "token", "redeem", "--data-home", home, b, token); err != nil {
		t.Fatalf("token redeem: %v", err)
	}
	grant := strings.Fields(out)[1] // "AccessGrant <name> ..."
	fixture.EventuallyWithin(t, 30*time.Second, "token redeemed and the link up", func() bool {
		tk := fixture.StatusOf(home, b, "AccessToken", grant)
		l := fixture.StatusOf(home, b, "Link", grant)
		return tk != nil && tk.Status == status.Ready && tk.Redeemed != nil && *tk.Redeemed && l != nil && l.Status == status.Ready && l.RemoteSiteName == "a"
	})
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	for what, port := range map[string]int{"B→A": inA, "A→B": inB} {
		if err := routertest.RoundTrip(rctx, port, nil); err != nil {
			t.Errorf("traffic %s: %v", what, err)
		}
	}
	fixture.Eventually(t, "the grant used up", func() bool {
		g := fixture.StatusOf(home, a, "AccessGrant", grant)
		return g != nil && g.Redemptions != nil && *g.Redemptions == 1 && g.Status == status.Error && strings.Contains(g.Message, "all 1 redemptions used")
	})
	// a restart redeems nothing again: the grant stays used, the token
	// redeemed, the link up
	stop()
	stop = start()
	fixture.EventuallyWithin(t, 30*time.Second, "after a restart: still linked, nothing redeemed again", func() bool {
		g := fixture.StatusOf(home, a, "AccessGrant", grant)
		tk := fixture.StatusOf(home, b, "AccessToken", grant)
		l := fixture.StatusOf(home, b, "Link", grant)
		return g != nil && g.Redemptions != nil && *g.Redemptions == 1 && tk != nil && tk.Status == status.Ready && l != nil && l.Status == status.Ready
	})
	// the answer is kept under runtime/, never in input/
	if _, err := os.Stat(filepath.Join(fixture.NSDir(home, b), "runtime", "tokens", grant+".yaml")); err != nil {
		t.Error(err)
	}
	if files, _ := filepath.Glob(res(b, "*")); len(files) != 2 {
		t.Errorf("B's input holds %v, want its site.yaml and the token", files)
	}
}
