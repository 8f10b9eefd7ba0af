// Package namespace knows the layout of a site's directory
// (<data-home>/namespaces/<ns>/), reads its input and writes its runtime
// files atomically.
//
// It never writes, renames or deletes anything under input/: that
// directory belongs to the user.
package namespace

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/site-controller/site-controller/pkg/resources"
)

// DataHome returns the default data home: /var/lib/skupper for root,
// otherwise $XDG_DATA_HOME/skupper or ~/.local/share/skupper.
func DataHome() string {
	if os.Geteuid() == 0 {
		return "/var/lib/skupper"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "skupper")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, ".local", "share", "skupper")
}

// Root returns <dataHome>/namespaces.
func Root(dataHome string) string { return filepath.Join(dataHome, "namespaces") }

// Dir is one namespace directory.
type Dir struct {
	Name string
	Path string
}

// Open returns the namespace directory name under dataHome. The name must
// be a lowercase RFC 1123 label: it becomes part of container and unit
// names.
func Open(dataHome, name string) (Dir, error) {
	if msg := resources.ValidName(name); msg != "" {
		return Dir{}, fmt.Errorf("namespace %s", msg)
	}
	return Dir{Name: name, Path: filepath.Join(Root(dataHome), name)}, nil
}

// List returns the names of the namespaces under dataHome, sorted. A
// directory counts as a namespace when it has an input directory.
func List(dataHome string) ([]string, error) {
	entries, err := os.ReadDir(Root(dataHome))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if st, err := os.Stat(filepath.Join(Root(dataHome), e.Name(), "input")); err == nil && st.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Paths inside a namespace directory.
func (d Dir) Join(elem ...string) string { return filepath.Join(append([]string{d.Path}, elem...)...) }
func (d Dir) InputResources() string     { return d.Join("input", "resources") }
func (d Dir) InputCerts() string         { return d.Join("input", "certs") }
func (d Dir) InputIssuers() string       { return d.Join("input", "issuers") }
func (d Dir) RouterConfig() string       { return d.Join("runtime", "router", "skrouterd.json") }
func (d Dir) RuntimeCerts() string       { return d.Join("runtime", "certs") }
func (d Dir) RuntimeIssuers() string     { return d.Join("runtime", "issuers") }
func (d Dir) RuntimeResources() string {
	return d.Join("runtime", "resources")
}
func (d Dir) Internal() string { return d.Join("internal") }

// Ignored tells whether a file name is editor debris or hidden: vim's 4913
// probe and swap files, backups ending in ~, Emacs lock files (.#*) and
// every dotfile (which also covers Kubernetes' ..data directories).
func Ignored(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, ".swx") || name == "4913"
}

// IsResourceFile tells whether a file name is read as resources.
func IsResourceFile(name string) bool {
	if Ignored(name) {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// ResourceFiles lists the resource files under input/resources, recursively
// and sorted, as paths relative to the namespace directory. Symbolic links
// to files are followed; hidden directories are skipped.
func (d Dir) ResourceFiles() ([]string, error) {
	var files []string
	root := d.InputResources()
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if path == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if e.IsDir() {
			if path != root && Ignored(e.Name()) {
				return fs.SkipDir
			}
			return nil
		}
		if !IsResourceFile(e.Name()) {
			return nil
		}
		if e.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(path)
			if err != nil || !st.Mode().IsRegular() {
				return nil // dangling link or a link to a directory
			}
		}
		rel, err := filepath.Rel(d.Path, path)
		if err != nil {
			return err
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", root, err)
	}
	slices.Sort(files)
	return files, nil
}

// Load reads and validates every resource file of the namespace. A file
// that cannot be read is a problem of that file, not an error of the load.
func (d Dir) Load() (*resources.Namespace, error) {
	files, err := d.ResourceFiles()
	if err != nil {
		return nil, err
	}
	var docs []*resources.Document
	var probs []resources.Problem
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(d.Path, f))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while we listed
			}
			probs = append(probs, resources.Problem{File: f, Message: fmt.Sprintf("cannot read: %v", err)})
			continue
		}
		ds, ps := resources.Decode(f, data)
		docs = append(docs, ds...)
		probs = append(probs, ps...)
	}
	return resources.Build(d.Name, docs, probs), nil
}

// WriteFile writes data to path atomically (temporary file in the same
// directory, then rename), creating parent directories with dirPerm. It
// does nothing and returns false when the file already holds data with the
// given mode. With sync set, the data is flushed to disk before the rename
// and the directory after it: for content that cannot be regenerated.
func WriteFile(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) (bool, error) {
	if st, err := os.Stat(path); err == nil && st.Mode().Perm() == perm && st.Size() == int64(len(data)) {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return false, nil
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return false, fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return false, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if sync {
		if f, err := os.Open(dir); err == nil {
			err = f.Sync()
			f.Close()
			if err != nil {
				return true, fmt.Errorf("syncing %s: %w", dir, err)
			}
		}
	}
	return true, nil
}
