package fileio

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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
