package watcher

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestDebris(t *testing.T) {
	for name, want := range map[string]bool{
		"4913": true, "site.yaml~": true, ".site.yaml.swp": true, ".site.yaml.swx": true, ".#site.yaml": true,
		".hidden.yaml": true, "..data": false, "..2026_11_22_10_00_00.123": false, "site.yaml": false, "platform.yaml": false,
	} {
		if got := debris(name); got != want {
			t.Errorf("debris(%q) = %v, want %v", name, got, want)
		}
	}
}

type recorder struct {
	mu      sync.Mutex
	changed map[string]int
	paths   []string // "<ns>:<path>" of every change
	rescans []string
}

func (r *recorder) Changed(ns, path string) {
	r.mu.Lock()
	r.changed[ns]++
	r.paths = append(r.paths, ns+":"+path)
	r.mu.Unlock()
}

// saw tells whether a change of ns:path was reported.
func (r *recorder) saw(change string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.paths, change)
}
func (r *recorder) Rescan(reason string) {
	r.mu.Lock()
	r.rescans = append(r.rescans, reason)
	r.mu.Unlock()
}
func (r *recorder) Event(string) {}
func (r *recorder) count(ns string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed[ns]
}

// watch runs a watcher on root, its watches set, until the test ends.
func watch(t *testing.T, root string) (*Watcher, *recorder) {
	t.Helper()
	rec := &recorder{changed: map[string]int{}}
	w, err := New(root, rec, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.SyncAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go w.Run(ctx)
	return w, rec
}

// TestOwnOutputIsIgnored: writes under runtime/ and internal/ (but
// platform.yaml) never mark a namespace, so the controller's own writes
// cannot make it loop.
func TestOwnOutputIsIgnored(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/input/resources", "a/runtime/resources", "a/internal"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	w, rec := watch(t, root)
	if w.IsWatched(filepath.Join(root, "a", "runtime", "resources")) {
		t.Error("runtime/ is watched")
	}
	os.WriteFile(filepath.Join(root, "a", "internal", "site-id"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "a", "input", "resources", ".x.swp"), []byte("x"), 0o644)
	time.Sleep(100 * time.Millisecond)
	if n := rec.count("a"); n != 0 {
		t.Errorf("own writes and debris marked the namespace %d times", n)
	}
	os.WriteFile(filepath.Join(root, "a", "internal", "platform.yaml"), []byte("platform: docker\n"), 0o644)
	deadline := time.Now().Add(5 * time.Second)
	for rec.count("a") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if rec.count("a") == 0 {
		t.Error("a platform change did not mark the namespace")
	}
}

// TestChangedPaths: a file's change is reported with its path relative to
// the namespace directory (a pass reads only that file); a directory that
// appears, and the namespace directory itself, with "" (a pass looks at
// everything).
func TestChangedPaths(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a", "input", "resources"), 0o755)
	_, rec := watch(t, root)
	wait := func(change string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !rec.saw(change) {
			if time.Now().After(deadline) {
				rec.mu.Lock()
				t.Fatalf("no change %q among %q", change, rec.paths)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	os.WriteFile(filepath.Join(root, "a", "input", "resources", "l.yaml"), []byte("x"), 0o644)
	wait("a:" + filepath.Join("input", "resources", "l.yaml"))
	os.Mkdir(filepath.Join(root, "a", "input", "resources", "sub"), 0o755)
	wait("a:")
	os.WriteFile(filepath.Join(root, "a", "input", "resources", "sub", "m.yaml"), []byte("x"), 0o644)
	wait("a:" + filepath.Join("input", "resources", "sub", "m.yaml"))
	os.Mkdir(filepath.Join(root, "b"), 0o755)
	wait("b:")
}
