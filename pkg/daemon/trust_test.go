package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestLinkFilesNeverManageTheRouter, with the real router: a RouterAccess
// issued by skupper-local-ca (the CA of the router's local management
// listener) is refused with the reason in its status, and no client
// certificate of any link file the site writes is accepted by the
// site's management listener, while the controller's own credential is.
func TestLinkFilesNeverManageTheRouter(t *testing.T) {
	l := startLiveSite(t, "linux")
	access := func(name, issuer string) string {
		y := fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: %s\nspec:\n  bindHost: 127.0.0.1\n", name)
		if issuer != "" {
			y += "  issuer: " + issuer + "\n"
		}
		return y + fmt.Sprintf("  roles:\n  - name: inter-router\n    port: %d\n", routertest.FreePort(t))
	}
	fixture.WriteFile(t, filepath.Join(l.res, "good.yaml"), access("good", ""))
	fixture.WriteFile(t, filepath.Join(l.res, "bad.yaml"), access("bad", "skupper-local-ca"))
	dir, _ := namespace.Open(l.home, l.ns)
	links := filepath.Join(dir.Path, "runtime", "links")
	fixture.Eventually(t, "the link file of RouterAccess/good, and RouterAccess/bad refused or rendered", func() bool {
		_, err := os.Stat(filepath.Join(links, "link-good-127.0.0.1.yaml"))
		bad := fixture.StatusOf(l.home, l.ns, "RouterAccess", "bad")
		return err == nil && bad != nil && bad.Status != status.Pending
	})

	// what a peer holding each link file could do with the management
	// listener
	port, err := os.ReadFile(filepath.Join(dir.Internal(), "management-port"))
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strings.TrimSpace(string(port))
	localCA, err := os.ReadFile(filepath.Join(dir.RuntimeCerts(), routerconfig.LocalClient, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(localCA)
	files, _ := filepath.Glob(filepath.Join(links, "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no link file to try")
	}
	for _, f := range files {
		cred := linkCredential(t, f)
		pair, err := tls.X509KeyPair(cred.Cert, cred.Key)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// presented whatever CAs the listener names as acceptable: the
		// router decides
		present := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		c, err := management.Dial(ctx, addr, &tls.Config{GetClientCertificate: present, RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err == nil {
			_, err = c.Query(ctx, management.TypeName("router"))
			c.Close()
			t.Errorf("the client certificate of %s is accepted by the router's management listener (querying the router: err %v)", filepath.Base(f), err)
		} else {
			t.Logf("%s: refused: %v", filepath.Base(f), err)
		}
		cancel()
	}
	// the controller's own credential still manages it
	if l.entity("listener", routerconfig.LocalListenerName) == nil {
		t.Error("the controller's management session cannot read the management listener")
	}

	bad := fixture.StatusOf(l.home, l.ns, "RouterAccess", "bad")
	want := "spec.issuer: skupper-local-ca is the CA of the router's local management listener; it cannot sign credentials that leave the site"
	if bad == nil || bad.Status != status.Error || !strings.Contains(bad.Message, want) {
		t.Errorf("RouterAccess/bad status: %+v, want an Error saying %q", bad, want)
	}
	if _, err := os.Stat(filepath.Join(links, "link-bad-127.0.0.1.yaml")); err == nil {
		t.Error("RouterAccess/bad has a link file")
	}
}

// linkCredential reads the Secret of a link file.
func linkCredential(t *testing.T, path string) certs.Files {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, problems := resources.Decode(filepath.Base(path), data)
	if resources.HasErrors(problems) {
		t.Fatalf("%s: %v", path, problems)
	}
	for _, d := range docs {
		if s, ok := d.Object.(*resources.Secret); ok {
			get := func(k string) []byte {
				v, err := base64.StdEncoding.DecodeString(s.Data[k])
				if err != nil {
					t.Fatalf("%s: data.%s: %v", path, k, err)
				}
				return v
			}
			return certs.Files{CA: get(certs.CAFile), Cert: get(certs.CertFile), Key: get(certs.KeyFile)}
		}
	}
	t.Fatalf("%s holds no Secret", path)
	return certs.Files{}
}
