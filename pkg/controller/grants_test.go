package controller

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"

	"github.com/site-controller/site-controller/pkg/pass"
	"github.com/site-controller/site-controller/pkg/resources"
)

// TestIssueLinkAnswer: what a redemption answers is a Secret and a Link
// that decode into valid resources: the Link goes to the RouterAccess's
// endpoints at the host asked for, and the client certificate is issued
// for the redeeming site by the CA the RouterAccess trusts.
func TestIssueLinkAnswer(t *testing.T) {
	home, dir := setupNamespace(t, "testdata/render/links", "links")
	r := newTestReconciler(home)
	res, err := r.Reconcile(context.Background(), "links")
	if err != nil || res.Config == nil {
		t.Fatalf("%v", err)
	}
	// the accesses as the pass worked them out
	s := &siteState{Pass: &pass.Pass{Namespace: res.Namespace, Dir: dir, Now: testNow, Result: res}, owner: r.existingOwner("links")}
	if err := r.render(s, "podman"); err != nil {
		t.Fatal(err)
	}
	a := grantAccess(s.Desired.Accesses, "")
	if a == nil {
		t.Fatal("no RouterAccess")
	}
	answer, err := issueLink(dir, a, a.Hosts[0], "my-link", "site-b", testNow)
	if err != nil {
		t.Fatal(err)
	}
	docs, probs := resources.Decode("answer", answer)
	peer := resources.Build("peer", append(docs, siteDocFor(t, "peer")...), probs)
	if len(peer.Problems) > 0 || len(peer.Secrets) != 1 || len(peer.Links) != 1 {
		t.Fatalf("problems %v, %d Secrets, %d Links:\n%s", peer.Problems, len(peer.Secrets), len(peer.Links), answer)
	}
	link := peer.Links[0]
	if link.Metadata.Name != "my-link" || link.Spec.TLSCredentials != "my-link" || len(link.Spec.Endpoints) != len(a.Roles) || link.Spec.Endpoints[0].Host != a.Hosts[0] {
		t.Errorf("Link %+v", link)
	}
	block, _ := pem.Decode(mustDecode(t, peer.Secrets[0].Data["tls.crt"]))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.Desired.Credentials[a.TLS].CA)
	if cert.Subject.CommonName != "site-b" {
		t.Errorf("issued for %q", cert.Subject.CommonName)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: testNow}); err != nil {
		t.Errorf("the RouterAccess does not trust the issued client certificate: %v", err)
	}
	if _, err := issueLink(dir, a, a.Hosts[0], "Not_A_Name", "s", testNow); err == nil {
		t.Error("an invalid link name was issued")
	}
}

func siteDocFor(t *testing.T, name string) []*resources.Document {
	t.Helper()
	docs, probs := resources.Decode("input/resources/site.yaml", []byte("apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: "+name+"\n"))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return docs
}

func mustDecode(t *testing.T, b64 string) []byte {
	t.Helper()
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
