package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/browsertest"
	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/console"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/status"
)

var screenshots = flag.String("screenshots", "", "directory TestConsole writes its screenshots of the console into (../../docs)")

// chainNet is three sites of this host on the linux platform with the
// real router, linked in a chain (east ← middle ← west), run by
// `site-controller run --http` as a process of its own.
type chainNet struct {
	t                  *testing.T
	home, addr         string
	east, middle, west string // namespaces
	listenPort, eastRA int
}

func (c *chainNet) res(ns, file string) string {
	return filepath.Join(namespace.Root(c.home), ns, "input", "resources", file)
}

func (c *chainNet) status(ns, kind, name string) *status.Status {
	return fixture.StatusOf(c.home, ns, kind, name)
}

// accessYAML is a RouterAccess for links on 127.0.0.1.
func accessYAML(name string) string {
	return "apiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: " + name +
		"\nspec:\n  bindHost: 127.0.0.1\n  roles:\n  - name: inter-router\n"
}

// link copies the link file of from's RouterAccess ra into to's input.
func (c *chainNet) link(from, ra, to string) {
	c.t.Helper()
	src := filepath.Join(namespace.Root(c.home), from, "runtime", "links", "link-"+ra+"-127.0.0.1.yaml")
	var data []byte
	fixture.EventuallyWithin(c.t, time.Minute, "link file "+src, func() bool {
		var err error
		data, err = os.ReadFile(src)
		return err == nil
	})
	fixture.WriteFile(c.t, c.res(to, "link.yaml"), string(data))
}

// startChain starts the daemon and the three sites, and waits for both
// links.
func startChain(t *testing.T) *chainNet {
	binary := routertest.Binary(t)
	rt := enginetest.Systemd(t, binary) // removes what the daemon left
	c := &chainNet{t: t, home: t.TempDir(), east: fixture.Namespace("east"), middle: fixture.Namespace("middle"), west: fixture.Namespace("west")}
	t.Cleanup(func() {
		for _, ns := range []string{c.east, c.middle, c.west} {
			rt.Remove(context.Background(), ns, fixture.NSDir(c.home, ns))
		}
	})
	echo := routertest.EchoServer(t, nil)
	c.listenPort = routertest.FreePort(t)
	fixture.WriteFile(t, c.res(c.east, "site.yaml"), fixture.SiteYAML("east")+"---\n"+accessYAML("east-access")+"---\n"+fixture.ConnectorYAML("backend", "svc", echo))
	fixture.WriteFile(t, c.res(c.middle, "site.yaml"), fixture.SiteYAML("middle")+"---\n"+accessYAML("middle-access"))
	fixture.WriteFile(t, c.res(c.west, "site.yaml"), fixture.SiteYAML("west")+"---\n"+fixture.ListenerYAML("svc", c.listenPort))

	c.addr = fmt.Sprintf("127.0.0.1:%d", routertest.FreePort(t))
	runDaemon(t, "", "--data-home", c.home, "--platform", "linux", "--systemd-scope", "user", "--router-binary", binary,
		"--http", c.addr, "--rescan-interval", "0")
	fixture.EventuallyWithin(t, time.Minute, "the daemon ready", func() bool {
		resp, err := http.Get("http://" + c.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	c.link(c.east, "east-access", c.middle)
	c.link(c.middle, "middle-access", c.west)
	for _, l := range []struct{ ns, name, to string }{{c.middle, "link-east-access", "east"}, {c.west, "link-middle-access", "middle"}} {
		fixture.EventuallyWithin(t, time.Minute, l.ns+"'s link to "+l.to+" Ready", func() bool {
			s := c.status(l.ns, "Link", l.name)
			return s != nil && s.Status == status.Ready && s.RemoteSiteName == l.to
		})
	}
	return c
}

// api reads the console's snapshot.
func (c *chainNet) api() (console.Snapshot, error) {
	var snap console.Snapshot
	resp, err := http.Get("http://" + c.addr + "/api/")
	if err != nil {
		return snap, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return snap, fmt.Errorf("/api/: %s", resp.Status)
	}
	return snap, json.NewDecoder(resp.Body).Decode(&snap)
}

// TestConsole: the console of a daemon running three real routers in a
// chain, in a real chromium. The page shows the three sites and two
// links; `status --network` and /api/ agree; a new Connector in east
// appears within 2 s without a reload; the services' bytes grow with
// traffic (from the routers' flow records); east's router stopped (its
// namespace removed), middle's link to it turns broken with the router's
// reason; the browser's console has no error.
func TestConsole(t *testing.T) {
	b := browsertest.Start(t) // first: it may skip
	c := startChain(t)
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	shot := func(t *testing.T, name string) {
		if *screenshots != "" {
			must(t, b.Screenshot(filepath.Join(*screenshots, name)))
		}
	}
	must(t, b.Open("http://"+c.addr+"/"))
	origin, err := browsertest.Eval[float64](b, `performance.timeOrigin`)
	must(t, err)

	t.Run("three sites and two links", func(t *testing.T) {
		must(t, b.Wait(`document.querySelectorAll("#graph g.site").length === 3 && document.querySelectorAll("#graph line.link.up").length === 2`, 30*time.Second))
		sites, err := browsertest.Eval[[]string](b, `[...document.querySelectorAll("#graph g.site")].map(g => g.dataset.name + (g.classList.contains("local") ? " (local)" : ""))`)
		must(t, err)
		if want := []string{"east (local)", "middle (local)", "west (local)"}; !slices.Equal(sites, want) {
			t.Errorf("sites %q, want %q", sites, want)
		}
		links, err := browsertest.Eval[[]string](b, `[...document.querySelectorAll("#graph line.link")].map(l => l.dataset.from + "→" + l.dataset.to + " " + l.dataset.state).sort()`)
		must(t, err)
		if want := []string{"middle→east up", "west→middle up"}; !slices.Equal(links, want) {
			t.Errorf("links %q, want %q", links, want)
		}
		// the router's version when it reports one (a router built
		// without one reports none), else the site's
		snap, err := c.api()
		must(t, err)
		want := "linux · version dev"
		for _, s := range snap.Network.Sites {
			if s.Name == "east" && s.Router != "" {
				want = "linux · router " + s.Router
			}
		}
		meta, err := browsertest.Eval[string](b, `document.querySelector('#graph g.site[data-name="east"] text.meta').textContent`)
		must(t, err)
		if meta != want {
			t.Errorf("east's platform and version: %q, want %q", meta, want)
		}
		row, err := browsertest.Eval[string](b, `document.querySelector('#services tr[data-key="svc"]').innerText`)
		must(t, err)
		// the names the routers give the entities
		if !strings.Contains(row, "listener/svc @ west") || !strings.Contains(row, "connector/backend@127.0.0.1 @ east") || !strings.Contains(row, "yes") {
			t.Errorf("service svc: %q", row)
		}
		shot(t, "console.png")
	})

	t.Run("status --network and /api/ agree", func(t *testing.T) {
		var cli, api []string
		fixture.EventuallyWithin(t, 20*time.Second, "status --network and /api/ to agree", func() bool {
			out, _, err := run(t, "status", "--network", "-o", "wide", "--data-home", c.home)
			if err != nil {
				return false
			}
			snap, err := c.api()
			if err != nil {
				return false
			}
			cli, api = networkOfStatus(out), networkOfAPI(snap)
			return len(api) == 3 && slices.Equal(cli, append(append(slices.Clone(api), api...), api...))
		})
	})

	t.Run("a new Connector appears within 2 s", func(t *testing.T) {
		echo := routertest.EchoServer(t, nil)
		start := time.Now()
		fixture.WriteFile(t, c.res(c.east, "new.yaml"), fixture.ConnectorYAML("backend-new", "svc-new", echo))
		err := b.Wait(`(document.querySelector('#services tr[data-key="svc-new"]') || {innerText: ""}).innerText.includes("connector/backend-new@127.0.0.1 @ east")`, 2*time.Second)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("the new Connector not on the page within 2 s: %v", err)
		}
		t.Logf("the new Connector on the page after %s", took.Round(time.Millisecond))
		if after, _ := browsertest.Eval[float64](b, `performance.timeOrigin`); after != origin {
			t.Errorf("the page was reloaded")
		}
	})

	t.Run("bytes grow with traffic", func(t *testing.T) {
		snap, err := c.api()
		must(t, err)
		if !snap.Network.Flows {
			t.Fatal("the network view carries no flow records")
		}
		bytesIn := func() float64 {
			v, _ := browsertest.Eval[float64](b, `Number(document.querySelector('#services tr[data-key="svc"]').dataset.bytesIn || 0)`)
			return v
		}
		for round := range 2 {
			before := bytesIn()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := routertest.RoundTrip(ctx, c.listenPort, nil)
			cancel()
			must(t, err)
			if err := b.Wait(fmt.Sprintf(`Number(document.querySelector('#services tr[data-key="svc"]').dataset.bytesIn || 0) > %v`, before), 10*time.Second); err != nil {
				t.Fatalf("round %d: bytes in stayed at %v: %v", round, before, err)
			}
		}
	})

	t.Run("a stopped router breaks its link", func(t *testing.T) {
		// east's namespace moved away (removed, to the daemon, at once):
		// the daemon stops its router (stopped any other way, the daemon
		// would start it again)
		must(t, os.Rename(fixture.NSDir(c.home, c.east), filepath.Join(t.TempDir(), "east")))
		sel := `#links tr[data-from="middle"][data-to="east"][data-state="down"] td.reason`
		must(t, b.Wait(fmt.Sprintf(`(document.querySelector('%s') || {textContent: ""}).textContent !== ""`, sel), 30*time.Second))
		reason, err := browsertest.Eval[string](b, fmt.Sprintf(`document.querySelector('%s').textContent`, sel))
		must(t, err)
		state, err := browsertest.Eval[string](b, `document.querySelector('#graph line.link[data-from="middle"]').dataset.state`)
		must(t, err)
		if state != "down" {
			t.Errorf("middle→east drawn %s", state)
		}
		// the router's own reason: the Link's status says it too
		fixture.Eventually(t, "middle's Link status to give the reason", func() bool {
			s := c.status(c.middle, "Link", "link-east-access")
			return s != nil && strings.Contains(s.Message, "not linked: ")
		})
		msg := c.status(c.middle, "Link", "link-east-access").Message
		t.Logf("page: %q; Link status: %q", reason, msg)
		if !strings.Contains(reason, "127.0.0.1:") || !strings.Contains(reason, "failed") && !strings.Contains(reason, "refused") {
			t.Errorf("the broken link's reason is not the router's: %q", reason)
		}
		shot(t, "console-broken-link.png")
	})

	if after, _ := browsertest.Eval[float64](b, `performance.timeOrigin`); after != origin {
		t.Errorf("the page was reloaded")
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the browser's console has errors:\n%s", strings.Join(errs, "\n"))
	}

	t.Run("a non-loopback --http without auth is refused", func(t *testing.T) {
		_, _, err := run(t, "run", "--data-home", t.TempDir(), "--platform", "none", "--http", "0.0.0.0:0")
		if err == nil || !strings.Contains(err.Error(), "is not a loopback address: serving the console there needs --http-auth FILE") {
			t.Errorf("--http 0.0.0.0:0 without --http-auth: %v", err)
		}
	})
}

// networkOfStatus is what `status --network -o wide` says, one line per
// site of each namespace's network: name, id, platform, links, services.
func networkOfStatus(out string) []string {
	var lines []string
	sep := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(out, "\n") {
		f := sep.Split(strings.TrimSpace(line), -1)
		if len(f) != 6 || f[0] == "SITE" {
			continue
		}
		lines = append(lines, strings.Join([]string{f[0], f[1], f[3], f[4], f[5]}, " | "))
	}
	return lines
}

// networkOfAPI is the same from the console's API, once.
func networkOfAPI(snap console.Snapshot) []string {
	var lines []string
	for _, s := range snap.Network.Sites {
		var links, services []string
		for _, l := range snap.Network.Links {
			if l.From == s.ID {
				links = append(links, fmt.Sprintf("%s→%s (%s)", l.Name, l.ToName, map[bool]string{true: "up", false: "down"}[l.Up]))
			}
		}
		for _, sv := range snap.Services {
			var ls, cs int
			for _, e := range sv.Listeners {
				if e.SiteID == s.ID {
					ls++
				}
			}
			for _, e := range sv.Connectors {
				if e.SiteID == s.ID {
					cs++
				}
			}
			var what []string
			if ls > 0 {
				what = append(what, fmt.Sprintf("%d listener(s)", ls))
			}
			if cs > 0 {
				what = append(what, fmt.Sprintf("%d connector(s)", cs))
			}
			if len(what) > 0 {
				services = append(services, sv.RoutingKey+" ("+strings.Join(what, ", ")+")")
			}
		}
		or := func(s []string) string {
			if len(s) == 0 {
				return "-"
			}
			return strings.Join(s, ", ")
		}
		lines = append(lines, strings.Join([]string{s.Name, s.ID, cmp.Or(s.Platform, "-"), or(links), or(services)}, " | "))
	}
	return lines
}
