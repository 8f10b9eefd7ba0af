package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/routerconfig"
)

func loadPair(t *testing.T, dir string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, certs.CertFile), filepath.Join(dir, certs.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(mustRead(t, file)) {
		t.Fatalf("no certificate in %s", file)
	}
	return pool
}

// TestRealRouterRunsRenderedConfig renders a namespace with every kind of
// TLS use on the linux platform, runs the real skrouterd on it, and proves
// the management listener's mutual TLS and traffic through each Listener to
// each Connector.
func TestRealRouterRunsRenderedConfig(t *testing.T) {
	routertest.Binary(t)
	home := t.TempDir()
	dir, err := namespace.Open(home, "real")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir.InputResources(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := dir.SetPlatform("linux"); err != nil {
		t.Fatal(err)
	}
	// user credentials from one CA. Backends are named localhost: the
	// router verifies a connector's host against DNS names only.: a listener's server cert, a backend's
	// CA, a client cert for mutual TLS to a backend
	userCA, _, err := certs.EnsureCA(filepath.Join(t.TempDir(), "ca"), "user-ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"front", "client"} {
		if _, err := certs.EnsureLeaf(dir.Join("input", "certs", name), userCA, certs.Leaf{CommonName: name, Hosts: []string{"127.0.0.1"}, Server: true, Client: true}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := certs.Write(dir.Join("input", "certs", "backend-ca"), certs.Files{CA: userCA.CertPEM}, false); err != nil {
		t.Fatal(err)
	}
	backendDir := filepath.Join(t.TempDir(), "backend")
	if _, err := certs.EnsureLeaf(backendDir, userCA, certs.Leaf{CommonName: "backend", Hosts: []string{"localhost"}, Server: true}, time.Now()); err != nil {
		t.Fatal(err)
	}
	pool := loadPool(t, filepath.Join(backendDir, certs.CAFile))

	plainEcho := routertest.EchoServer(t, nil)
	tlsEcho := routertest.EchoServer(t, &tls.Config{Certificates: []tls.Certificate{loadPair(t, backendDir)}})
	mutualEcho := routertest.EchoServer(t, &tls.Config{Certificates: []tls.Certificate{loadPair(t, backendDir)}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	tlsIn, plainIn, mutualIn, generatedIn := routertest.FreePort(t), routertest.FreePort(t), routertest.FreePort(t), routertest.FreePort(t)

	yaml := fmt.Sprintf(`apiVersion: skupper.io/v2alpha1
kind: Site
metadata: {name: real}
---
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata: {name: tls-in}
spec: {routingKey: plain, host: 127.0.0.1, port: %d, tlsCredentials: front}
---
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata: {name: generated-in}
spec: {routingKey: plain, host: 127.0.0.1, port: %d, tlsCredentials: generated}
---
apiVersion: skupper.io/v2alpha1
kind: Connector
metadata: {name: plain}
spec: {routingKey: plain, host: 127.0.0.1, port: %d}
---
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata: {name: plain-in}
spec: {routingKey: tls-backend, host: 127.0.0.1, port: %d}
---
apiVersion: skupper.io/v2alpha1
kind: Connector
metadata: {name: tls-backend}
spec: {routingKey: tls-backend, host: localhost, port: %d, tlsCredentials: backend-ca}
---
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata: {name: mutual-in}
spec: {routingKey: mutual-backend, host: 127.0.0.1, port: %d}
---
apiVersion: skupper.io/v2alpha1
kind: Connector
metadata: {name: mutual-backend}
spec: {routingKey: mutual-backend, host: localhost, port: %d, tlsCredentials: client, useClientCert: true}
`, tlsIn, generatedIn, plainEcho, plainIn, tlsEcho, mutualIn, mutualEcho)
	if err := os.MkdirAll(dir.InputResources(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir.InputResources(), "site.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	testfs.Fingerprint(t, dir.Path) // the tree is readable

	res, err := New(Options{DataHome: home}).Reconcile(context.Background(), "real")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("problems: %v", res.Problems)
	}
	checkSchema(t, res.Config)
	port, _ := res.Config.ManagementPort()

	router := routertest.Start(t, dir.RouterConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := routertest.WaitPort(ctx, port); err != nil {
		t.Fatalf("management port %d never opened: %v", port, err)
	}

	// management: mutual TLS with the generated client credential
	localCA := loadPool(t, dir.Join("runtime", "certs", routerconfig.LocalClient, certs.CAFile))
	mgmt := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c, err := tls.Dial("tcp", mgmt, &tls.Config{RootCAs: localCA, ServerName: "127.0.0.1",
		Certificates: []tls.Certificate{loadPair(t, dir.Join("runtime", "certs", routerconfig.LocalClient))}})
	if err != nil {
		t.Fatalf("management TLS with the client credential: %v", err)
	}
	c.Close()

	// traffic through every listener/connector pair
	generatedCA := loadPool(t, dir.Join("runtime", "certs", "generated", certs.CAFile))
	for name, tc := range map[string]struct {
		port int
		cfg  *tls.Config
	}{
		"TLS listener with the user's certificate":      {tlsIn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}},
		"TLS listener with a generated certificate":     {generatedIn, &tls.Config{RootCAs: generatedCA, ServerName: "127.0.0.1"}},
		"connector verifying its server with a CA only": {plainIn, nil},
		"connector presenting a client certificate":     {mutualIn, nil},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := routertest.RoundTrip(ctx, tc.port, tc.cfg)
		cancel()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if !router.Alive() {
		t.Fatal("skrouterd exited")
	}
}
