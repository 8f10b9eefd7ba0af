// Package testfs has file-tree helpers for tests: copying fixture trees
// (symbolic links included), fingerprinting trees, and issuing user
// credentials for fixtures.
package testfs

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/certs"
)

// CopyFile copies the file src to a new file dst with mode perm.
func CopyFile(t testing.TB, src, dst string, perm fs.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err == nil {
		err = os.WriteFile(dst, data, perm)
	}
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// Copy copies the tree at src to dst, keeping symbolic links as links.
func Copy(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		default:
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// Fingerprint returns a description of every entry under dir (path, mode,
// content hash or link target), to prove a tree was not touched.
func Fingerprint(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		line := fmt.Sprintf("%s %v", rel, info.Mode())
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, _ := os.Readlink(path)
			line += " -> " + link
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x %s", sha256.Sum256(data), info.ModTime().Format(time.RFC3339Nano))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("fingerprint %s: %v", dir, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// IssueUserCredentials reads a fixture's "certs" file (lines "<name> ca" or
// "<name> full") and writes input/certs/<name>/ under nsDir: ca.crt only,
// or ca.crt, tls.crt and tls.key, all from one throw-away CA.
func IssueUserCredentials(t testing.TB, spec, nsDir string) {
	t.Helper()
	data, err := os.ReadFile(spec)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca, _, err := certs.EnsureCA(filepath.Join(t.TempDir(), "user-ca"), "user-ca", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		name, kind, _ := strings.Cut(line, " ")
		dir := filepath.Join(nsDir, "input", "certs", name)
		switch kind {
		case "full":
			if _, err := certs.EnsureLeaf(dir, ca, certs.Leaf{CommonName: name, Hosts: []string{"127.0.0.1", "localhost"}, Server: true, Client: true}, now); err != nil {
				t.Fatal(err)
			}
		case "ca":
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, certs.CAFile), ca.CertPEM, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s: unknown credential kind %q", spec, kind)
		}
	}
}
