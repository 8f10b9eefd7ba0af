package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestHelloWorldExamples links the two example sites as the README says
// (one `site-controller link generate` into west's input) and sends the
// seed's Hello World request through west's Listener to east's backend,
// with the real router on the linux platform. Three things differ from
// the examples, because tests listen on 127.0.0.1 only and on ports they
// chose: east's RouterAccess binds 127.0.0.1 (a RouterAccess named after
// the Site takes the place of the one linkAccess gives it), and the
// backend and west's Listener use free ports.
func TestHelloWorldExamples(t *testing.T) {
	rt := enginetest.Real(t, "linux")
	home := examples(t)
	ns := func(name string) string { return filepath.Join(home, "namespaces", name) }
	backend := routertest.EchoServer(t, nil)
	front := routertest.FreePort(t)
	replace := func(file, old, new string) {
		data, err := os.ReadFile(file)
		if err != nil || !strings.Contains(string(data), old) {
			t.Fatalf("%s does not say %q: %v", file, old, err)
		}
		fixture.WriteFile(t, file, strings.Replace(string(data), old, new, 1))
	}
	replace(filepath.Join(ns("hello-world-east"), "input", "resources", "connector.yaml"), "port: 8080", fmt.Sprintf("port: %d", backend))
	replace(filepath.Join(ns("hello-world-west"), "input", "resources", "listener.yaml"), "port: 8081", fmt.Sprintf("port: %d", front))
	fixture.WriteFile(t, filepath.Join(ns("hello-world-east"), "input", "resources", "loopback-access.yaml"),
		"apiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: east\nspec:\n  bindHost: 127.0.0.1\n  roles:\n  - name: inter-router\n  - name: edge\n")
	// every example runs (secure-backend too): each router goes with the
	// test
	names, err := namespace.List(home)
	if err != nil || len(names) < 3 {
		t.Fatalf("example namespaces %v: %v", names, err)
	}
	for _, name := range names {
		t.Cleanup(func() {
			if err := rt.Remove(context.Background(), name, ns(name)); err != nil {
				t.Errorf("removing the router of %s: %v", name, err)
			}
		})
	}

	t.Cleanup(startLinuxDaemon(t, home, rt, false))

	fixture.EventuallyWithin(t, time.Minute, "both sites running", func() bool {
		return fixture.SiteReady(home, "hello-world-east", "east")() && fixture.SiteReady(home, "hello-world-west", "west")()
	})
	// the README's one command
	var link string
	fixture.Eventually(t, "a link file from east", func() bool {
		link, _, err = run(t, "link", "generate", "--data-home", home, "hello-world-east")
		return err == nil
	})
	if !strings.Contains(link, "host: 127.0.0.1") {
		t.Fatalf("the link file does not point at 127.0.0.1:\n%s", link)
	}
	fixture.WriteFile(t, filepath.Join(ns("hello-world-west"), "input", "resources", "link-to-east.yaml"), link)

	fixture.EventuallyWithin(t, 30*time.Second, "the seed's Hello World: west's Listener and east's Connector matched", func() bool {
		l := fixture.StatusOf(home, "hello-world-west", "Listener", "backend")
		c := fixture.StatusOf(home, "hello-world-east", "Connector", "backend")
		return l != nil && c != nil && l.Status == status.Ready && c.Status == status.Ready
	})
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	if err := routertest.RoundTrip(rctx, front, nil); err != nil {
		t.Fatalf("a request through west's Listener did not reach east's backend: %v", err)
	}
	var out string
	fixture.Eventually(t, "status --network shows both sites and the link", func() bool {
		out, _, err = run(t, "status", "--data-home", home, "--network", "hello-world-west")
		return err == nil && strings.Contains(out, "2 site(s) in the network") && strings.Contains(out, "link-east→east (up)")
	})
	t.Logf("status --network:\n%s", out)
}
