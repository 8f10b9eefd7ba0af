package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pemCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// TestIntermediateChain: a root, an intermediate it signs and one the
// intermediate signs; a leaf of the last carries the chain in tls.crt and
// the root as ca.crt, and verifies with only the root trusted (and not
// without it). Each CA is a CA (basic constraints, certificate signing)
// issued by its parent, and expires no later than it.
func TestIntermediateChain(t *testing.T) {
	root, _, err := NewCA("root", now)
	if err != nil {
		t.Fatal(err)
	}
	inter, interFiles, err := root.NewIntermediate("inter", now)
	if err != nil {
		t.Fatal(err)
	}
	inter2, inter2Files, err := inter.NewIntermediate("inter2", now.Add(4*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		ca       *CA
		parent   *CA
		files    Files
		chainLen int
	}{{"inter", inter, root, interFiles, 1}, {"inter2", inter2, inter, inter2Files, 2}} {
		c := tc.ca.Cert
		if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0 {
			t.Errorf("%s: IsCA %v, basic constraints %v, key usage %b", tc.name, c.IsCA, c.BasicConstraintsValid, c.KeyUsage)
		}
		if c.Issuer.CommonName != tc.parent.Cert.Subject.CommonName || c.CheckSignatureFrom(tc.parent.Cert) != nil ||
			!bytes.Equal(c.AuthorityKeyId, tc.parent.Cert.SubjectKeyId) {
			t.Errorf("%s: issuer %s, not signed by %s", tc.name, c.Issuer, tc.parent.Cert.Subject)
		}
		if c.NotAfter.After(tc.parent.Cert.NotAfter) {
			t.Errorf("%s expires at %s, after its CA (%s)", tc.name, c.NotAfter, tc.parent.Cert.NotAfter)
		}
		if !bytes.Equal(tc.files.CA, root.CertPEM) || !bytes.Equal(tc.ca.Root, root.CertPEM) {
			t.Errorf("%s: ca.crt is not the root", tc.name)
		}
		if n := len(pemCerts(t, tc.files.Cert)); n != tc.chainLen {
			t.Errorf("%s: tls.crt holds %d certificates, want %d", tc.name, n, tc.chainLen)
		}
		if !tc.ca.SignedBy(tc.parent) || tc.ca.SignedBy(root) != (tc.parent == root) || root.SignedBy(root) {
			t.Errorf("%s: SignedBy", tc.name)
		}
		// kept on disk and read back, it is the same CA
		dir := filepath.Join(t.TempDir(), tc.name)
		if _, err := Write(dir, tc.files, true); err != nil {
			t.Fatal(err)
		}
		loaded, err := LoadCA(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !loaded.Cert.Equal(c) || !bytes.Equal(loaded.Chain, tc.ca.Chain) || !bytes.Equal(loaded.Root, tc.ca.Root) || !loaded.SignedBy(tc.parent) {
			t.Errorf("%s read back differs", tc.name)
		}
	}

	leaf := Leaf{CommonName: "server", Hosts: []string{"server.example", "127.0.0.1"}, Server: true}
	f, err := inter2.Issue(leaf, now.Add(4*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	chain := pemCerts(t, f.Cert)
	if len(chain) != 3 || !chain[1].Equal(inter2.Cert) || !chain[2].Equal(inter.Cert) {
		t.Fatalf("tls.crt holds %d certificates, want the leaf, inter2 and inter", len(chain))
	}
	if !bytes.Equal(f.CA, root.CertPEM) {
		t.Error("the leaf's ca.crt is not the root")
	}
	if chain[0].NotAfter.After(inter2.Cert.NotAfter) {
		t.Errorf("the leaf expires at %s, after its CA (%s)", chain[0].NotAfter, inter2.Cert.NotAfter)
	}
	verify := func(roots *x509.CertPool, intermediates []*x509.Certificate) error {
		pool := x509.NewCertPool()
		for _, c := range intermediates {
			pool.AddCert(c)
		}
		_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, DNSName: "server.example",
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, CurrentTime: now.Add(4*365*24*time.Hour + time.Hour)})
		return err
	}
	onlyRoot := x509.NewCertPool()
	onlyRoot.AppendCertsFromPEM(f.CA)
	if err := verify(onlyRoot, chain[1:]); err != nil {
		t.Errorf("the leaf with its chain does not verify with only the root trusted: %v", err)
	}
	if err := verify(x509.NewCertPool(), chain[1:]); err == nil {
		t.Error("the leaf verifies with nothing trusted")
	}
	if err := verify(onlyRoot, nil); err == nil {
		t.Error("the leaf verifies without its chain")
	}
	other, _, _ := NewCA("root", now)
	otherPool := x509.NewCertPool()
	otherPool.AddCert(other.Cert)
	if err := verify(otherPool, chain[1:]); err == nil {
		t.Error("the leaf verifies with another root of the same name")
	}

	// kept while it fits; not once its CA's chain is another
	at := now.Add(4*365*24*time.Hour + time.Hour)
	if !Current(f, inter2, leaf, at) {
		t.Error("the leaf is not Current for its CA")
	}
	again, _, _ := inter.NewIntermediate("inter2", now)
	if Current(f, again, leaf, at) {
		t.Error("the leaf is Current for another intermediate")
	}
	rootLeaf, _ := root.Issue(leaf, now)
	if len(pemCerts(t, rootLeaf.Cert)) != 1 || !Current(rootLeaf, root, leaf, now) || Current(rootLeaf, inter, leaf, now) {
		t.Error("a leaf of the root")
	}
}

// TestIntermediateFilesChecked: an intermediate's tls.crt must lead to
// the root in its ca.crt; one without a ca.crt of its own is the root of
// what it issues (as before intermediates were told apart).
func TestIntermediateFilesChecked(t *testing.T) {
	root, _, _ := NewCA("root", now)
	other, _, _ := NewCA("other", now)
	_, f, err := root.NewIntermediate("inter", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCA(Files{CA: other.CertPEM, Cert: f.Cert, Key: f.Key}); err == nil || !strings.Contains(err.Error(), `tls.crt does not lead to the root in ca.crt: "inter" is not signed by "other"`) {
		t.Errorf("a chain to another root: %v", err)
	}
	ca, err := ParseCA(Files{Cert: f.Cert, Key: f.Key})
	if err != nil || !bytes.Equal(ca.Root, f.Cert) || ca.Chain != nil {
		t.Errorf("an intermediate without ca.crt: %v", err)
	}
	if _, err := ParseCA(Files{CA: f.CA, Cert: f.Cert, Key: other.keyPEM(t)}); err == nil {
		t.Error("a CA whose key is another's")
	}
}

func (ca *CA) keyPEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
