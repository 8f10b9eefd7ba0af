package routertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/routerconfig"
)

// Site is a plain skrouterd configured the way a site's router is (a
// router with site metadata, a site entity, the local management listener
// with mutual TLS and the controller's client credential in the namespace
// directory, mc multicast), with what a test asks of it: an inter-router
// listener, links to others, tcpListeners and tcpConnectors. It runs
// without a controller or a platform: for tests of what reads routers.
type Site struct {
	Name, ID string // the Site's name and the site id
	Platform string // "linux" when empty
	Edge     bool
	// InterRouter, when set, is the port of an inter-router (or, with
	// Edge on the peer, edge) listener on 127.0.0.1.
	InterRouter int
	// Links are inter-router ports (role edge when Edge) to connect to,
	// each a connector named link-<port>.
	Links []int
	// Listeners and Connectors: routing key → port on 127.0.0.1, as
	// tcpListener listener/<key> and tcpConnector connector/<key>@127.0.0.1.
	Listeners, Connectors map[string]int

	// Dir is the namespace directory (the client credential is in its
	// runtime/certs/skupper-local-client), Management its management
	// port; StartSite sets them.
	Dir        namespace.Dir
	Management int
	Router     *Router
}

// RouterID is the router id of the site's router.
func (s *Site) RouterID() string { return s.Name + "-" + s.ID[:8] }

// StartSite writes the site's credentials and configuration in a
// temporary namespace directory, runs its router until the test ends,
// and waits for its management listener.
func StartSite(t testing.TB, s *Site) {
	t.Helper()
	Binary(t) // skips without the router, before anything is made
	s.Dir = namespace.Dir{Name: s.Name, Path: filepath.Join(t.TempDir(), s.Name)}
	s.Management = FreePort(t)
	now := time.Now()
	ca, caFiles, err := certs.NewCA("test-local-ca", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		leaf certs.Leaf
	}{
		{routerconfig.LocalServer, certs.Leaf{CommonName: "skupper-router-local", Hosts: []string{"127.0.0.1"}, Server: true}},
		{routerconfig.LocalClient, certs.Leaf{CommonName: "skupper-local-client", Client: true}},
	} {
		f, err := ca.Issue(c.leaf, now)
		if err != nil {
			t.Fatal(err)
		}
		f.CA = caFiles.CA
		if _, err := certs.Write(filepath.Join(s.Dir.RuntimeCerts(), c.name), f, false); err != nil {
			t.Fatal(err)
		}
	}
	platform := s.Platform
	if platform == "" {
		platform = "linux"
	}
	mode := "interior"
	if s.Edge {
		mode = "edge"
	}
	meta, _ := json.Marshal(map[string]string{"id": s.ID, "version": "test", "platform": platform})
	server := filepath.Join(s.Dir.RuntimeCerts(), routerconfig.LocalServer)
	cfg := []any{
		[]any{"router", map[string]any{"id": s.RouterID(), "mode": mode, "metadata": string(meta), "helloMaxAgeSeconds": 3}},
		[]any{"site", map[string]any{"name": s.RouterID(), "namespace": s.Name, "platform": platform, "version": "test"}},
		[]any{"sslProfile", map[string]any{"name": routerconfig.LocalServer, "caCertFile": filepath.Join(server, certs.CAFile),
			"certFile": filepath.Join(server, certs.CertFile), "privateKeyFile": filepath.Join(server, certs.KeyFile)}},
		[]any{"listener", map[string]any{"name": "skupper-local-normal", "host": "127.0.0.1", "port": strconv.Itoa(s.Management), "role": "normal",
			"saslMechanisms": "EXTERNAL", "authenticatePeer": true, "sslProfile": routerconfig.LocalServer}},
		[]any{"address", map[string]any{"prefix": "mc", "distribution": "multicast"}},
	}
	if s.InterRouter != 0 {
		cfg = append(cfg, []any{"listener", map[string]any{"name": "inter-router", "host": "127.0.0.1", "port": strconv.Itoa(s.InterRouter),
			"role": "inter-router", "saslMechanisms": "ANONYMOUS", "authenticatePeer": false}},
			[]any{"listener", map[string]any{"name": "edge", "host": "127.0.0.1", "port": strconv.Itoa(s.InterRouter + 1),
				"role": "edge", "saslMechanisms": "ANONYMOUS", "authenticatePeer": false}})
	}
	for _, p := range s.Links {
		role := "inter-router"
		if s.Edge {
			role, p = "edge", p+1
		}
		cfg = append(cfg, []any{"connector", map[string]any{"name": fmt.Sprintf("link-%d", p), "host": "127.0.0.1", "port": strconv.Itoa(p),
			"role": role, "saslMechanisms": "ANONYMOUS", "cost": 1}})
	}
	for key, port := range s.Listeners {
		cfg = append(cfg, []any{"tcpListener", map[string]any{"name": "listener/" + key, "host": "127.0.0.1", "port": strconv.Itoa(port), "address": key}})
	}
	for key, port := range s.Connectors {
		cfg = append(cfg, []any{"tcpConnector", map[string]any{"name": "connector/" + key + "@127.0.0.1", "host": "127.0.0.1", "port": strconv.Itoa(port), "address": key}})
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := s.Dir.RouterConfig()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// as every platform runs a site's router: the router's vanflow
	// records use the site id for the SITE record and as its parent
	s.Router = StartEnv(t, path, []string{"SKUPPER_SITE_ID=" + s.ID})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitPort(ctx, s.Management); err != nil {
		t.Fatalf("router of site %s: %v\n%s", s.Name, err, s.Router.Output())
	}
}
