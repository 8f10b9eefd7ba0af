package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/site-controller/site-controller/internal/scale"
	"github.com/site-controller/site-controller/pkg/controller"
)

// tree counts the directories and files below a namespace's runtime/ and
// internal/ (what a first pass makes).
func tree(t *testing.T, ns string) (dirs, files int) {
	t.Helper()
	for _, top := range []string{"runtime", "internal"} {
		err := filepath.WalkDir(filepath.Join(ns, top), func(_ string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				dirs++
			} else {
				files++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dirs, files
}

// TestFirstPassAsTheController: the floor's first pass makes as many
// directories and files as the controller's first pass over the same
// namespace of the cold start harness, so that the floor does not leave
// out work every implementation must do (a controller that comes to make
// more or fewer files fails this, and the floor is to follow).
func TestFirstPassAsTheController(t *testing.T) {
	home := t.TempDir()
	if err := scale.Namespaces(home, 2, 10); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(home, "namespaces", "ns000")
	r := controller.New(controller.Options{DataHome: home, Platform: "linux"})
	if _, _, err := r.Render(context.Background(), "ns000"); err != nil {
		t.Fatal(err)
	}
	floor := filepath.Join(home, "namespaces", "ns001")
	if err := firstPass(floor); err != nil {
		t.Fatal(err)
	}
	rd, rf := tree(t, real)
	fd, ff := tree(t, floor)
	if rd != fd || rf != ff {
		t.Errorf("the controller made %d directories and %d files, the floor %d and %d", rd, rf, fd, ff)
	}
	if rf != 25 || rd != 9 {
		t.Errorf("a first pass makes %d directories and %d files; the floor's comments say 9 and 25", rd, rf)
	}
}

// TestRenderWrite: the floor's render writes a status file per input,
// the router's configuration and the issuer's three files.
func TestRenderWrite(t *testing.T) {
	runtime := filepath.Join(t.TempDir(), "runtime")
	m := measurer{}
	if err := m.renderWrite(runtime, 7, filled(100), 2); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]int{"resources": 7, "router": 1, "issuers/skupper-local-ca": 3} {
		entries, err := os.ReadDir(filepath.Join(runtime, dir))
		if err != nil || len(entries) != want {
			t.Errorf("%s holds %d entries (%v), want %d", dir, len(entries), err, want)
		}
	}
}
