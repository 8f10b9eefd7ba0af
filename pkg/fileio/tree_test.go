package fileio

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSyncLater: flushed writes in a directory under SyncLater write their
// files whole, as others do, and leave the directory to one Sync.
func TestSyncLater(t *testing.T) {
	root := t.TempDir()
	d, err := Beneath(root).OpenDir(filepath.Join(root, "certs"), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SyncLater()
	if err := d.Sync(); err != nil || d.dirty {
		t.Fatalf("nothing written: Sync %v, dirty %v", err, d.dirty)
	}
	for name, perm := range map[string]os.FileMode{"tls.key": 0o600, "tls.crt": 0o644} {
		if _, err := d.WriteFile(name, []byte(name), perm, true); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(root, "certs", name))
		if data, _ := os.ReadFile(filepath.Join(root, "certs", name)); err != nil || string(data) != name || st.Mode().Perm() != perm {
			t.Errorf("%s: %q %v %v", name, data, st, err)
		}
	}
	if !d.dirty {
		t.Error("the directory is not left to Sync")
	}
	if err := d.Sync(); err != nil || d.dirty {
		t.Errorf("Sync: %v, dirty %v", err, d.dirty)
	}
}
