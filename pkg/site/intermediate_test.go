package site

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/resources"
)

// chainInput is an Input for the resources in src, with the CAs kept as
// issuers (what runtime/issuers holds after earlier passes) and the
// credentials of runtime/certs.
func chainInput(t *testing.T, src string, issuers map[string]certs.Files, current map[string]certs.Files) Input {
	t.Helper()
	docs, probs := resources.Decode("input/resources/site.yaml", []byte(src))
	ns := resources.Build("ns", docs, probs)
	if len(ns.Problems) > 0 {
		t.Fatalf("validation: %v", ns.Problems)
	}
	in := Input{Namespace: ns, Platform: "podman", Version: "test", Now: testNow, Dir: "$NSDIR", SiteID: testSiteID, ManagementPort: 5671,
		UserCerts: map[string]UserCert{}, HostNames: testHostNames, Issuers: map[string]Issuer{}, Current: current}
	in.Ports = testPorts(ns)
	for name, f := range issuers {
		ca, err := certs.ParseCA(f)
		in.Issuers[name] = Issuer{CA: ca, Err: err}
	}
	return in
}

func certsOf(t *testing.T, data []byte) []*x509.Certificate {
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

const chainSite = `apiVersion: skupper.io/v2alpha1
kind: Site
metadata: {name: s}
---
apiVersion: skupper.io/v2alpha1
kind: Certificate
metadata: {name: root-ca}
spec: {subject: Root CA, signing: true}
---
apiVersion: skupper.io/v2alpha1
kind: Certificate
metadata: {name: own-ca}
spec: {ca: own-ca, subject: Own CA, signing: true}
---
apiVersion: skupper.io/v2alpha1
kind: Certificate
metadata: {name: team-ca}
spec: {ca: root-ca, subject: Team CA, signing: true}
---
apiVersion: skupper.io/v2alpha1
kind: Certificate
metadata: {name: front-tls}
spec: {ca: team-ca, subject: front, hosts: [front.example], server: true}
---
apiVersion: skupper.io/v2alpha1
kind: RouterAccess
metadata: {name: team-access}
spec:
  issuer: team-ca
  bindHost: 127.0.0.1
  roles: [{name: inter-router}]
`

// TestIntermediateCertificates: a signing Certificate whose spec.ca names
// itself is a root, and one whose spec.ca names another CA an intermediate
// that CA signs; leaves and link credentials it issues carry the chain and
// trust the root. Kept CAs and leaves are kept (the same bytes again);
// a kept CA that is not what its spec asks for any more is made anew.
func TestIntermediateCertificates(t *testing.T) {
	d, err := Build(chainInput(t, chainSite, nil, nil))
	if err != nil || len(d.Problems) > 0 {
		t.Fatalf("%v %v", err, d.Problems)
	}
	if got := slices.Sorted(maps.Keys(d.NewIssuers)); !slices.Equal(got, []string{"own-ca", "root-ca", "skupper-local-ca", "team-ca"}) {
		t.Fatalf("new CAs %v", got)
	}
	parse := func(name string) *certs.CA {
		ca, err := certs.ParseCA(d.NewIssuers[name])
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	root, own, team := parse("root-ca"), parse("own-ca"), parse("team-ca")
	if !certs.SelfSigned(own.Cert) || own.Cert.Subject.CommonName != "Own CA" {
		t.Error("own-ca (spec.ca its own name) is not a root")
	}
	if !team.SignedBy(root) || team.Cert.Subject.CommonName != "Team CA" || !bytes.Equal(d.NewIssuers["team-ca"].CA, root.CertPEM) {
		t.Error("team-ca is not an intermediate of root-ca")
	}
	front := d.Credentials["front-tls"]
	chain := certsOf(t, front.Cert)
	if len(chain) != 2 || !chain[1].Equal(team.Cert) || !bytes.Equal(front.CA, root.CertPEM) {
		t.Fatalf("front-tls: %d certificates, ca.crt the root: %v", len(chain), bytes.Equal(front.CA, root.CertPEM))
	}
	verify := func(what string, cert []byte, trusted []byte, usage x509.ExtKeyUsage, host string) {
		t.Helper()
		c := certsOf(t, cert)
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AppendCertsFromPEM(trusted)
		for _, i := range c[1:] {
			inter.AddCert(i)
		}
		if _, err := c[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: testNow}); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	verify("front-tls with only the root", front.Cert, root.CertPEM, x509.ExtKeyUsageServerAuth, "front.example")
	// a RouterAccess issued by the intermediate: its server certificate
	// and the link file's client certificate carry the chain, and each
	// side trusts the root
	server, client := d.Credentials["team-access"], d.Credentials["client-team-access"]
	if !bytes.Equal(server.CA, root.CertPEM) || !bytes.Equal(client.CA, root.CertPEM) {
		t.Error("the RouterAccess's credentials do not trust the root")
	}
	verify("the RouterAccess's server certificate, as a peer verifies it", server.Cert, client.CA, x509.ExtKeyUsageServerAuth, "127.0.0.1")
	verify("the link file's client certificate, as the router verifies it", client.Cert, server.CA, x509.ExtKeyUsageClientAuth, "")
	link := d.LinkFiles["link-team-access-127.0.0.1.yaml"]
	if link == nil || !strings.Contains(string(link), "kind: Link") {
		t.Fatalf("no link file: %v", slices.Collect(maps.Keys(d.LinkFiles)))
	}

	// the next pass keeps everything: same CAs, same bytes
	kept := map[string]certs.Files{}
	maps.Copy(kept, d.NewIssuers)
	again, err := Build(chainInput(t, chainSite, kept, d.Credentials))
	if err != nil || len(again.Problems) > 0 {
		t.Fatalf("%v %v", err, again.Problems)
	}
	if len(again.NewIssuers) > 0 {
		t.Errorf("made again: %v", slices.Collect(maps.Keys(again.NewIssuers)))
	}
	if !bytes.Equal(again.ConfigJSON, d.ConfigJSON) || !maps.EqualFunc(again.Credentials, d.Credentials, func(a, b certs.Files) bool {
		return bytes.Equal(a.CA, b.CA) && bytes.Equal(a.Cert, b.Cert) && bytes.Equal(a.Key, b.Key)
	}) || !maps.EqualFunc(again.LinkFiles, d.LinkFiles, bytes.Equal) {
		t.Error("a second pass changed the configuration, a credential or a link file")
	}

	// team-ca made a root: a new root, and front-tls issued by it
	asRoot := strings.Replace(chainSite, "spec: {ca: root-ca, subject: Team CA, signing: true}", "spec: {subject: Team CA, signing: true}", 1)
	d2, err := Build(chainInput(t, asRoot, kept, d.Credentials))
	if err != nil || len(d2.Problems) > 0 {
		t.Fatalf("%v %v", err, d2.Problems)
	}
	if got := slices.Sorted(maps.Keys(d2.NewIssuers)); !slices.Equal(got, []string{"team-ca"}) {
		t.Fatalf("new CAs %v, want team-ca", got)
	}
	newTeam, _ := certs.ParseCA(d2.NewIssuers["team-ca"])
	if !certs.SelfSigned(newTeam.Cert) || !bytes.Equal(d2.Credentials["front-tls"].CA, newTeam.CertPEM) || len(certsOf(t, d2.Credentials["front-tls"].Cert)) != 1 {
		t.Error("team-ca made a root: front-tls is not issued by the new root alone")
	}

	// root-ca gone (made anew): team-ca, which it no longer signs, too
	delete(kept, "root-ca")
	d3, err := Build(chainInput(t, chainSite, kept, d.Credentials))
	if err != nil || len(d3.Problems) > 0 {
		t.Fatalf("%v %v", err, d3.Problems)
	}
	if got := slices.Sorted(maps.Keys(d3.NewIssuers)); !slices.Equal(got, []string{"root-ca", "team-ca"}) {
		t.Fatalf("new CAs %v, want root-ca and team-ca", got)
	}
	newRoot, _ := certs.ParseCA(d3.NewIssuers["root-ca"])
	verify("front-tls after the root changed", d3.Credentials["front-tls"].Cert, newRoot.CertPEM, x509.ExtKeyUsageServerAuth, "front.example")
}

// TestIntermediateUnderInternalCA: a CA of the user's (input/issuers)
// that an internal CA signed never issues what leaves the site, by a
// Certificate, as an intermediate's CA, or for a RouterAccess: what it
// issues would carry the internal CA and have peers trust it.
func TestIntermediateUnderInternalCA(t *testing.T) {
	first, err := Build(chainInput(t, "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: s}\n", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	local, err := certs.ParseCA(first.NewIssuers["skupper-local-ca"])
	if err != nil {
		t.Fatal(err)
	}
	_, under, err := local.NewIntermediate("innocent", testNow)
	if err != nil {
		t.Fatal(err)
	}
	src := `apiVersion: skupper.io/v2alpha1
kind: Site
metadata: {name: s}
---
apiVersion: skupper.io/v2alpha1
kind: Certificate
metadata: {name: leaf}
spec: {ca: innocent, subject: leaf, server: true}
---
apiVersion: skupper.io/v2alpha1
kind: Certificate
metadata: {name: below}
spec: {ca: innocent, subject: below, signing: true}
---
apiVersion: skupper.io/v2alpha1
kind: RouterAccess
metadata: {name: access}
spec:
  issuer: innocent
  bindHost: 127.0.0.1
  roles: [{name: inter-router}]
`
	in := chainInput(t, src, map[string]certs.Files{"skupper-local-ca": first.NewIssuers["skupper-local-ca"]}, nil)
	ca, err := certs.ParseCA(under)
	if err != nil {
		t.Fatal(err)
	}
	in.Issuers["innocent"] = Issuer{CA: ca, User: true}
	d, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	why := "innocent is an intermediate CA under skupper-local-ca, the CA of the router's local management listener: what it issues would carry and trust that CA; it cannot sign credentials that leave the site"
	var got []string
	for _, p := range d.Problems {
		got = append(got, p.ID+": "+p.Field+": "+p.Message)
	}
	want := []string{"Certificate/below: spec.ca: " + why, "Certificate/leaf: spec.ca: " + why, "RouterAccess/access: spec.issuer: " + why}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for name := range d.Credentials {
		if name == "leaf" || name == "access" || name == "client-access" {
			t.Errorf("credential %s was issued", name)
		}
	}
	if len(d.LinkFiles) > 0 || d.NewIssuers["below"].Cert != nil {
		t.Error("a link file or a CA below was made")
	}
}
