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
// to any more are removed. Only what differs is written, atomically. It
// returns the files it wrote or removed, relative to the namespace
// directory, and whether the router configuration is among them.
func Persist(dir namespace.Dir, d *Desired) (changed []string, configChanged bool, err error) {
	rel := func(p string) string {
		r, err := filepath.Rel(dir.Path, p)
		if err != nil {
			return p
		}
		return r
	}
	for _, name := range slices.Sorted(maps.Keys(d.NewIssuers)) {
		path := filepath.Join(dir.RuntimeIssuers(), name)
		files, err := certs.Write(path, d.NewIssuers[name], true)
		for _, f := range files {
			changed = append(changed, rel(f))
		}
		if err != nil {
			return changed, false, err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.Credentials)) {
		path := filepath.Join(dir.RuntimeCerts(), name)
		fileio.RemoveTemps(path)
		files, err := certs.Write(path, d.Credentials[name], false)
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
		if err := os.RemoveAll(path); err != nil {
			return changed, false, fmt.Errorf("removing unused %s: %w", path, err)
		}
		for _, f := range gone {
			changed = append(changed, rel(f))
		}
	}
	configChanged, err = fileio.WriteFile(dir.RouterConfig(), d.ConfigJSON, 0o644, 0o755, false)
	if err != nil {
		return changed, false, err
	}
	if configChanged {
		changed = append(changed, rel(dir.RouterConfig()))
	}
	return changed, configChanged, nil
}
