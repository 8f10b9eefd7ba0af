// Package certs creates and keeps the TLS credentials of a site: its CAs
// (kept across restarts, never regenerated while valid) and the leaf
// credentials the router and the controller use.
//
// A credential is Files in memory (ca.crt, tls.crt, tls.key) and a
// directory holding them on disk, as Skupper lays them out. NewCA, Issue,
// Current and Check work on values; Read and Write move them to and from
// directories: keys 0600 in 0700 directories, and CAs with fsync, because
// they cannot be regenerated without breaking whoever trusts them. It never
// writes outside the directories it is given.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/site-controller/site-controller/pkg/fileio"
)

// File names inside a credential directory.
const (
	CAFile   = "ca.crt"
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

const (
	caValidity   = 5 * 365 * 24 * time.Hour
	leafValidity = 2 * 365 * 24 * time.Hour
)

// CA is a certificate authority able to sign leaves: a root (self-signed)
// or an intermediate, signed by another CA.
//
// What it issues carries the chain up to the root, and names the root as
// what to trust: a leaf's tls.crt is the leaf, then Chain; its ca.crt is
// Root. A peer that trusts only the root verifies it. An intermediate's own
// files are the same: tls.crt its certificate and the chain above it,
// ca.crt the root.
type CA struct {
	Cert *x509.Certificate
	// CertPEM is this CA's certificate (PEM).
	CertPEM []byte
	Key     crypto.Signer
	// Chain is the certificates from this CA up to the root, the root
	// left out, this CA's first (PEM): what a leaf it issues presents
	// after its own certificate. Nil for a root.
	Chain []byte
	// Root is the root's certificate (PEM): what a peer of its leaves
	// trusts, their ca.crt. CertPEM for a root.
	Root []byte
}

// Leaf describes a credential to issue.
type Leaf struct {
	CommonName string
	Hosts      []string // DNS names and IP addresses
	Server     bool
	Client     bool
}

// Files is a credential's content; a nil field is a file that is not
// there.
type Files struct {
	CA, Cert, Key []byte
}

// Empty tells whether no file is there.
func (f Files) Empty() bool { return f.CA == nil && f.Cert == nil && f.Key == nil }

// NewCA creates a self-signed CA named cn, returning it and its files
// (tls.crt and ca.crt the certificate, tls.key the key).
func NewCA(cn string, now time.Time) (*CA, Files, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, Files{}, fmt.Errorf("generating key for %s: %w", cn, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, Files{}, fmt.Errorf("creating CA %s: %w", cn, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, Files{}, fmt.Errorf("creating CA %s: %w", cn, err)
	}
	f := Files{CA: certPEM, Cert: certPEM, Key: keyPEM}
	ca, err := ParseCA(f)
	return ca, f, err
}

// NewIntermediate creates a CA named cn signed by ca, returning it and its
// files: tls.crt its certificate followed by ca's chain, ca.crt the root,
// tls.key its key. It expires no later than ca.
func (ca *CA) NewIntermediate(cn string, now time.Time) (*CA, Files, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, Files{}, fmt.Errorf("generating key for %s: %w", cn, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              earliest(now.Add(caValidity), ca.Cert.NotAfter),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, Files{}, fmt.Errorf("creating CA %s signed by %s: %w", cn, ca.Cert.Subject.CommonName, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, Files{}, fmt.Errorf("creating CA %s: %w", cn, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	f := Files{CA: ca.Root, Cert: append(certPEM, ca.Chain...), Key: keyPEM}
	out, err := ParseCA(f)
	return out, f, err
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// ParseCA reads a CA from its files: tls.crt (its certificate, then for an
// intermediate the chain above it) and tls.key, and for an intermediate
// ca.crt, the root. An intermediate without a ca.crt of its own (ca.crt
// missing, or the same as tls.crt) is taken as the root of what it issues,
// as it was before intermediates were told apart.
func ParseCA(f Files) (*CA, error) {
	if f.Cert == nil || f.Key == nil {
		return nil, fmt.Errorf("%s and %s: %w", CertFile, KeyFile, fs.ErrNotExist)
	}
	block, _ := pem.Decode(f.Cert)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate found", CertFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CertFile, err)
	}
	key, err := parseKey(f.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", CertFile)
	}
	if !keyMatches(key, cert) {
		return nil, fmt.Errorf("%s does not match the key in %s", KeyFile, CertFile)
	}
	if SelfSigned(cert) || f.CA == nil || bytes.Equal(f.CA, f.Cert) {
		return &CA{Cert: cert, CertPEM: f.Cert, Key: key, Root: f.Cert}, nil
	}
	root, err := parseCert(f.CA)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CAFile, err)
	}
	// each certificate of the chain is signed by the next, the last by
	// the root
	chain := append(parseCerts(f.Cert), root)
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return nil, fmt.Errorf("%s does not lead to the root in %s: %q is not signed by %q: %w", CertFile, CAFile,
				chain[i].Subject.CommonName, chain[i+1].Subject.CommonName, err)
		}
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(block), Key: key, Chain: f.Cert, Root: f.CA}, nil
}

// SelfSigned tells whether cert is a root: issued by itself, and signed
// with its own key.
func SelfSigned(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawIssuer, cert.RawSubject) && cert.CheckSignatureFrom(cert) == nil
}

// SignedBy tells whether ca was issued by parent: signed with its key, and
// leading to the same root.
func (ca *CA) SignedBy(parent *CA) bool {
	return !SelfSigned(ca.Cert) && ca.Cert.CheckSignatureFrom(parent.Cert) == nil && bytes.Equal(ca.Root, parent.Root)
}

// Above returns the certificates above ca up to its root, the root last:
// none for a root.
func (ca *CA) Above() []*x509.Certificate {
	if ca.Chain == nil {
		return nil
	}
	return append(parseCerts(ca.Chain)[1:], parseCerts(ca.Root)...)
}

// parseCerts returns the certificates in data that parse.
func parseCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for rest := data; len(rest) > 0; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil && block.Type == "CERTIFICATE" {
			out = append(out, c)
		}
	}
	return out
}

// Issue issues a credential for l signed by ca: tls.crt the leaf followed
// by ca's chain (nothing more when ca is a root), ca.crt the root. It
// expires no later than ca.
func (ca *CA) Issue(l Leaf, now time.Time) (Files, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, fmt.Errorf("generating key for %s: %w", l.CommonName, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.CommonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     earliest(now.Add(leafValidity), ca.Cert.NotAfter),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if l.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if l.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, h := range l.Hosts {
		// an address is also a DNS name, as Skupper issues them: the
		// router checks a peer's host against DNS names only
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return Files{}, fmt.Errorf("signing %s: %w", l.CommonName, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Files{}, fmt.Errorf("signing %s: %w", l.CommonName, err)
	}
	return Files{CA: ca.Root, Cert: append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.Chain...), Key: keyPEM}, nil
}

// Current tells whether f is a credential for l that can be kept: signed
// by ca (carrying its chain, and its root as ca.crt), naming the same
// hosts and common name, matching its key, and not near expiry.
func Current(f Files, ca *CA, l Leaf, now time.Time) bool {
	if f.CA == nil || f.Cert == nil || f.Key == nil || !bytes.Equal(f.CA, ca.Root) {
		return false
	}
	block, chain := pem.Decode(f.Cert)
	if block == nil || !bytes.Equal(chain, ca.Chain) {
		return false
	}
	cert, err := parseCert(f.Cert)
	if err != nil || cert.CheckSignatureFrom(ca.Cert) != nil || !now.Before(renewAt(cert)) {
		return false
	}
	key, err := parseKey(f.Key)
	if err != nil {
		return false
	}
	if !keyMatches(key, cert) {
		return false
	}
	// the names compared as sets: an address may be named as both an IP
	// and a DNS name (what Issue does) or as an IP only (older ones)
	canon := func(h string) string {
		if ip := net.ParseIP(h); ip != nil {
			return ip.String()
		}
		return h
	}
	var hosts []string
	for _, ip := range cert.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	for _, h := range cert.DNSNames {
		hosts = append(hosts, canon(h))
	}
	var want []string
	for _, h := range l.Hosts {
		want = append(want, canon(h))
	}
	slices.Sort(hosts)
	slices.Sort(want)
	usage := func(u x509.ExtKeyUsage) bool { return slices.Contains(cert.ExtKeyUsage, u) }
	return slices.Equal(slices.Compact(hosts), slices.Compact(want)) && cert.Subject.CommonName == l.CommonName &&
		usage(x509.ExtKeyUsageServerAuth) == l.Server && usage(x509.ExtKeyUsageClientAuth) == l.Client
}

// MaxFileSize is the cap on one credential file: a PEM of more is not
// read.
const MaxFileSize = fileio.MaxInputFile

// Read reads the credential files in dir; a file that is not there is nil,
// and so is everything when dir is not there. Each is read with
// fileio.ReadInput: a named pipe, a device, a directory or a file over
// MaxFileSize is an error naming the file by its name in dir ("ca.crt:
// not a regular file (a named pipe)"), never a read that blocks.
func Read(dir string) (Files, error) {
	var f Files
	for _, x := range []struct {
		name string
		to   *[]byte
	}{{CAFile, &f.CA}, {CertFile, &f.Cert}, {KeyFile, &f.Key}} {
		data, err := fileio.ReadInput(filepath.Join(dir, x.name), MaxFileSize)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Files{}, fmt.Errorf("%s: %w", x.name, err)
		}
		*x.to = data
	}
	return f, nil
}

// Write makes dir (0700) hold exactly f: each file written atomically when
// its content differs (tls.key 0600, the certificates 0644), files f lacks
// removed. The key goes first, so that a crash between writes leaves a
// credential that fails Current and is issued again, never a certificate
// without its key. With durable set (a CA), each file and the directory
// are synced. It returns the files it wrote or removed.
func Write(dir string, f Files, durable bool) ([]string, error) {
	return WriteIn(fileio.Tree{}, dir, f, durable)
}

// WriteIn is Write below tree's root: no symbolic link there is followed,
// and what is written belongs to the tree's owner.
func WriteIn(tree fileio.Tree, dir string, f Files, durable bool) ([]string, error) {
	d, err := tree.OpenDir(dir, 0o700) // made, with what is missing on the way
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if err := d.Secure(0o700); err != nil {
		return nil, err
	}
	d.RemoveTemps() // left by a crash
	d.SyncLater()   // the three files flushed, then their directory once
	var changed []string
	for _, x := range []struct {
		name string
		data []byte
		perm fs.FileMode
	}{{KeyFile, f.Key, 0o600}, {CertFile, f.Cert, 0o644}, {CAFile, f.CA, 0o644}} {
		path := filepath.Join(dir, x.name)
		if x.data == nil {
			if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err := d.Remove(x.name); err != nil {
				return changed, fmt.Errorf("removing %s: %w", path, err)
			}
			changed = append(changed, path)
			continue
		}
		c, err := d.WriteFile(x.name, x.data, x.perm, durable)
		if err != nil {
			return changed, err
		}
		if c {
			changed = append(changed, path)
		}
	}
	if err := d.Sync(); err != nil {
		return changed, err
	}
	return changed, nil
}

// EnsureCA loads the CA in dir, or creates and durably writes a
// self-signed one named cn when dir holds none. An existing CA is never
// replaced.
func EnsureCA(dir, cn string, now time.Time) (*CA, bool, error) {
	ca, err := LoadCA(dir)
	if err == nil {
		return ca, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	ca, f, err := NewCA(cn, now)
	if err != nil {
		return nil, false, err
	}
	if _, err := Write(dir, f, true); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// LoadCA reads a CA from dir (tls.crt and tls.key). The error wraps
// fs.ErrNotExist when either file is missing.
func LoadCA(dir string) (*CA, error) {
	f, err := Read(dir)
	if err != nil {
		return nil, fmt.Errorf("loading CA %s: %w", dir, err)
	}
	ca, err := ParseCA(f)
	if err != nil {
		return nil, fmt.Errorf("loading CA %s: %w", dir, err)
	}
	return ca, nil
}

// EnsureLeaf makes dir hold a credential for l signed by ca, keeping the
// one there while it is Current.
func EnsureLeaf(dir string, ca *CA, l Leaf, now time.Time) (bool, error) {
	if f, err := Read(dir); err == nil && Current(f, ca, l, now) {
		return false, nil
	}
	f, err := ca.Issue(l, now)
	if err != nil {
		return false, err
	}
	changed, err := Write(dir, f, false)
	return len(changed) > 0, err
}

// keyMatches tells whether key is the private key of cert.
func keyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate found")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM private key found")
	}
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unsupported private key type %q", b.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("private key cannot sign")
	}
	return s, nil
}

// Check validates a user-provided credential: each file present must
// parse, and a key pair must match.
func Check(f Files) error {
	if f.CA != nil {
		if _, err := parseCert(f.CA); err != nil {
			return fmt.Errorf("%s: %w", CAFile, err)
		}
	}
	if (f.Cert == nil) != (f.Key == nil) {
		if f.Cert == nil {
			return fmt.Errorf("%s without %s", KeyFile, CertFile)
		}
		return fmt.Errorf("%s without %s", CertFile, KeyFile)
	}
	if f.Cert != nil {
		cert, err := parseCert(f.Cert)
		if err != nil {
			return fmt.Errorf("%s: %w", CertFile, err)
		}
		key, err := parseKey(f.Key)
		if err != nil {
			return fmt.Errorf("%s: %w", KeyFile, err)
		}
		if !keyMatches(key, cert) {
			return fmt.Errorf("%s does not match the key in %s", KeyFile, CertFile)
		}
	}
	return nil
}

// Hosts returns the host names and addresses a certificate names (its
// subjectAlternativeNames: DNS names first, then IP addresses).
func Hosts(certPEM []byte) ([]string, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, err
	}
	hosts := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		if !slices.Contains(hosts, ip.String()) {
			hosts = append(hosts, ip.String())
		}
	}
	return hosts, nil
}

// renewAt is when a generated certificate is replaced: at two thirds of
// its life, so that a site that is down for a while still renews it in
// time, and peers see a new one long before the old one expires.
func renewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life / 3 * 2)
}

// RenewAt is when the certificate in certPEM is due to be replaced.
func RenewAt(certPEM []byte) (time.Time, bool) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return time.Time{}, false
	}
	return renewAt(cert), true
}

// NotAfter is when the certificate in certPEM expires.
func NotAfter(certPEM []byte) (time.Time, bool) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return time.Time{}, false
	}
	return cert.NotAfter, true
}
