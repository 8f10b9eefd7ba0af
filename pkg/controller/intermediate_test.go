package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
)

// TestRouterServesIntermediateChain: a Listener's tlsCredentials are a
// Certificate issued by an intermediate CA (a signing Certificate whose
// spec.ca is a root CA Certificate). The real router serves TLS on it with
// the leaf and the intermediate, so a client that trusts only the root
// verifies the connection and sends traffic through; a client that trusts
// nothing is refused.
func TestRouterServesIntermediateChain(t *testing.T) {
	routertest.Binary(t)
	home := t.TempDir()
	dir, err := namespace.Open(home, "chain")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir.InputResources(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := dir.SetPlatform("linux"); err != nil {
		t.Fatal(err)
	}
	echo := routertest.EchoServer(t, nil)
	in := routertest.FreePort(t)
	yaml := fmt.Sprintf(`apiVersion: skupper.io/v2alpha1
kind: Site
metadata: {name: chain}
---
apiVersion: skupper.io/v2alpha1
kind: Certificate
metadata: {name: root-ca}
spec: {subject: Root CA, signing: true}
---
apiVersion: skupper.io/v2alpha1
kind: Certificate
metadata: {name: team-ca}
spec: {ca: root-ca, subject: Team Intermediate CA, signing: true}
---
apiVersion: skupper.io/v2alpha1
kind: Certificate
metadata: {name: front-tls}
spec: {ca: team-ca, subject: 127.0.0.1, hosts: [127.0.0.1], server: true}
---
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata: {name: front}
spec: {routingKey: echo, host: 127.0.0.1, port: %d, tlsCredentials: front-tls}
---
apiVersion: skupper.io/v2alpha1
kind: Connector
metadata: {name: echo}
spec: {routingKey: echo, host: 127.0.0.1, port: %d}
`, in, echo)
	if err := os.MkdirAll(dir.InputResources(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir.InputResources(), "site.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := New(Options{DataHome: home}).Reconcile(context.Background(), "chain")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("problems: %v", res.Problems)
	}
	checkSchema(t, res.Config)
	port, _ := res.Config.ManagementPort()
	// the root as a client would have it: the root CA's own certificate
	onlyRoot := loadPool(t, filepath.Join(dir.RuntimeIssuers(), "root-ca", certs.CertFile))

	router := routertest.Start(t, dir.RouterConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := routertest.WaitPort(ctx, port); err != nil {
		t.Fatalf("management port %d never opened: %v", port, err)
	}
	if err := routertest.RoundTrip(ctx, in, &tls.Config{RootCAs: onlyRoot, ServerName: "127.0.0.1"}); err != nil {
		t.Fatalf("a client trusting only the root: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(in))
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: onlyRoot, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	st := c.ConnectionState()
	c.Close()
	if len(st.PeerCertificates) != 2 || st.PeerCertificates[1].Subject.CommonName != "Team Intermediate CA" {
		t.Errorf("the router presented %d certificates, want the leaf and the intermediate", len(st.PeerCertificates))
	}
	if chain := st.VerifiedChains[0]; len(chain) != 3 || chain[2].Subject.CommonName != "Root CA" {
		t.Errorf("verified chain of %d certificates, want leaf, intermediate, root", len(chain))
	}
	_, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("a client trusting nothing: %v, want an unknown authority", err)
	}
	if !router.Alive() {
		t.Fatal("skrouterd exited")
	}
}
