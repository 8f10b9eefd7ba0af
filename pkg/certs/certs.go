// Package certs creates and keeps the TLS credentials of a site: its CAs
// (kept across restarts, never regenerated while valid) and the leaf
// credentials the router and the controller use.
//
// A credential is a directory holding ca.crt, tls.crt and tls.key, as
// Skupper lays them out. Keys are written 0600 in 0700 directories, with
// fsync, because they cannot be regenerated without breaking whoever
// trusts them. It never writes outside the directories it is given.
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
	// renewBefore is how long before expiry a generated leaf is replaced.
	renewBefore = 30 * 24 * time.Hour
)

// CA is a certificate authority able to sign leaves.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     crypto.Signer
}

// Leaf describes a credential to issue.
type Leaf struct {
	CommonName string
	Hosts      []string // DNS names and IP addresses
	Server     bool
	Client     bool
}

// EnsureCA loads the CA in dir, or creates a self-signed one named cn when
// dir holds none. An existing CA is never replaced.
func EnsureCA(dir, cn string, now time.Time) (*CA, bool, error) {
	ca, err := LoadCA(dir)
	if err == nil {
		return ca, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generating key for %s: %w", cn, err)
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
		return nil, false, fmt.Errorf("creating CA %s: %w", cn, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeCredential(dir, certPEM, certPEM, key, true); err != nil {
		return nil, false, err
	}
	ca, err = LoadCA(dir)
	return ca, true, err
}

// LoadCA reads a CA from dir (tls.crt and tls.key). The error wraps
// fs.ErrNotExist when either file is missing.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, fmt.Errorf("loading CA %s: %w", dir, err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("loading CA %s: %w", dir, err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA %s: %w", dir, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA %s: %w", dir, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("loading CA %s: %s is not a CA certificate", dir, CertFile)
	}
	return &CA{Cert: cert, CertPEM: certPEM, Key: key}, nil
}

// EnsureLeaf makes dir hold a credential for l signed by ca, with ca.crt
// set to the CA. A credential already there is kept while it is signed by
// ca, names the same hosts, matches its key and is not near expiry.
func EnsureLeaf(dir string, ca *CA, l Leaf, now time.Time) (bool, error) {
	if leafIsCurrent(dir, ca, l, now) {
		return false, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, fmt.Errorf("generating key for %s: %w", l.CommonName, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.CommonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if l.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if l.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, h := range l.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return false, fmt.Errorf("signing %s: %w", l.CommonName, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeCredential(dir, ca.CertPEM, certPEM, key, false); err != nil {
		return false, err
	}
	return true, nil
}

func leafIsCurrent(dir string, ca *CA, l Leaf, now time.Time) bool {
	caPEM, err1 := os.ReadFile(filepath.Join(dir, CAFile))
	certPEM, err2 := os.ReadFile(filepath.Join(dir, CertFile))
	keyPEM, err3 := os.ReadFile(filepath.Join(dir, KeyFile))
	if err1 != nil || err2 != nil || err3 != nil || !bytes.Equal(caPEM, ca.CertPEM) {
		return false
	}
	cert, err := parseCert(certPEM)
	if err != nil || cert.CheckSignatureFrom(ca.Cert) != nil || now.Add(renewBefore).After(cert.NotAfter) {
		return false
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return false
	}
	if !keyMatches(key, cert) {
		return false
	}
	var hosts []string
	for _, ip := range cert.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	hosts = append(hosts, cert.DNSNames...)
	want := slices.Clone(l.Hosts)
	for i, h := range want {
		if ip := net.ParseIP(h); ip != nil {
			want[i] = ip.String()
		}
	}
	slices.Sort(hosts)
	slices.Sort(want)
	return slices.Equal(hosts, want) && cert.Subject.CommonName == l.CommonName
}

// writeCredential writes a credential atomically, file by file. A CA is
// durable (fsync of each file, then of the directory): it cannot be
// regenerated without breaking whoever trusts it. A leaf can: it is issued
// again from its CA whenever it is missing or does not verify.
// keyMatches tells whether key is the private key of cert.
func keyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

func writeCredential(dir string, caPEM, certPEM []byte, key *ecdsa.PrivateKey, durable bool) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key for %s: %w", dir, err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := privateDir(dir); err != nil {
		return err
	}
	// the key first: a crash between writes leaves a credential that
	// fails the checks and is issued again, never a cert without its key
	for _, f := range []struct {
		name string
		data []byte
		perm fs.FileMode
	}{{KeyFile, keyPEM, 0o600}, {CertFile, certPEM, 0o644}, {CAFile, caPEM, 0o644}} {
		if err := fileio.Replace(filepath.Join(dir, f.name), f.data, f.perm, 0o700, durable); err != nil {
			return err
		}
	}
	return nil
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

// CheckUserCredential validates a user-provided credential directory: each
// file present must parse, and a key pair must match. It returns which
// files are there.
func CheckUserCredential(dir string) (hasCA, hasPair bool, err error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return b, err
	}
	caPEM, err := read(CAFile)
	if err != nil {
		return false, false, err
	}
	certPEM, err := read(CertFile)
	if err != nil {
		return false, false, err
	}
	keyPEM, err := read(KeyFile)
	if err != nil {
		return false, false, err
	}
	if caPEM != nil {
		if _, err := parseCert(caPEM); err != nil {
			return false, false, fmt.Errorf("%s: %w", CAFile, err)
		}
	}
	if (certPEM == nil) != (keyPEM == nil) {
		if certPEM == nil {
			return false, false, fmt.Errorf("%s without %s", KeyFile, CertFile)
		}
		return false, false, fmt.Errorf("%s without %s", CertFile, KeyFile)
	}
	if certPEM != nil {
		cert, err := parseCert(certPEM)
		if err != nil {
			return false, false, fmt.Errorf("%s: %w", CertFile, err)
		}
		key, err := parseKey(keyPEM)
		if err != nil {
			return false, false, fmt.Errorf("%s: %w", KeyFile, err)
		}
		if !keyMatches(key, cert) {
			return false, false, fmt.Errorf("%s does not match the key in %s", KeyFile, CertFile)
		}
	}
	return caPEM != nil, certPEM != nil, nil
}

// Copy copies the credential files present in src to dst (keys 0600,
// directory 0700), removing from dst the ones src lacks. It reports
// whether anything in dst changed.
func Copy(src, dst string) (bool, error) {
	if err := privateDir(dst); err != nil {
		return false, err
	}
	changed := false
	for _, name := range []string{CAFile, CertFile, KeyFile} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if errors.Is(err, fs.ErrNotExist) {
			err := os.Remove(filepath.Join(dst, name))
			if err == nil {
				changed = true
			} else if !errors.Is(err, fs.ErrNotExist) {
				return changed, fmt.Errorf("removing %s: %w", filepath.Join(dst, name), err)
			}
			continue
		}
		if err != nil {
			return changed, fmt.Errorf("reading %s: %w", filepath.Join(src, name), err)
		}
		perm := fs.FileMode(0o644)
		if name == KeyFile {
			perm = 0o600
		}
		c, err := fileio.WriteFile(filepath.Join(dst, name), data, perm, 0o700, false)
		if err != nil {
			return changed, err
		}
		changed = changed || c
	}
	return changed, nil
}

// CopyFile copies one file, for a CA-only profile made from a credential.
func CopyFile(src, dst string) (bool, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", src, err)
	}
	return fileio.WriteFile(dst, data, 0o644, 0o700, false)
}

// privateDir creates dir 0700, or makes an existing one 0700.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("securing %s: %w", dir, err)
	}
	return nil
}
