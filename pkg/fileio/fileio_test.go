package fileio

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "f.json")
	for i, step := range []struct {
		data    string
		perm    os.FileMode
		changed bool
	}{
		{"one", 0o644, true},  // created (O_TMPFILE path), parent made
		{"one", 0o644, false}, // same bytes and mode: untouched
		{"two", 0o644, true},  // replaced
		{"two", 0o600, true},  // same bytes, new mode
		{"two", 0o600, false},
	} {
		changed, err := WriteFile(path, []byte(step.data), step.perm, 0o755, i%2 == 0)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if changed != step.changed {
			t.Errorf("step %d: changed = %v, want %v", i, changed, step.changed)
		}
		got, mode, err := ReadCurrent(path)
		if err != nil || string(got) != step.data || mode != step.perm {
			t.Errorf("step %d: file holds %q mode %v (%v), want %q %v", i, got, mode, err, step.data, step.perm)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestCreateFallsBackWhenFileAppeared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, []byte("new"), 0o600, 0o755, false); err != nil {
		t.Fatal(err)
	}
	got, mode, _ := ReadCurrent(path)
	if string(got) != "new" || mode != 0o600 {
		t.Errorf("got %q %v", got, mode)
	}
}

func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "namespaces", "controller.lock")
	release, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path+" is locked") {
		t.Errorf("second lock: %v", err)
	}
	release()
	again, err := TryLock(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

// TestLockWaits: Lock waits for the holder to release it.
func TestLockWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ports.lock")
	release, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		r, err := Lock(path)
		if err != nil {
			t.Error(err)
		}
		close(got)
		r()
	}()
	select {
	case <-got:
		t.Fatal("a held lock was taken again")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	<-got
}

// TestTreeRefusesSymlinks: below a Tree's root, a symbolic link is never
// followed, wherever it was planted: a directory on the way is refused, a
// link as the file itself is replaced, and removals remove the link only;
// with openat2 and without (one component at a time).
func TestTreeRefusesSymlinks(t *testing.T) {
	for _, without := range []bool{false, true} {
		t.Run(map[bool]string{false: "openat2", true: "walk"}[without], func(t *testing.T) {
			defer noOpenat2.Store(noOpenat2.Load())
			noOpenat2.Store(without)
			testTreeRefusesSymlinks(t)
		})
	}
}

func testTreeRefusesSymlinks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(root, outside string) // makes the trap
		write func(tr Tree, root string) error
		// refused: the write fails with ErrSymlink; otherwise it succeeds
		refused bool
	}{
		{"directory on the way", func(root, outside string) {
			os.MkdirAll(filepath.Join(root, "runtime"), 0o700)
			os.Symlink(outside, filepath.Join(root, "runtime", "certs"))
		}, func(tr Tree, root string) error {
			_, err := tr.WriteFile(filepath.Join(root, "runtime", "certs", "ca.crt"), []byte("x"), 0o644, 0o700, false)
			return err
		}, true},
		{"directory below a link", func(root, outside string) {
			os.Symlink(outside, filepath.Join(root, "runtime"))
		}, func(tr Tree, root string) error {
			return tr.MkdirAll(filepath.Join(root, "runtime", "certs", "x"), 0o700)
		}, true},
		{"the file itself (create)", func(root, outside string) {
			os.Symlink(filepath.Join(outside, "ca.crt"), filepath.Join(root, "ca.crt"))
		}, func(tr Tree, root string) error {
			_, err := tr.WriteFile(filepath.Join(root, "ca.crt"), []byte("x"), 0o644, 0o700, false)
			return err
		}, false},
		{"the file itself (replace)", func(root, outside string) {
			os.Symlink(filepath.Join(outside, "ca.crt"), filepath.Join(root, "ca.crt"))
		}, func(tr Tree, root string) error {
			return tr.Replace(filepath.Join(root, "ca.crt"), []byte("x"), 0o644, 0o700, true)
		}, false},
		{"remove all", func(root, outside string) {
			os.MkdirAll(filepath.Join(root, "certs"), 0o700)
			os.Symlink(outside, filepath.Join(root, "certs", "x"))
		}, func(tr Tree, root string) error {
			return tr.RemoveAll(filepath.Join(root, "certs"))
		}, false},
		{"remove below a link", func(root, outside string) {
			os.Symlink(outside, filepath.Join(root, "certs"))
		}, func(tr Tree, root string) error {
			return tr.Remove(filepath.Join(root, "certs", "ca.crt"))
		}, true},
		{"tighten", func(root, outside string) {
			os.Symlink(outside, filepath.Join(root, "runtime"))
		}, func(tr Tree, root string) error {
			return tr.Tighten(filepath.Join(root, "runtime"), 0o700)
		}, true},
		{"a directory held open: on the way", func(root, outside string) {
			os.Symlink(outside, filepath.Join(root, "runtime"))
		}, func(tr Tree, root string) error {
			_, err := tr.OpenDir(filepath.Join(root, "runtime", "resources"), 0o700)
			return err
		}, true},
		{"a directory held open: the file itself", func(root, outside string) {
			os.Symlink(filepath.Join(outside, "ca.crt"), filepath.Join(root, "ca.crt"))
		}, func(tr Tree, root string) error {
			d, err := tr.OpenDir(root, 0o700)
			if err != nil {
				return err
			}
			defer d.Close()
			var buf bytes.Buffer
			if _, err := d.ReadInto("ca.crt", &buf); err == nil {
				return fmt.Errorf("read through the link: %q", buf.String())
			}
			if err := d.Create("new.crt", []byte("x"), 0o644, false); err != nil {
				return err
			}
			return d.Replace("ca.crt", []byte("x"), 0o644, false)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := t.TempDir(), t.TempDir()
			os.Chmod(outside, 0o755)
			if err := os.WriteFile(filepath.Join(outside, "ca.crt"), []byte("outside"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.plant(root, outside)
			err := tc.write(Beneath(root), root)
			if tc.refused != errors.Is(err, ErrSymlink) || !tc.refused && err != nil {
				t.Fatalf("err = %v, want refused %v", err, tc.refused)
			}
			if tc.refused && !strings.Contains(err.Error(), "is a symbolic link, which is not followed") {
				t.Errorf("message %q", err)
			}
			// nothing outside changed: its file, its mode, nothing added
			got, mode, err := ReadCurrent(filepath.Join(outside, "ca.crt"))
			if err != nil || string(got) != "outside" || mode != 0o644 {
				t.Errorf("outside ca.crt: %q %v %v", got, mode, err)
			}
			if st, _ := os.Stat(outside); st.Mode().Perm() != 0o755 {
				t.Errorf("outside directory mode %v", st.Mode().Perm())
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 1 {
				t.Errorf("outside holds %v", entries)
			}
		})
	}
}

// TestTreeOwned: an owned Tree gives its files and the directories it
// secures to its owner, and a file of another owner counts as changed.
func TestTreeOwned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files away needs root")
	}
	root := t.TempDir()
	tr := Beneath(root)
	path := filepath.Join(root, "certs", "x", "tls.key")
	if _, err := tr.WriteFile(path, []byte("k"), 0o600, 0o700, false); err != nil {
		t.Fatal(err)
	}
	owned := tr.Owned(10000, 10000)
	if err := owned.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	changed, err := owned.WriteFile(path, []byte("k"), 0o600, 0o700, false)
	if err != nil || !changed {
		t.Fatalf("changed %v, %v; want a rewrite for the new owner", changed, err)
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil || st.Uid != 10000 || st.Gid != 10000 {
			t.Errorf("%s owned by %d:%d (%v)", p, st.Uid, st.Gid, err)
		}
	}
	if changed, err := owned.WriteFile(path, []byte("k"), 0o600, 0o700, false); err != nil || changed {
		t.Errorf("second write: changed %v, %v", changed, err)
	}
}

// TestTreeRootNotMade: a write below a root that is gone fails; the root
// is not made again.
func TestTreeRootNotMade(t *testing.T) {
	root := filepath.Join(t.TempDir(), "ns")
	_, err := Beneath(root).WriteFile(filepath.Join(root, "runtime", "x"), []byte("x"), 0o600, 0o700, false)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not exist", err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("the root was made: %v", err)
	}
}

// TestTreeRequiring: a Tree that requires an entry of its root writes
// nothing below a root without it (a namespace being removed).
func TestTreeRequiring(t *testing.T) {
	root := t.TempDir()
	tr := Beneath(root).Requiring("input")
	if _, err := tr.WriteFile(filepath.Join(root, "runtime", "x"), []byte("x"), 0o600, 0o700, false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a directory made below a root without input/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "runtime")); !os.IsNotExist(err) {
		t.Errorf("runtime/ was made: %v", err)
	}
	if _, err := tr.WriteFile(filepath.Join(root, "x"), []byte("x"), 0o600, 0o700, false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file written into a root without input/: %v", err)
	}
	os.Mkdir(filepath.Join(root, "input"), 0o755)
	if _, err := tr.WriteFile(filepath.Join(root, "runtime", "x"), []byte("x"), 0o600, 0o700, false); err != nil {
		t.Errorf("with input/: %v", err)
	}
}
