package certs

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func TestCAIsKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, created, err := EnsureCA(dir, "test-ca", now)
	if err != nil || !created {
		t.Fatalf("first EnsureCA: created=%v err=%v", created, err)
	}
	again, created, err := EnsureCA(dir, "test-ca", now.Add(24*time.Hour))
	if err != nil || created || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("second EnsureCA replaced the CA: created=%v err=%v", created, err)
	}
	st, _ := os.Stat(filepath.Join(dir, KeyFile))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v", st.Mode().Perm())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("CA dir mode %v", st.Mode().Perm())
	}
}

func TestLeafIsReissuedOnlyWhenNeeded(t *testing.T) {
	ca, _, err := EnsureCA(filepath.Join(t.TempDir(), "ca"), "ca", now)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "leaf")
	leaf := Leaf{CommonName: "server", Hosts: []string{"127.0.0.1", "localhost"}, Server: true}
	steps := []struct {
		name    string
		leaf    Leaf
		ca      *CA
		at      time.Time
		reissue bool
	}{
		{"new", leaf, ca, now, true},
		{"unchanged", leaf, ca, now.Add(time.Hour), false},
		{"hosts in another order", Leaf{CommonName: "server", Hosts: []string{"localhost", "127.0.0.1"}, Server: true}, ca, now, false},
		{"new host", Leaf{CommonName: "server", Hosts: []string{"127.0.0.1", "localhost", "example.com"}, Server: true}, ca, now, true},
		{"near expiry", Leaf{CommonName: "server", Hosts: []string{"127.0.0.1", "localhost", "example.com"}, Server: true}, ca, now.Add(leafValidity - 10*24*time.Hour), true},
	}
	other, _, _ := EnsureCA(filepath.Join(t.TempDir(), "other"), "other", now)
	steps = append(steps, struct {
		name    string
		leaf    Leaf
		ca      *CA
		at      time.Time
		reissue bool
	}{"other CA", steps[4].leaf, other, now.Add(leafValidity - 10*24*time.Hour), true})
	for _, s := range steps {
		got, err := EnsureLeaf(dir, s.ca, s.leaf, s.at)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got != s.reissue {
			t.Errorf("%s: reissued = %v, want %v", s.name, got, s.reissue)
		}
	}
	// the final leaf verifies against the other CA
	pem, _ := os.ReadFile(filepath.Join(dir, CertFile))
	cert, err := parseCert(pem)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(other.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.com", CurrentTime: now.Add(leafValidity)}); err != nil {
		t.Errorf("leaf does not verify: %v", err)
	}
}

// checkDir reads a credential directory and checks it, as a pass does
// with input/certs/<name>.
func checkDir(t *testing.T, dir string) (Files, error) {
	t.Helper()
	f, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f, Check(f)
}

func TestCheckUserCredential(t *testing.T) {
	ca, _, _ := EnsureCA(filepath.Join(t.TempDir(), "ca"), "ca", now)
	a := filepath.Join(t.TempDir(), "a")
	b := filepath.Join(t.TempDir(), "b")
	for _, d := range []string{a, b} {
		if _, err := EnsureLeaf(d, ca, Leaf{CommonName: "x", Server: true}, now); err != nil {
			t.Fatal(err)
		}
	}
	if f, err := checkDir(t, a); f.CA == nil || f.Cert == nil || f.Key == nil || err != nil {
		t.Errorf("complete credential: %v", err)
	}
	// a key that does not belong to the certificate
	key, _ := os.ReadFile(filepath.Join(b, KeyFile))
	os.WriteFile(filepath.Join(a, KeyFile), key, 0o600)
	if _, err := checkDir(t, a); err == nil || !strings.Contains(err.Error(), "tls.key does not match the key in tls.crt") {
		t.Errorf("mismatched key: %v", err)
	}
	os.Remove(filepath.Join(a, CertFile))
	if _, err := checkDir(t, a); err == nil || err.Error() != "tls.key without tls.crt" {
		t.Errorf("key alone: %v", err)
	}
	os.WriteFile(filepath.Join(b, CAFile), []byte("garbage"), 0o644)
	if _, err := checkDir(t, b); err == nil || err.Error() != "ca.crt: no PEM certificate found" {
		t.Errorf("garbage CA: %v", err)
	}
}

// TestWriteMirrorsFiles: Write makes a directory hold exactly the files
// given (a copy of a user credential), reports what it changed, and keeps
// the key private.
func TestWriteMirrorsFiles(t *testing.T) {
	ca, _, _ := EnsureCA(filepath.Join(t.TempDir(), "ca"), "ca", now)
	src := filepath.Join(t.TempDir(), "src")
	dst := filepath.Join(t.TempDir(), "dst")
	EnsureLeaf(src, ca, Leaf{CommonName: "x", Server: true}, now)
	f, err := Read(src)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := Write(dst, f, false); len(changed) != 3 || err != nil {
		t.Fatalf("first copy: %v %v", changed, err)
	}
	if changed, err := Write(dst, f, false); len(changed) != 0 || err != nil {
		t.Fatalf("second copy: %v %v", changed, err)
	}
	f.CA = nil
	if changed, _ := Write(dst, f, false); len(changed) != 1 || changed[0] != filepath.Join(dst, CAFile) {
		t.Errorf("removal not mirrored: %v", changed)
	}
	if _, err := os.Stat(filepath.Join(dst, CAFile)); !os.IsNotExist(err) {
		t.Error("ca.crt still in the copy")
	}
	if st, _ := os.Stat(filepath.Join(dst, KeyFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("copied key mode %v", st.Mode().Perm())
	}
}

// TestLeafRenewalAndUsage: a leaf is kept until two thirds of its life
// and issued again after; a change of what it is for (server, client)
// issues it again.
func TestLeafRenewalAndUsage(t *testing.T) {
	ca, _, err := EnsureCA(filepath.Join(t.TempDir(), "ca"), "ca", now)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "leaf")
	server := Leaf{CommonName: "x", Hosts: []string{"127.0.0.1"}, Server: true}
	both := Leaf{CommonName: "x", Hosts: []string{"127.0.0.1"}, Server: true, Client: true}
	day := 24 * time.Hour
	for _, s := range []struct {
		name    string
		leaf    Leaf
		at      time.Time
		reissue bool
	}{
		{"new", server, now, true},
		{"client use added", both, now, true},
		{"before two thirds of its life", both, now.Add(leafValidity * 2 / 3).Add(-day), false},
		{"past two thirds of its life", both, now.Add(leafValidity * 2 / 3).Add(day), true},
		{"client use dropped", server, now.Add(leafValidity * 2 / 3).Add(day), true},
	} {
		got, err := EnsureLeaf(dir, ca, s.leaf, s.at)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got != s.reissue {
			t.Errorf("%s: reissued = %v, want %v", s.name, got, s.reissue)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, CertFile))
	if at, ok := RenewAt(data); !ok || !at.After(now.Add(leafValidity)) {
		t.Errorf("the renewed leaf is due at %v", at)
	}
}
