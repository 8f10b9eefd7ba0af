package daemon

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/status"
)

func tokenYAML(name, url, ca string) string {
	return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: AccessToken\nmetadata:\n  name: %s\nspec:\n  url: %s\n  code: abcdefghijkl\n  ca: |\n    %s\n",
		name, url, strings.ReplaceAll(strings.TrimSpace(ca), "\n", "\n    "))
}

// TestTokenRedemptionFailures: tokens whose grant server is down, hangs,
// presents a certificate their CA did not sign, or refuses, each get a
// clear status; the first three are retried with backoff, the refusal is
// not; and another namespace's changes are reconciled meanwhile as ever.
func TestTokenRedemptionFailures(t *testing.T) {
	home := t.TempDir()
	startDaemon(t, home, func(o *Options) { o.RedeemTimeout = 500 * time.Millisecond })
	srv, err := grants.New(grants.Options{Addr: "127.0.0.1:0", Host: "127.0.0.1", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	other, err := grants.New(grants.Options{Addr: "127.0.0.1:0", Host: "127.0.0.1", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	// a server that accepts connections and never answers
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	down := routertest.FreePort(t)
	cases := []struct {
		ns, url, ca string
		want        string
		status      string
	}{
		{"down", fmt.Sprintf("https://127.0.0.1:%d/x", down), srv.CA(), "connection refused", status.Pending},
		{"hang", "https://" + hang.Addr().String() + "/x", srv.CA(), "deadline exceeded", status.Pending},
		{"wrongca", srv.URL("x"), other.CA(), "certificate signed by unknown authority", status.Pending},
		{"refused", srv.URL("nosuch"), srv.CA(), "the grant server refused: 404", status.Error},
	}
	res := func(ns, f string) string { return filepath.Join(namespace.Root(home), ns, "input", "resources", f) }
	for _, c := range cases {
		fixture.WriteFile(t, res(c.ns, "site.yaml"), fixture.SiteYAML("s")+"---\n"+tokenYAML("tk", c.url, c.ca))
	}
	msgs := map[string]string{}
	for _, c := range cases {
		fixture.Eventually(t, c.ns+": "+c.want, func() bool {
			s := fixture.StatusOf(home, c.ns, "AccessToken", "tk")
			if s != nil && s.Status == c.status && strings.Contains(s.Message, c.want) {
				msgs[c.ns] = s.Message
				return true
			}
			return false
		})
	}
	if !strings.Contains(msgs["refused"], "not retried") || !strings.Contains(msgs["down"], "retrying at") {
		t.Errorf("refusal %q, failure %q", msgs["refused"], msgs["down"])
	}
	// another namespace is reconciled meanwhile, as ever
	fixture.WriteFile(t, res("busy", "site.yaml"), fixture.SiteYAML("s")+"---\n"+fixture.ListenerYAML("l", 45123))
	fixture.EventuallyWithin(t, 2*time.Second, "another namespace reconciled", func() bool { return fixture.StatusOf(home, "busy", "Listener", "l") != nil })
	// the failures are retried: the next try moves on
	fixture.EventuallyWithin(t, 10*time.Second, "a retry of the token whose server is down", func() bool {
		s := fixture.StatusOf(home, "down", "AccessToken", "tk")
		return s != nil && s.Message != msgs["down"] && strings.Contains(s.Message, "retrying at")
	})
	if s := fixture.StatusOf(home, "refused", "AccessToken", "tk"); s == nil || s.Message != msgs["refused"] {
		t.Errorf("a refused token changed: %+v", s)
	}
}
