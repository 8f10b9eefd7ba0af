package fileio

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
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

// TestSettled: what one lstat can tell of a directory that MkdirAll
// (exact) or Tighten would leave as it is; anything else is theirs to
// look at and mend.
func TestSettled(t *testing.T) {
	root := t.TempDir()
	tree := Beneath(root)
	mk := func(name string, perm os.FileMode) string {
		p := filepath.Join(root, name)
		if err := os.Mkdir(p, perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, perm); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	private, open, tight := mk("private", 0o700), mk("open", 0o755), mk("tight", 0o500)
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(private, link); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(root, "missing")
	for _, tc := range []struct {
		name  string
		tree  Tree
		dir   string
		exact bool
		want  bool
	}{
		{"mode as made", tree, private, true, true},
		{"mode as made, tightened", tree, private, false, true},
		{"looser, made", tree, open, true, false},
		{"looser, tightened", tree, open, false, false},
		{"tighter, made", tree, tight, true, false},
		{"tighter, tightened", tree, tight, false, true},
		{"another owner, made", tree.Owned(54321, 54321), private, true, false},
		{"another owner, tightened", tree.Owned(54321, 54321), private, false, true},
		{"a symbolic link to a private directory", tree, link, true, false},
		{"a symbolic link, tightened", tree, link, false, false},
		{"a file", tree, file, false, false},
		{"missing, made", tree, missing, true, false},
		{"missing, tightened", tree, missing, false, true},
	} {
		if got := tc.tree.Settled(tc.dir, 0o700, tc.exact); got != tc.want {
			t.Errorf("%s: settled %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCreateLinksEitherWay makes a file appear whole both ways an unnamed
// file is linked in: by the file itself (AT_EMPTY_PATH, which takes
// CAP_DAC_READ_SEARCH) and, once that was refused, by its /proc name.
func TestCreateLinksEitherWay(t *testing.T) {
	defer noEmptyPath.Store(noEmptyPath.Load())
	for _, byProc := range []bool{false, true} {
		noEmptyPath.Store(byProc)
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		if err := Create(path, []byte("data"), 0o640, 0o755, false); err != nil {
			t.Fatalf("by /proc %v: %v", byProc, err)
		}
		got, mode, err := ReadCurrent(path)
		if err != nil || string(got) != "data" || mode != 0o640 {
			t.Errorf("by /proc %v: got %q %v %v", byProc, got, mode, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("by /proc %v: the directory holds %v", byProc, entries)
		}
	}
}

// TestCreateStat: the stat CreateStat gives is the file's as a later
// lstat finds it (its ctime taken after the link, which changes it), by
// either way of linking and where there is no O_TMPFILE to link.
func TestCreateStat(t *testing.T) {
	defer noEmptyPath.Store(noEmptyPath.Load())
	for _, byProc := range []bool{false, true} {
		noEmptyPath.Store(byProc)
		root := t.TempDir()
		d, err := Beneath(root).OpenDir(filepath.Join(root, "resources"), 0o755)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := d.CreateStat("Listener-a.yaml", []byte("status: {}\n"), 0o644, &st); err != nil {
			t.Fatalf("by /proc %v: %v", byProc, err)
		}
		d.Close()
		var want unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, "resources", "Listener-a.yaml"), &want); err != nil {
			t.Fatal(err)
		}
		if st.Ino != want.Ino || st.Size != 11 || st.Mode != want.Mode || st.Mode&0o777 != 0o644 ||
			st.Mtim != want.Mtim || st.Ctim != want.Ctim || st.Nlink != 1 {
			t.Errorf("by /proc %v: CreateStat gave %+v, lstat finds %+v", byProc, st, want)
		}
	}
	// no O_TMPFILE: a temporary file renamed in, then looked at by name
	root := t.TempDir()
	d, err := Beneath(root).OpenDir(root, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var st, want unix.Stat_t
	if err := d.t.replaceStat(d.fd, filepath.Join(root, "f"), []byte("data"), 0o600, noFlush, &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(root, "f"), &want); err != nil {
		t.Fatal(err)
	}
	if st.Ino != want.Ino || st.Ctim != want.Ctim || st.Mode&0o777 != 0o600 || st.Size != 4 {
		t.Errorf("replaceStat gave %+v, lstat finds %+v", st, want)
	}
}
