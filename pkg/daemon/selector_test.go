package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
)

// eachEngine runs a test once per container engine: selectors select
// containers on docker and podman.
func eachEngine(t *testing.T, test func(t *testing.T, platform string)) {
	for _, p := range []string{"docker", "podman"} {
		t.Run(p, func(t *testing.T) { test(t, p) })
	}
}

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
func TestSelectorPicksContainers(t *testing.T) { eachEngine(t, testSelectorPicksContainers) }

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
	fixture.WriteFile(t, filepath.Join(l.res, "listener.yaml"), fixture.ListenerYAML("backend", port))

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

// TestAttachedConnector: an AttachedConnector in a team's namespace
// directory (no Site) and the AttachedConnectorBinding of the same name in
// the site's connect the site's router to the containers it selects only
// while both name each other; each side's status says whether the other
// agrees, and a change on the team's side reaches the site's router.
func TestAttachedConnector(t *testing.T) { eachEngine(t, testAttachedConnector) }

func testAttachedConnector(t *testing.T, platform string) {
	backends := enginetest.NewBackends(t, platform)
	l := startLiveSite(t, platform)
	pid := l.pid()
	net := backends.Network
	db := net + "-db"
	backends.Start(enginetest.Backend{Name: db, Labels: map[string]string{"app": "db", "sc-test": net}})

	team := fixture.Namespace("team")
	attached := filepath.Join(namespace.Root(l.home), team, "input", "resources", "db.yaml")
	attachedYAML := func(site string) string {
		return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: AttachedConnector\nmetadata:\n  name: db\nspec:\n  siteNamespace: %s\n  selector: app=db,sc-test=%s\n  port: 8080\n", site, net)
	}
	fixture.WriteFile(t, attached, attachedYAML(l.ns))
	fixture.WriteFile(t, filepath.Join(l.res, "binding.yaml"), fmt.Sprintf(
		"apiVersion: skupper.io/v2alpha1\nkind: AttachedConnectorBinding\nmetadata:\n  name: db\nspec:\n  connectorNamespace: %s\n  routingKey: db\n", team))
	port := routertest.FreePort(t)
	fixture.WriteFile(t, filepath.Join(l.res, "listener.yaml"), fixture.ListenerYAML("db", port))
	entity := "attachedConnector/" + team + "/db@" + db

	fixture.Eventually(t, "the attached container answers", func() bool { return whoAnswers(port) == db })
	fixture.Eventually(t, "both statuses: bound", func() bool {
		b := fixture.StatusOf(l.home, l.ns, "AttachedConnectorBinding", "db")
		a := fixture.StatusOf(l.home, team, "AttachedConnector", "db")
		return b != nil && b.Status == status.Ready && b.HasMatchingListener != nil && *b.HasMatchingListener &&
			slices.Equal(selected(l.home, l.ns, "AttachedConnectorBinding", "db"), []string{db}) &&
			a != nil && a.Status == status.Ready && a.Message == "bound to the site of namespace "+l.ns+" with routing key db" &&
			slices.Equal(selected(l.home, team, "AttachedConnector", "db"), []string{db})
	})
	if l.entity("tcpConnector", entity) == nil {
		t.Fatalf("no tcpConnector %s in the router", entity)
	}

	// the team's side names another site: the site's side stops
	fixture.WriteFile(t, attached, attachedYAML("elsewhere"))
	fixture.Eventually(t, "the binding says why it binds nothing", func() bool {
		b := fixture.StatusOf(l.home, l.ns, "AttachedConnectorBinding", "db")
		return b != nil && b.Status == status.Pending &&
			b.Message == "AttachedConnector db in namespace "+team+" is for the site of namespace elsewhere, not this one"
	})
	fixture.Eventually(t, "the router's connector is gone", func() bool { return l.entity("tcpConnector", entity) == nil })
	// the team's namespace has a pass of its own, which may come after
	fixture.Eventually(t, "the AttachedConnector says the site it names is missing", func() bool {
		a := fixture.StatusOf(l.home, team, "AttachedConnector", "db")
		return a != nil && a.Status == status.Pending && a.Message == "no namespace directory elsewhere (spec.siteNamespace) with input/resources"
	})

	// agreed again, then the team's AttachedConnector goes
	fixture.WriteFile(t, attached, attachedYAML(l.ns))
	fixture.Eventually(t, "the attached container answers again", func() bool { return whoAnswers(port) == db })
	if err := os.Remove(attached); err != nil {
		t.Fatal(err)
	}
	fixture.Eventually(t, "the router's connector is gone with the AttachedConnector", func() bool { return l.entity("tcpConnector", entity) == nil })
	fixture.Eventually(t, "the binding says the AttachedConnector is missing", func() bool {
		b := fixture.StatusOf(l.home, l.ns, "AttachedConnectorBinding", "db")
		return b != nil && b.Status == status.Pending && b.Message == "no AttachedConnector db in namespace directory "+team
	})
	if got := l.pid(); got != pid {
		t.Errorf("the router restarted (pid %d → %d)", pid, got)
	}
}

// TestSeedHelloWorldConnector: the Connector of the seed's Hello World
// example, verbatim (selector app=backend, port 8080, in namespace
// hello-world-east), serves a container labelled app=backend on docker
// and podman.
func TestSeedHelloWorldConnector(t *testing.T) {
	const seed = `apiVersion: skupper.io/v2alpha1
kind: Connector
metadata:
  name: backend
  namespace: hello-world-east
spec:
  routingKey: backend
  selector: app=backend
  port: 8080
`
	eachEngine(t, func(t *testing.T, platform string) {
		backends := enginetest.NewBackends(t, platform)
		name := backends.Network + "-backend"
		backends.Start(enginetest.Backend{Name: name, Labels: map[string]string{"app": "backend"}})
		l := startLiveSiteIn(t, platform, "hello-world-east", nil, nil)
		fixture.WriteFile(t, filepath.Join(l.res, "connector.yaml"), seed)
		port := routertest.FreePort(t)
		fixture.WriteFile(t, filepath.Join(l.res, "listener.yaml"), fixture.ListenerYAML("backend", port))
		fixture.Eventually(t, "the labelled container answers", func() bool { return whoAnswers(port) == name })
		fixture.Eventually(t, "status: Ready, the container selected", func() bool {
			s := fixture.StatusOf(l.home, l.ns, "Connector", "backend")
			return s != nil && s.Status == status.Ready && slices.Equal(selected(l.home, l.ns, "Connector", "backend"), []string{name})
		})
	})
}

// TestSelectorEngineInterrupted: while the engine cannot be reached the
// selected containers stay connected (and the status says they are as
// last listed); when it is back, a container started meanwhile is found.
func TestSelectorEngineInterrupted(t *testing.T) {
	direct := enginetest.RealDocker(t)
	backends := enginetest.NewBackends(t, "docker")
	rt, proxy := proxiedDocker(t)
	l := startLiveSiteIn(t, "docker", fixture.Namespace("interrupted"), func(o *Options) {
		o.Runtimes = map[string]runtime.Runtime{"docker": rt}
	}, nil)
	t.Cleanup(func() { direct.Remove(context.Background(), l.ns, fixture.NSDir(l.home, l.ns)) })
	net := backends.Network
	labels := map[string]string{"app": "backend", "sc-test": net}
	backends.Start(enginetest.Backend{Name: net + "-one", Labels: labels})
	fixture.WriteFile(t, filepath.Join(l.res, "backend.yaml"), selectorConnectorYAML("backend", "backend", "app=backend,sc-test="+net, false))
	port := routertest.FreePort(t)
	fixture.WriteFile(t, filepath.Join(l.res, "listener.yaml"), fixture.ListenerYAML("backend", port))
	fixture.Eventually(t, "the container answers", func() bool { return whoAnswers(port) == net+"-one" })

	proxy.stop()
	backends.Start(enginetest.Backend{Name: net + "-two", Labels: labels})
	fixture.Eventually(t, "status: as last listed", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Connector", "backend")
		return s != nil && strings.Contains(s.Message, "the containers as last listed (docker at unix://"+proxy.path+" is not reachable")
	})
	if !answersOnly(port, 6, net+"-one") {
		t.Error("the selected container does not answer alone while the engine is away")
	}
	proxy.start(t)
	fixture.EventuallyWithin(t, 40*time.Second, "the container started meanwhile answers too", func() bool { return answersOnly(port, 12, net+"-one", net+"-two") })
}
