package daemon

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/status"
)

// selectorConnectorYAML is the seed's Connector shape (a selector and a
// port, no host), plus a test label that keeps other runs' containers out.
func selectorConnectorYAML(name, key, selector string, includeNotReady bool) string {
	return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: %s\nspec:\n  routingKey: %s\n  selector: %s\n  port: 8080\n  includeNotReadyPods: %t\n",
		name, key, selector, includeNotReady)
}

// selected returns the names of the containers a resource's status lists.
func selected(home, ns, kind, name string) []string {
	s := fixture.StatusOf(home, ns, kind, name)
	if s == nil {
		return nil
	}
	var out []string
	for _, p := range s.SelectedPods {
		out = append(out, p.Name)
	}
	return out
}

// answersOnly tells whether n connections through port are all answered
// by one of names, and every one of names answers among them.
func answersOnly(port, n int, names ...string) bool {
	seen := map[string]bool{}
	for range n {
		got := whoAnswers(port)
		if !slices.Contains(names, got) {
			return false
		}
		seen[got] = true
	}
	return len(seen) == len(names)
}

// TestSelectorPicksContainers: the seed's Connector (selector, port, no
// host) on docker and podman connects the router to every running
// container it selects, and follows containers stopping, starting, their
// health and their labels, live, without restarting the router.
func TestSelectorPicksContainers(t *testing.T) {
	for _, platform := range []string{"docker", "podman"} {
		t.Run(platform, func(t *testing.T) { testSelectorPicksContainers(t, platform) })
	}
}

func testSelectorPicksContainers(t *testing.T, platform string) {
	backends := enginetest.NewBackends(t, platform)
	l := startLiveSite(t, platform)
	pid := l.pid()
	net := backends.Network
	name := func(s string) string { return net + "-" + s }
	labels := map[string]string{"app": "backend", "sc-test": net}
	backends.Start(enginetest.Backend{Name: name("one"), Labels: labels})
	backends.Start(enginetest.Backend{Name: name("two"), Labels: labels})

	sel := "app=backend,sc-test=" + net
	connector := filepath.Join(l.res, "backend.yaml")
	fixture.WriteFile(t, connector, selectorConnectorYAML("backend", "backend", sel, false))
	port := routertest.FreePort(t)
	fixture.WriteFile(t, filepath.Join(l.res, "listener.yaml"), strings.Replace(fixture.ListenerYAML("backend", port), "routingKey: backend", "routingKey: backend", 1))

	fixture.Eventually(t, "both containers answer", func() bool { return answersOnly(port, 12, name("one"), name("two")) })
	fixture.Eventually(t, "status: both containers selected", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Connector", "backend")
		return s != nil && s.Status == status.Ready && slices.Equal(selected(l.home, l.ns, "Connector", "backend"), []string{name("one"), name("two")})
	})
	if got := l.entity("tcpConnector", "connector/backend@"+name("one")); got == nil || got["port"] != "8080" {
		t.Errorf("the router's tcpConnector for %s: %v", name("one"), got)
	}

	// one stops: the other takes every connection
	backends.Stop(name("one"))
	fixture.Eventually(t, "only the second answers", func() bool { return answersOnly(port, 6, name("two")) })
	fixture.Eventually(t, "status: one container selected", func() bool {
		return slices.Equal(selected(l.home, l.ns, "Connector", "backend"), []string{name("two")})
	})

	// an unhealthy container is left out, until not-ready ones are asked for
	backends.Start(enginetest.Backend{Name: name("sick"), Labels: labels, Health: "fail"})
	backends.CheckHealth(name("sick"))
	fixture.Eventually(t, "status: the unhealthy one left out", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Connector", "backend")
		return s != nil && strings.Contains(s.Message, "not ready, left out: "+name("sick")+" (unhealthy)")
	})
	for range 10 {
		if got := whoAnswers(port); got != name("two") {
			t.Fatalf("%q answered; only %s is running and healthy", got, name("two"))
		}
	}
	fixture.WriteFile(t, connector, selectorConnectorYAML("backend", "backend", sel, true))
	fixture.Eventually(t, "the unhealthy one answers with includeNotReadyPods", func() bool { return answersOnly(port, 12, name("two"), name("sick")) })

	// labels: a container made again without the label is out, one with
	// it is in
	backends.Remove(name("two"))
	backends.Start(enginetest.Backend{Name: name("two"), Labels: map[string]string{"app": "other", "sc-test": net}})
	backends.Start(enginetest.Backend{Name: name("three"), Labels: labels})
	fixture.Eventually(t, "the relabelled one is out, the new one in", func() bool { return answersOnly(port, 12, name("sick"), name("three")) })

	// nothing matches: the status says so
	backends.Remove(name("sick"))
	backends.Remove(name("three"))
	fixture.Eventually(t, "status: nothing matches", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Connector", "backend")
		return s != nil && s.Status == status.Pending && s.Message == "no running container matches "+sel && len(s.SelectedPods) == 0
	})
	if got := l.pid(); got != pid {
		t.Errorf("the router restarted (pid %d → %d) for container changes", pid, got)
	}
}
