package site

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/namespace"
)

// Persist makes runtime/ hold d: new CAs (durably), every credential
// exactly, the router configuration; credential directories nothing refers
// to any more are removed. Only what differs is written, atomically, and
// never through a symbolic link planted below the namespace directory.
// What the router reads (runtime/certs, runtime/router) belongs to
// routerUID:routerGID, the user the router runs as. It returns the files
// it wrote or removed, relative to the namespace directory, and whether
// the router configuration is among them.
func Persist(dir namespace.Dir, d *Desired, routerUID, routerGID int) (changed []string, configChanged bool, err error) {
	tree := dir.Files()
	router := tree.Owned(routerUID, routerGID)
	rel := func(p string) string {
		r, err := filepath.Rel(dir.Path, p)
		if err != nil {
			return p
		}
		return r
	}
	for _, name := range slices.Sorted(maps.Keys(d.NewIssuers)) {
		path := filepath.Join(dir.RuntimeIssuers(), name)
		files, err := certs.WriteIn(tree, path, d.NewIssuers[name], true)
		for _, f := range files {
			changed = append(changed, rel(f))
		}
		if err != nil {
			return changed, false, err
		}
	}
	if len(d.Credentials) > 0 {
		if err := router.MkdirAll(dir.RuntimeCerts(), 0o700); err != nil {
			return changed, false, err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.Credentials)) {
		path := filepath.Join(dir.RuntimeCerts(), name)
		files, err := certs.WriteIn(router, path, d.Credentials[name], false)
		for _, f := range files {
			changed = append(changed, rel(f))
		}
		if err != nil {
			return changed, false, err
		}
	}
	entries, err := os.ReadDir(dir.RuntimeCerts())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return changed, false, fmt.Errorf("listing %s: %w", dir.RuntimeCerts(), err)
	}
	for _, e := range entries {
		if _, used := d.Credentials[e.Name()]; used || !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir.RuntimeCerts(), e.Name())
		gone, _ := filepath.Glob(filepath.Join(path, "*"))
		if err := tree.RemoveAll(path); err != nil {
			return changed, false, fmt.Errorf("removing unused %s: %w", path, err)
		}
		for _, f := range gone {
			changed = append(changed, rel(f))
		}
	}
	links, err := persistLinks(dir, tree, d.LinkFiles)
	for _, f := range links {
		changed = append(changed, rel(f))
	}
	if err != nil {
		return changed, false, err
	}
	configChanged, err = PersistConfig(dir, d, routerUID, routerGID)
	if err != nil {
		return changed, false, err
	}
	if configChanged {
		changed = append(changed, rel(dir.RouterConfig()))
	}
	return changed, configChanged, nil
}

// persistLinks makes runtime/links hold exactly the site's link files
// (0600 in a 0700 directory: they hold a private key); other files there
// that look like link files are removed.
func persistLinks(dir namespace.Dir, tree fileio.Tree, files map[string][]byte) ([]string, error) {
	ldir := dir.Links()
	var changed []string
	if len(files) > 0 {
		if err := tree.MkdirAll(ldir, 0o700); err != nil {
			return nil, err
		}
		tree.RemoveTemps(ldir)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(ldir, name)
		wrote, err := tree.WriteFile(path, files[name], 0o600, 0o700, false)
		if err != nil {
			return changed, err
		}
		if wrote {
			changed = append(changed, path)
		}
	}
	entries, err := os.ReadDir(ldir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return changed, fmt.Errorf("listing %s: %w", ldir, err)
	}
	for _, e := range entries {
		if _, want := files[e.Name()]; want || e.IsDir() || !strings.HasPrefix(e.Name(), "link-") || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		path := filepath.Join(ldir, e.Name())
		if err := tree.Remove(path); err != nil {
			return changed, fmt.Errorf("removing %s: %w", path, err)
		}
		changed = append(changed, path)
	}
	return changed, nil
}

// PersistConfig writes the router configuration alone (Persist writes it
// with everything else), owned by the router's user; it tells whether the
// file changed.
func PersistConfig(dir namespace.Dir, d *Desired, routerUID, routerGID int) (bool, error) {
	router := dir.Files().Owned(routerUID, routerGID)
	if err := router.MkdirAll(filepath.Dir(dir.RouterConfig()), 0o755); err != nil {
		return false, err
	}
	return router.WriteFile(dir.RouterConfig(), d.ConfigJSON, 0o644, 0o755, false)
}

// ReplaceConfig writes the router configuration of d, known to differ from
// the file's (a Patch of the site last written), without reading the file
// first.
func ReplaceConfig(dir namespace.Dir, d *Desired, routerUID, routerGID int) error {
	return dir.Files().Owned(routerUID, routerGID).Replace(dir.RouterConfig(), d.ConfigJSON, 0o644, 0o755, false)
}
