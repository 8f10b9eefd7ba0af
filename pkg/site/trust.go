package site

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
)

// The trust boundary of a site: its internal CAs (resources.InternalCAs:
// skupper-local-ca, whose client certificates manage the router, and
// skupper-service-ca, which the clients of its Listeners trust) sign only
// what stays inside it. Validation refuses their names wherever a field
// names the CA of what leaves the site; the checks here hold even without
// it, on what is about to be issued or presented, and also catch a copy
// of an internal CA under another name (the same key).

// InternalCAs are the internal CAs a site has, by name: the certificates
// only.
type InternalCAs map[string]*x509.Certificate

// LoadInternalCAs reads the internal CAs of the site in dir that exist
// (input/issuers/<name> wins over runtime/issuers/<name>), for what
// issues outside a pass: a grant's answer, link generate. An internal CA
// that cannot be read is an error: what it signed could not be told.
func LoadInternalCAs(dir namespace.Dir) (InternalCAs, error) {
	out := InternalCAs{}
	for _, name := range slices.Sorted(maps.Keys(resources.InternalCAs)) {
		for _, d := range []string{filepath.Join(dir.InputIssuers(), name), filepath.Join(dir.RuntimeIssuers(), name)} {
			f, err := certs.Read(d)
			if err != nil {
				return nil, fmt.Errorf("reading the CA %s: %w", name, err)
			}
			if f.Cert == nil {
				continue
			}
			cert, err := parseCert(f.Cert)
			if err != nil {
				return nil, fmt.Errorf("reading the CA %s: %s: %w", name, certs.CertFile, err)
			}
			out[name] = cert
			break
		}
	}
	return out, nil
}

// internal returns the internal CAs this Build has: loaded or generated.
func (b *builder) internal() InternalCAs {
	out := InternalCAs{}
	for name := range resources.InternalCAs {
		if ca := b.generated[name]; ca != nil {
			out[name] = ca.Cert
		} else if is, ok := b.in.Issuers[name]; ok && is.Err == nil && is.CA != nil {
			out[name] = is.CA.Cert
		}
	}
	return out
}

// RefuseIssuer returns why the CA named name, whose certificate is ca,
// cannot sign credentials that leave the site: it is an internal CA, by
// name or by key. Nil when it can.
func (in InternalCAs) RefuseIssuer(name string, ca *x509.Certificate) error {
	if msg := resources.IssuerProblem(name); msg != "" {
		return fmt.Errorf("%s", msg)
	}
	if ca == nil {
		return nil
	}
	for _, n := range slices.Sorted(maps.Keys(in)) {
		if bytes.Equal(in[n].RawSubjectPublicKeyInfo, ca.RawSubjectPublicKeyInfo) {
			return fmt.Errorf("%s has the key of %s, %s; it cannot sign credentials that leave the site", name, n, resources.InternalCAs[n])
		}
	}
	return nil
}

// Signer names the internal CA that signed the certificate in certPEM,
// or returns "".
func (in InternalCAs) Signer(certPEM []byte) string {
	cert, err := parseCert(certPEM)
	if err != nil {
		return ""
	}
	for _, n := range slices.Sorted(maps.Keys(in)) {
		if cert.CheckSignatureFrom(in[n]) == nil {
			return n
		}
	}
	return ""
}

// RefuseCredential returns why a credential from the input (where names
// it: "input/certs/x", "Secret x") cannot be given to the router for a
// link, a RouterAccess, a Listener or a Connector: its ca.crt holds the
// management CA (the router would accept what that CA signs, the
// controller's own client certificate included, from whoever connects),
// or its tls.crt is signed by it (the router would hand out a
// certificate of its management). Nil when it can.
func (in InternalCAs) RefuseCredential(where string, f certs.Files) error {
	local := in[routerconfig.LocalCA]
	if local == nil {
		return nil
	}
	what := resources.InternalCAs[routerconfig.LocalCA]
	for rest := f.CA; len(rest) > 0; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil && bytes.Equal(cert.RawSubjectPublicKeyInfo, local.RawSubjectPublicKeyInfo) {
			return fmt.Errorf("%s: its %s holds %s, %s: the router would accept what that CA signs from whoever connects", where, certs.CAFile, routerconfig.LocalCA, what)
		}
	}
	if f.Cert != nil && in.Signer(f.Cert) == routerconfig.LocalCA {
		return fmt.Errorf("%s: its %s is signed by %s, %s: it cannot leave the site", where, certs.CertFile, routerconfig.LocalCA, what)
	}
	return nil
}

// RefuseLinkFile returns why a link file (a Secret and a Link, as
// LinkYAML writes them) cannot leave the site: its client certificate is
// signed by an internal CA, or its Secret would have the peer trust the
// management CA. Nil when it can.
func (in InternalCAs) RefuseLinkFile(data []byte) error {
	docs, problems := resources.Decode("link file", data)
	if resources.HasErrors(problems) {
		return fmt.Errorf("not a link file: %s", problems[0].Message)
	}
	for _, d := range docs {
		s, ok := d.Object.(*resources.Secret)
		if !ok {
			continue
		}
		f := secretFiles(s)
		if signer := in.Signer(f.Cert); signer != "" {
			return fmt.Errorf("the client certificate of Secret %s is signed by %s, %s: it cannot leave the site", s.Metadata.Name, signer, resources.InternalCAs[signer])
		}
		if err := in.RefuseCredential("Secret "+s.Metadata.Name, f); err != nil {
			return err
		}
	}
	return nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM certificate found")
	}
	return x509.ParseCertificate(b.Bytes)
}
