// Package sitetest has helpers for runtime tests: render a namespace into
// a site a runtime can run, and wait for what a router shows.
package sitetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/site-controller/site-controller/internal/skschema"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// Render writes resources as input/resources/r.yaml of namespace ns under
// home, renders it for platform, checks the configuration against the
// router schema, and returns the site a runtime runs.
func Render(t testing.TB, home, ns, platform, resources string) runtime.Site {
	t.Helper()
	dir, err := namespace.Open(home, ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir.InputResources(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir.InputResources(), "r.yaml"), []byte(resources), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := controller.New(controller.Options{DataHome: home, Platform: platform}).Reconcile(context.Background(), ns)
	if err != nil || res.Config == nil {
		t.Fatalf("render: %v %v", err, res.Problems)
	}
	skschema.CheckConfig(t, res.Config)
	hash, err := runtime.InputHash(dir.Path)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.Site{Namespace: ns, SiteID: res.SiteID, Dir: dir.Path, Hash: hash}
}

// RenderFor is Render for runtime rt: what the router reads is given to
// the user rt runs it as, as the daemon's passes do.
func RenderFor(t testing.TB, home, ns string, rt runtime.Runtime, resources string) runtime.Site {
	t.Helper()
	s := Render(t, home, ns, rt.Platform(), resources)
	uid, gid := rt.RouterUser(false)
	for _, sub := range []string{"certs", "router"} {
		err := filepath.WalkDir(filepath.Join(s.Dir, "runtime", sub), func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// ConfigSum is how the stand-in router reports the configuration it read.
func ConfigSum(t testing.TB, s runtime.Site) string {
	t.Helper()
	data, err := os.ReadFile(s.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("config-sha256=%x", sha256.Sum256(data))
}
