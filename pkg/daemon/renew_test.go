package daemon

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestCertificateRenewal: with the controller's clock set back 500 days,
// a site's generated certificates are issued then; put right, they are
// past two thirds of their two-year life, and the next pass renews them:
// a Listener serves its new certificate to new connections and the
// management listener has a new one, without a restart of the router.
func TestCertificateRenewal(t *testing.T) { eachPlatform(t, testCertificateRenewal) }

func testCertificateRenewal(t *testing.T, platform string) {
	var offset atomic.Int64
	offset.Store(int64(-500 * 24 * time.Hour))
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	l := startLiveSiteWith(t, platform, func(o *Options) { o.Now = clock }, nil)
	pid := l.pid()
	echo := routertest.EchoServer(t, nil)
	port := routertest.FreePort(t)
	fixture.WriteFile(t, filepath.Join(l.res, "front.yaml"), fixture.ListenerYAML("front", port)+"  tlsCredentials: front-tls\n")
	fixture.WriteFile(t, filepath.Join(l.res, "back.yaml"), fixture.ConnectorYAML("back", "front", echo))
	certs := filepath.Join(fixture.NSDir(l.home, l.ns), "runtime", "certs")
	served := func() string {
		ca, err := os.ReadFile(filepath.Join(certs, "front-tls", "ca.crt"))
		if err != nil {
			return ""
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return ""
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	var first string
	fixture.Eventually(t, "the listener serves its first certificate", func() bool { first = served(); return first != "" })
	localBefore, _ := os.ReadFile(filepath.Join(certs, "skupper-local-server", "tls.crt"))

	// the clock put right: past two thirds of the certificates' life
	offset.Store(0)
	site, _ := os.ReadFile(filepath.Join(l.res, "site.yaml"))
	fixture.WriteFile(t, filepath.Join(l.res, "site.yaml"), string(site)+"# a pass\n")
	fixture.Eventually(t, "the listener serves a renewed certificate", func() bool {
		s := served()
		return s != "" && s != first
	})
	if localAfter, _ := os.ReadFile(filepath.Join(certs, "skupper-local-server", "tls.crt")); bytes.Equal(localBefore, localAfter) {
		t.Error("the management listener's certificate was not renewed")
	}
	fixture.Eventually(t, "the Site ready, managed live", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Site", "s")
		return s != nil && s.Status == status.Ready && s.Condition(status.Running) != nil && s.Condition(status.Running).Message == "router running on "+platform+", managed live"
	})
	if got := l.pid(); got != pid {
		t.Errorf("the router restarted (pid %d → %d) to renew certificates", pid, got)
	}
}
