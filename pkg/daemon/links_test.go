package daemon

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
	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
)

// network runs one daemon (live, on one platform, with the real router)
// for several sites of this host, each its own namespace, to link them.
type network struct {
	t    testing.TB
	home string
	rt   runtime.Runtime
	nss  []string
}

func startNetwork(t testing.TB, platform string) *network {
	t.Helper()
	rt := enginetest.Real(t, platform)
	n := &network{t: t, home: t.TempDir(), rt: rt}
	// registered before the daemon starts, so it runs after the daemon
	// stopped: a running daemon would start the routers again
	t.Cleanup(func() {
		for _, ns := range n.nss {
			rt.Remove(context.Background(), ns, fixture.NSDir(n.home, ns))
		}
	})
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// what each resource said, to see why
		files, _ := filepath.Glob(filepath.Join(namespace.Root(n.home), "*", "runtime", "resources", "*.yaml"))
		for _, f := range files {
			if s, err := status.Read(f); err == nil {
				t.Logf("%s: %s: %s", f[len(namespace.Root(n.home))+1:], s.Status, s.Message)
			}
		}
	})
	startDaemon(t, n.home, func(o *Options) {
		o.Platform = platform
		o.Runtimes = map[string]runtime.Runtime{platform: rt}
		o.Live = true
	})
	return n
}

// site adds a namespace with Site name (and more resources) and waits
// for its router; it returns the namespace.
func (n *network) site(name, spec string, more ...string) string {
	n.t.Helper()
	ns := fixture.Namespace(name)
	n.nss = append(n.nss, ns)
	doc := fixture.SiteYAML(name) + spec
	for _, m := range more {
		doc += "---\n" + m
	}
	fixture.WriteFile(n.t, n.res(ns, "site.yaml"), doc)
	fixture.EventuallyWithin(n.t, time.Minute, "Site "+name+" ready", fixture.SiteReady(n.home, ns, name))
	return ns
}

func (n *network) res(ns, file string) string {
	return filepath.Join(namespace.Root(n.home), ns, "input", "resources", file)
}

// accessAt is a RouterAccess on 127.0.0.1 (tests listen there only), its
// ports chosen by the controller.
func accessAt(name string, roles ...string) string {
	doc := fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: %s\nspec:\n  bindHost: 127.0.0.1\n  roles:\n", name)
	for _, r := range roles {
		doc += "  - name: " + r + "\n"
	}
	return doc
}

// link copies the link file of from's RouterAccess ra into to's input
// as file, as a user would, and returns its path there.
func (n *network) link(from, ra, to, file string) string {
	n.t.Helper()
	src := filepath.Join(namespace.Root(n.home), from, "runtime", "links", "link-"+ra+"-127.0.0.1.yaml")
	var data []byte
	fixture.Eventually(n.t, "link file "+src, func() bool {
		var err error
		data, err = os.ReadFile(src)
		return err == nil
	})
	dst := n.res(to, file)
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		n.t.Fatal(err)
	}
	return dst
}

func (n *network) status(ns, kind, name string) *status.Status {
	return fixture.StatusOf(n.home, ns, kind, name)
}

func ready(s *status.Status) bool { return s != nil && s.Status == status.Ready }

// TestLinkedSites: two sites of this host, one link file copied from the
// one that accepts links into the other's input: traffic from a Listener
// in one to a Connector in the other; the Link is Ready with the remote
// site's name, both hasMatching* are true across the sites, the Sites see
// each other; removing the link file stops the traffic and the statuses
// follow. On every live platform.
func TestLinkedSites(t *testing.T) { eachPlatform(t, testLinkedSites) }

func testLinkedSites(t *testing.T, platform string) {
	n := startNetwork(t, platform)
	echo := routertest.EchoServer(t, nil)
	east := n.site("east", "", accessAt("east-access", "inter-router", "edge"), fixture.ConnectorYAML("backend", "hello", echo))
	port := routertest.FreePort(t)
	west := n.site("west", "", fixture.ListenerYAML("hello", port))

	// nothing links them yet: the Listener has no connector anywhere
	fixture.Eventually(t, "the unlinked Listener confirmed unmatched", func() bool {
		s := n.status(west, "Listener", "hello")
		return s != nil && s.HasMatchingConnector != nil && !*s.HasMatchingConnector
	})
	linkFile := n.link(east, "east-access", west, "link.yaml")
	// the remote site's name and what it serves come from its router's
	// records, found by its beacon: every 10 s (README, Known limitations)
	fixture.EventuallyWithin(t, discovery, "Link Ready with the remote site", func() bool {
		s := n.status(west, "Link", "link-east-access")
		return ready(s) && s.RemoteSiteName == "east" && s.RemoteSiteID != ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, port, nil); err != nil {
		t.Fatalf("traffic from west's Listener to east's Connector: %v", err)
	}
	fixture.EventuallyWithin(t, discovery, "both hasMatching* true across the sites", func() bool {
		l, c := n.status(west, "Listener", "hello"), n.status(east, "Connector", "backend")
		return ready(l) && ready(c) && l.HasMatchingConnector != nil && *l.HasMatchingConnector && c.HasMatchingListener != nil && *c.HasMatchingListener
	})
	fixture.EventuallyWithin(t, discovery, "each Site sees both", func() bool {
		for _, ns := range []string{east, west} {
			name := map[string]string{east: "east", west: "west"}[ns]
			s := n.status(ns, "Site", name)
			if s == nil || s.SitesInNetwork == nil || *s.SitesInNetwork != 2 || len(s.Network) != 2 {
				return false
			}
		}
		return true
	})
	if ra := n.status(east, "RouterAccess", "east-access"); !ready(ra) || len(ra.Endpoints) != 2 || ra.Endpoints[0].Host != "127.0.0.1" {
		t.Errorf("RouterAccess status: %+v", ra)
	}

	// the link file goes: traffic stops, the statuses follow
	os.Remove(linkFile)
	fixture.Eventually(t, "Listener unmatched without the link", func() bool {
		s := n.status(west, "Listener", "hello")
		return s != nil && s.Status == status.Pending && s.HasMatchingConnector != nil && !*s.HasMatchingConnector
	})
	fixture.Eventually(t, "Connector unmatched without the link", func() bool {
		s := n.status(east, "Connector", "backend")
		return s != nil && s.Status == status.Pending && s.HasMatchingListener != nil && !*s.HasMatchingListener
	})
	fixture.Eventually(t, "the Link's status gone", func() bool { return n.status(west, "Link", "link-east-access") == nil })
	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if err := routertest.RoundTrip(short, port, nil); err == nil {
		t.Error("traffic still flows without the link")
	}
}

// TestEdgeAndChain: an edge site linked to an interior one; three interior
// sites in a line (A–B–C) with traffic A→C; a link added and removed while
// a TCP connection through another link stays open.
func TestEdgeAndChain(t *testing.T) { eachPlatform(t, testEdgeAndChain) }

func testEdgeAndChain(t *testing.T, platform string) {
	n := startNetwork(t, platform)
	echo := routertest.EchoServer(t, nil)
	c := n.site("c", "", accessAt("c-access", "inter-router", "edge"), fixture.ConnectorYAML("backend", "svc", echo))
	pEdge := routertest.FreePort(t)
	e := n.site("e", "spec:\n  edge: true\n", fixture.ListenerYAML("svc", pEdge))
	n.link(c, "c-access", e, "link.yaml")
	fixture.Eventually(t, "edge Link Ready", func() bool {
		s := n.status(e, "Link", "link-c-access")
		return ready(s) && s.RemoteSiteName == "c"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, pEdge, nil); err != nil {
		t.Fatalf("traffic from the edge site: %v", err)
	}

	// A–B–C: A links to B, B to C; A's Listener reaches C's Connector.
	// B accepts links from a RouterAccess added while its router runs:
	// taken live, no restart
	b := n.site("b", "")
	bBefore, _ := n.rt.State(context.Background(), b, fixture.NSDir(n.home, b))
	fixture.WriteFile(t, n.res(b, "access.yaml"), accessAt("b-access", "inter-router"))
	fixture.Eventually(t, "B's RouterAccess in its router", func() bool { return ready(n.status(b, "RouterAccess", "b-access")) })
	if bAfter, _ := n.rt.State(context.Background(), b, fixture.NSDir(n.home, b)); bAfter.Pid != bBefore.Pid || !bAfter.Started.Equal(bBefore.Started) {
		t.Errorf("B's router restarted for a RouterAccess: %+v → %+v", bBefore, bAfter)
	}
	pA := routertest.FreePort(t)
	a := n.site("a", "", fixture.ListenerYAML("svc", pA))
	n.link(c, "c-access", b, "link.yaml")
	n.link(b, "b-access", a, "link.yaml")
	if err := routertest.RoundTrip(ctx, pA, nil); err != nil {
		t.Fatalf("traffic A→C through B: %v", err)
	}
	fixture.Eventually(t, "A sees four sites, the edge included", func() bool {
		s := n.status(a, "Site", "a")
		return s != nil && s.SitesInNetwork != nil && *s.SitesInNetwork == 4
	})

	// a connection through A–B–C stays open while a link elsewhere comes
	// and goes
	ping := echoConn(t, pA)
	if err := ping("before"); err != nil {
		t.Fatal(err)
	}
	extra := n.link(c, "c-access", a, "extra-link.yaml")
	fixture.Eventually(t, "a second link from A", func() bool {
		s := n.status(a, "Link", "link-c-access")
		return ready(s) && s.RemoteSiteName == "c"
	})
	if err := ping("with a link added"); err != nil {
		t.Errorf("the open connection did not survive a link added: %v", err)
	}
	os.Remove(extra)
	fixture.Eventually(t, "the second link gone", func() bool { return n.status(a, "Link", "link-c-access") == nil })
	if err := ping("with the link removed"); err != nil {
		t.Errorf("the open connection did not survive a link removed: %v", err)
	}
}

// TestLinkCredentialRotation: a new client certificate in a link's Secret
// (the accepting site issued a new one, the user copied the new link
// file) reaches the running router as a new profile ordinal: no restart,
// the link stays, traffic flows.
func TestLinkCredentialRotation(t *testing.T) {
	n := startNetwork(t, "linux")
	echo := routertest.EchoServer(t, nil)
	east := n.site("east", "", accessAt("east-access", "inter-router"), fixture.ConnectorYAML("backend", "hello", echo))
	port := routertest.FreePort(t)
	west := n.site("west", "", fixture.ListenerYAML("hello", port))
	n.link(east, "east-access", west, "link.yaml")
	fixture.Eventually(t, "linked", func() bool { return ready(n.status(west, "Link", "link-east-access")) })
	before, err := n.rt.State(context.Background(), west, fixture.NSDir(n.home, west))
	if err != nil || !before.Running {
		t.Fatalf("west's router: %+v %v", before, err)
	}
	dir, _ := namespace.Open(n.home, west)
	cfg, err := live.ManagementTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	mport, _ := os.ReadFile(filepath.Join(dir.Internal(), "management-port"))
	mgmt, err := management.Dial(context.Background(), "127.0.0.1:"+strings.TrimSpace(string(mport)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer mgmt.Close()
	ordinal := func() int64 {
		e, err := mgmt.Read(context.Background(), management.TypeName("sslProfile"), "link-east-access-profile")
		if err != nil {
			return -1
		}
		o, _ := e["ordinal"].(int64)
		return o
	}
	first := ordinal()

	// east issues a new client certificate (its old one is gone): a new
	// link file, copied over the old one
	eastDir, _ := namespace.Open(n.home, east)
	linkFile := eastDir.Join("runtime", "links", "link-east-access-127.0.0.1.yaml")
	old, _ := os.ReadFile(linkFile)
	os.RemoveAll(eastDir.Join("runtime", "certs", "client-east-access"))
	site, _ := os.ReadFile(n.res(east, "site.yaml"))
	fixture.WriteFile(t, n.res(east, "site.yaml"), string(site)+"# touched\n")
	var fresh []byte
	fixture.Eventually(t, "a new link file", func() bool {
		fresh, _ = os.ReadFile(linkFile)
		return len(fresh) > 0 && string(fresh) != string(old)
	})
	if err := os.WriteFile(n.res(west, "link.yaml"), fresh, 0o600); err != nil {
		t.Fatal(err)
	}
	fixture.Eventually(t, "the router told to load the new certificate", func() bool { return ordinal() > first })
	after, _ := n.rt.State(context.Background(), west, fixture.NSDir(n.home, west))
	if after.Pid != before.Pid {
		t.Errorf("west's router restarted for a new link certificate: pid %d → %d", before.Pid, after.Pid)
	}
	fixture.Eventually(t, "still linked", func() bool { return ready(n.status(west, "Link", "link-east-access")) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, port, nil); err != nil {
		t.Fatalf("traffic after the rotation: %v", err)
	}
}

// discovery bounds how long a site takes to learn of a router newly
// linked: the router's beacon comes every 10 s, and a busy machine adds
// to it.
const discovery = 25 * time.Second
