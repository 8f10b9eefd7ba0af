package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestLiveRefusalIsOneResourcesProblem: when the router refuses one
// entity (here: a Listener's sslProfile was deleted behind the
// controller's back, so re-creating its tcpListener is refused), that
// Listener's status carries the router's answer, the rest of the same
// pass is applied (a new Listener reaches the router, another stays
// Ready), and the refused one is retried after a full read, which puts
// its profile back.
func TestLiveRefusalIsOneResourcesProblem(t *testing.T) {
	l := startLiveSite(t, "linux")
	echo := routertest.EchoServer(t, nil)
	pA, pB, pC, pA2 := routertest.FreePort(t), routertest.FreePort(t), routertest.FreePort(t), routertest.FreePort(t)
	fixture.WriteFile(t, filepath.Join(l.res, "a.yaml"), fixture.ListenerYAML("a", pA)+"  tlsCredentials: a-tls\n")
	fixture.WriteFile(t, filepath.Join(l.res, "b.yaml"), fixture.ListenerYAML("b", pB))
	fixture.WriteFile(t, filepath.Join(l.res, "back.yaml"), fixture.ConnectorYAML("back", "a", echo)+"---\n"+fixture.ConnectorYAML("back-b", "b", echo)+"---\n"+fixture.ConnectorYAML("back-c", "c", echo))
	ready := func(name string) func() bool {
		return func() bool {
			s := fixture.StatusOf(l.home, l.ns, "Listener", name)
			return s != nil && s.Status == status.Ready
		}
	}
	fixture.Eventually(t, "a and b ready", func() bool { return ready("a")() && ready("b")() })

	// behind the controller's back: a's tcpListener and its profile go
	ctx := context.Background()
	for _, e := range [][2]string{{"tcpListener", "listener/a"}, {"sslProfile", "a-tls"}} {
		if err := l.mgmt.Delete(ctx, management.TypeName(e[0]), e[1]); err != nil {
			t.Fatalf("deleting %s %s: %v", e[0], e[1], err)
		}
	}
	// one pass: a moves (re-created with its profile: refused), c is new
	fixture.WriteFile(t, filepath.Join(l.res, "c.yaml"), fixture.ListenerYAML("c", pC))
	fixture.WriteFile(t, filepath.Join(l.res, "a.yaml"), fixture.ListenerYAML("a", pA2)+"  tlsCredentials: a-tls\n")
	var refused *status.Status
	fixture.Eventually(t, "a's status carries the router's refusal", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Listener", "a")
		if s != nil && s.Status == status.Error && strings.Contains(s.Message, "the router refused it") {
			refused = s
			return true
		}
		return false
	})
	if !strings.Contains(refused.Message, "a-tls") {
		t.Errorf("the refusal does not name the missing profile: %s", refused.Message)
	}
	if e := l.entity("tcpListener", "listener/c"); e == nil {
		t.Error("the rest of the pass was not applied: listener/c is not in the router")
	}
	if !ready("b")() {
		t.Errorf("b's status changed: %+v", fixture.StatusOf(l.home, l.ns, "Listener", "b"))
	}
	// retried: the full read finds the profile missing and puts it back
	fixture.Eventually(t, "a retried and ready", ready("a"))
	if e := l.entity("sslProfile", "a-tls"); e == nil {
		t.Error("a's profile was not put back")
	}
}
