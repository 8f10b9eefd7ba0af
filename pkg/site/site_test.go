package site

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/skschema"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/runtime"
)

const testSiteID = "11111111-2222-4333-8444-555555555555"

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// input reads a fixture into an Input, as Reserve would find it in a fresh
// namespace directory: user credentials issued in memory from the
// fixture's "certs" list, no runtime/ yet.
func input(t *testing.T, c fixture.GoldenCase) Input {
	t.Helper()
	// read as the controller reads a namespace directory
	files, err := namespace.Dir{Name: c.Name, Path: c.Src}.ReadFiles(namespace.MaxFileSize)
	if err != nil {
		t.Fatal(err)
	}
	var docs []*resources.Document
	var probs []resources.Problem
	for _, f := range files {
		docs, probs = append(docs, f.Docs...), append(probs, f.Problems...)
	}
	platform := "podman"
	if data, err := os.ReadFile(filepath.Join(c.Src, "internal", "platform.yaml")); err == nil {
		platform = strings.TrimSpace(strings.TrimPrefix(string(data), "platform:"))
	}
	in := Input{
		Namespace: resources.Build(c.Name, docs, probs),
		Platform:  platform, Version: "test", Now: testNow,
		Dir:    "$NSDIR", // the goldens' stand-in for the namespace directory
		SiteID: testSiteID, ManagementPort: 5671,
		UserCerts: map[string]UserCert{},
		HostNames: testHostNames,
	}
	in.Ports = testPorts(in.Namespace)
	var ca *certs.CA
	var caFiles certs.Files
	spec, err := os.ReadFile(filepath.Join(c.Src, "certs"))
	if err != nil {
		return in
	}
	ca, caFiles, err = certs.NewCA("user-ca", testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(spec)), "\n") {
		name, kind, _ := strings.Cut(line, " ")
		f := certs.Files{CA: caFiles.CA}
		if kind == "full" {
			if f, err = ca.Issue(certs.Leaf{CommonName: name, Hosts: []string{"127.0.0.1", "localhost"}, Server: true, Client: true}, testNow); err != nil {
				t.Fatal(err)
			}
		}
		in.UserCerts[name] = UserCert{Files: f}
	}
	return in
}

// testHostNames stand in for this host's names in the goldens.
var testHostNames = []string{"test-host", "192.0.2.10"}

// testPorts grants the claims as a data home with no other namespace
// does: named ports as named, the others from their first port up.
func testPorts(ns *resources.Namespace) map[string]namespace.PortGrant {
	out := map[string]namespace.PortGrant{}
	used := map[int]bool{}
	for _, c := range PortClaims(ns) {
		if c.Port > 0 {
			used[c.Port] = true
		}
	}
	for _, c := range PortClaims(ns) {
		p := c.Port
		for p == 0 {
			if q := c.From; !used[q] {
				p = q
			} else {
				c.From++
			}
		}
		used[p] = true
		out[c.Key] = namespace.PortGrant{Port: p}
	}
	return out
}

// TestBuildGolden: the desired site of every golden case, built from
// values alone, is the router configuration and the problems the goldens
// hold, uses only what the router's schema has, and is the same bytes when
// built twice.
func TestBuildGolden(t *testing.T) {
	built := 0
	for _, c := range fixture.GoldenCases(t, "../..") {
		t.Run(c.Name, func(t *testing.T) {
			in := input(t, c)
			if in.Namespace.Site == nil {
				if _, err := Build(in); err == nil {
					t.Error("a namespace without a Site was built")
				}
				return
			}
			d, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			built++
			want, err := os.ReadFile(filepath.Join(c.Want, "skrouterd.json"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.ConfigJSON, want) {
				t.Errorf("router configuration differs from %s:\n%s", filepath.Join(c.Want, "skrouterd.json"), d.ConfigJSON)
			}
			skschema.CheckConfig(t, d.Config)
			problems := append(in.Namespace.Problems, d.Problems...)
			resources.SortProblems(problems)
			var got strings.Builder
			for _, p := range problems {
				got.WriteString(p.String() + "\n")
			}
			if wantProbs, _ := os.ReadFile(filepath.Join(c.Want, "problems.txt")); got.String() != string(wantProbs) {
				t.Errorf("problems:\n%s\nwant:\n%s", got.String(), wantProbs)
			}
			// the same input again, with the credentials it made: the same
			// site, byte for byte, credentials kept
			in2 := input(t, c)
			in2.UserCerts = in.UserCerts
			in2.Issuers = map[string]Issuer{}
			for name, f := range d.NewIssuers {
				ca, err := certs.ParseCA(f)
				if err != nil {
					t.Fatal(err)
				}
				in2.Issuers[name] = Issuer{CA: ca}
			}
			in2.Current = d.Credentials
			d2, err := Build(in2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d2.ConfigJSON, d.ConfigJSON) || d2.InputHash() != d.InputHash() || len(d2.NewIssuers) != 0 {
				t.Error("building again from the site's own credentials changed it")
			}
		})
	}
	if built < 8 {
		t.Errorf("only %d cases built a site", built)
	}
}

// TestPersist: what Persist writes hashes as the Desired says (so a router
// started from the files and one from the value agree), keys are private,
// a second Persist of the same site changes nothing, and a credential
// nothing refers to any more goes.
func TestPersist(t *testing.T) {
	c := fixture.GoldenCase{Name: "tls", Src: "../controller/testdata/render/tls"}
	in := input(t, c)
	d, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	dir := namespace.Dir{Name: "tls", Path: t.TempDir()}
	os.Mkdir(dir.Join("input"), 0o755) // a namespace directory has one
	stale := filepath.Join(dir.RuntimeCerts(), "gone")
	if _, err := certs.Write(stale, certs.Files{CA: []byte("x")}, false); err != nil {
		t.Fatal(err)
	}
	changed, configChanged, err := Persist(dir, d, os.Geteuid(), os.Getegid())
	if err != nil || !configChanged || !slices.Contains(changed, "runtime/certs/gone/ca.crt") {
		t.Fatalf("first Persist: %v %v %v", changed, configChanged, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("an unused credential was kept: %v", err)
	}
	hash, err := runtime.InputHash(dir.Path)
	if err != nil || hash != d.InputHash() {
		t.Errorf("hash of the files %s (%v), of the value %s", hash, err, d.InputHash())
	}
	filepath.WalkDir(filepath.Join(dir.Path, "runtime"), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := e.Info()
		switch {
		case e.IsDir() && strings.Contains(p, "/certs/") && fi.Mode().Perm() != 0o700,
			!e.IsDir() && e.Name() == certs.KeyFile && fi.Mode().Perm() != 0o600:
			t.Errorf("%s has mode %v", p, fi.Mode().Perm())
		}
		return nil
	})
	if changed, configChanged, err := Persist(dir, d, os.Geteuid(), os.Getegid()); err != nil || len(changed) != 0 || configChanged {
		t.Errorf("second Persist changed %v %v %v", changed, configChanged, err)
	}
}

// TestLinkFilesParseBack: every link file Build makes parses back into a
// valid Secret and Link (a site given it, and nothing else, renders the
// link without a problem), names a host the server certificate names
// (never a wildcard), and its client certificate is issued by the CA the
// RouterAccess verifies peers with.
func TestLinkFilesParseBack(t *testing.T) {
	var c fixture.GoldenCase
	for _, gc := range fixture.GoldenCases(t, "../..") {
		if gc.Name == "links" {
			c = gc
		}
	}
	in := input(t, c)
	d, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.LinkFiles) != 6 {
		t.Fatalf("%d link files, want 6 (2 hosts of hub-access, 4 of public): %v", len(d.LinkFiles), slices.Collect(maps.Keys(d.LinkFiles)))
	}
	for name, data := range d.LinkFiles {
		t.Run(name, func(t *testing.T) {
			docs, probs := resources.Decode("input/resources/link.yaml", data)
			ns := resources.Build("peer", append(docs, siteDoc(t)...), probs)
			if len(ns.Problems) > 0 || len(ns.Secrets) != 1 || len(ns.Links) != 1 {
				t.Fatalf("problems %v, %d Secrets, %d Links:\n%s", ns.Problems, len(ns.Secrets), len(ns.Links), data)
			}
			link, secret := ns.Links[0], ns.Secrets[0]
			if link.Spec.TLSCredentials != secret.Metadata.Name || secret.Type != "kubernetes.io/tls" || link.Spec.Cost != 1 {
				t.Errorf("Link %+v, Secret %s of type %s", link.Spec, secret.Metadata.Name, secret.Type)
			}
			access := strings.TrimPrefix(link.Metadata.Name, "link-")
			a := slices.IndexFunc(d.Accesses, func(a *Access) bool { return a.Name == access })
			if a < 0 {
				t.Fatalf("Link %s names no RouterAccess", link.Metadata.Name)
			}
			host := strings.TrimSuffix(strings.TrimPrefix(name, "link-"+access+"-"), ".yaml")
			if wildcard(host) {
				t.Errorf("a link file for %s", host)
			}
			for _, e := range link.Spec.Endpoints {
				if e.Host != host {
					t.Errorf("endpoint %+v in the file for %s", e, host)
				}
			}
			// the peer verifies the server with ca.crt, for this host
			server, _ := pemCert(t, d.Credentials[d.Accesses[a].TLS].Cert)
			files := secretFiles(secret)
			if err := certs.Check(files); err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(files.CA)
			if _, err := server.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, CurrentTime: testNow}); err != nil {
				t.Errorf("the server certificate does not verify for %s with the file's ca.crt: %v", host, err)
			}
			// the server verifies the client with its profile's CA
			client, _ := pemCert(t, files.Cert)
			trusted := x509.NewCertPool()
			trusted.AppendCertsFromPEM(d.Credentials[d.Accesses[a].TLS].CA)
			if _, err := client.Verify(x509.VerifyOptions{Roots: trusted, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: testNow}); err != nil {
				t.Errorf("the RouterAccess does not trust the file's client certificate: %v", err)
			}
			// a site given only this file renders the link
			pin := Input{Namespace: ns, Platform: "podman", Version: "test", Now: testNow, Dir: "$NSDIR", SiteID: testSiteID, ManagementPort: 5671,
				UserCerts: map[string]UserCert{}, Ports: testPorts(ns)}
			pd, err := Build(pin)
			if err != nil || len(pd.Problems) > 0 {
				t.Fatalf("a peer with this file: %v %v", err, pd.Problems)
			}
			if !bytes.Contains(pd.ConfigJSON, []byte(`"host": "`+host+`"`)) {
				t.Errorf("the peer's connector does not go to %s:\n%s", host, pd.ConfigJSON)
			}
		})
	}
}

func siteDoc(t *testing.T) []*resources.Document {
	docs, probs := resources.Decode("input/resources/site.yaml", []byte("apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: peer\n"))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return docs
}

func pemCert(t *testing.T, data []byte) (*x509.Certificate, error) {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c, nil
}

// TestUserCertificateExpiryWarning: a user-provided certificate that
// expires within 30 days, or has expired, is a warning on the Site (the
// site renews only what it issued); one with longer to go is not.
func TestUserCertificateExpiryWarning(t *testing.T) {
	ca, _, err := certs.NewCA("user-ca", testNow.Add(-700*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	issued := func(at time.Time) certs.Files {
		f, err := ca.Issue(certs.Leaf{CommonName: "x", Hosts: []string{"127.0.0.1"}, Server: true}, at)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	docs, probs := resources.Decode("input/resources/site.yaml", []byte("apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s\n"))
	ns := resources.Build("ns", docs, probs)
	in := Input{Namespace: ns, Platform: "podman", Version: "test", Now: testNow, Dir: "$NSDIR", SiteID: testSiteID, ManagementPort: 5671,
		UserCerts: map[string]UserCert{
			"soon":    {Files: issued(testNow.Add(-710 * 24 * time.Hour))}, // 2-year leaves: 20 days left
			"expired": {Files: issued(testNow.Add(-740 * 24 * time.Hour))},
			"fine":    {Files: issued(testNow.Add(-100 * 24 * time.Hour))},
		}}
	d, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range d.Problems {
		got = append(got, p.String())
	}
	want := []string{
		"input/resources/site.yaml:1: warning: Site/s: input/certs/expired/tls.crt expired at 2025-12-23T03:04:05Z: replace it",
		"input/resources/site.yaml:1: warning: Site/s: input/certs/soon/tls.crt expires at 2026-01-22T03:04:05Z (in 20 days): replace it",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
