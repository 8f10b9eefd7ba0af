// Package lastgood remembers the last good content of every resource file
// of a namespace, so that a file that breaks (a syntax error, caught
// half-written, unreadable, cut to nothing) keeps its resources in force
// instead of tearing them out of the router. Only a file that parses and
// no longer holds a resource, or a file that is removed, takes resources
// away.
//
// internal/last-good (namespace.Dir.LastGood) holds a copy of the last
// content of each resource file that was read and parsed whole (0600: a
// file may hold a Secret), so that a restart keeps a broken file's
// resources in force too. A copy is named <hash of the file's path>.<hash
// of its content>: one listing of the directory tells which files' copies
// are current, without reading thousands of them in every new process.
package lastgood

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
)

// Files are the last good files of one namespace directory (its owner's
// in the controller); a new directory of the same name (removed and made
// again) starts afresh.
type Files struct {
	dir   namespace.Identity
	files map[string]*goodFile
	// disk is the copy under internal/last-good of each file, by the hash
	// of its path: listed once per directory, kept up to date after.
	disk map[string]string
}

type goodFile struct {
	sum  [sha256.Size]byte
	data []byte
}

// Input is what a pass uses of a namespace's files.
type Input struct {
	Docs     []*resources.Document
	Problems []resources.Problem
	// Incomplete names files that could not be used whole and whose last
	// good content is unknown: the pass is no evidence that anything is
	// gone.
	Incomplete []string
}

// Resolve puts each broken file's last good documents in its place, with
// a warning on each, and remembers the good content of the others. *g is
// made (or made again, for another directory than it was kept for) as
// needed.
func Resolve(g **Files, dir namespace.Dir, self namespace.Identity, files []namespace.File, now time.Time) Input {
	ns, seen := *g, make(map[string]bool, len(files)) // by path
	first := ns == nil || ns.dir != self
	if first {
		ns = &Files{dir: self, files: map[string]*goodFile{}, disk: listGood(dir)}
		*g = ns
	}
	known := ns.files
	var in Input
	for _, f := range files {
		seen[f.Path] = true
		good := known[f.Path]
		if good == nil && (f.Broken != "" || f.Empty) {
			// only a broken file needs what its copy holds
			if good = ns.load(dir, f.Path); good != nil {
				known[f.Path] = good
			}
		}
		broken := f.Broken
		if broken == "" && f.Empty && good != nil && len(bytes.TrimSpace(good.data)) > 0 {
			broken = "the file is empty (being written?); remove it to remove its resources"
		}
		in.Problems = append(in.Problems, f.Problems...)
		if broken == "" {
			in.Docs = append(in.Docs, f.Docs...)
			sum := f.Sum
			if good == nil || good.sum != sum {
				good = &goodFile{sum: sum, data: f.Data}
				known[f.Path] = good
				if ns.disk[goodName(f.Path)] != copyName(f.Path, sum) {
					ns.store(dir, f.Path, good)
				}
			}
			continue
		}
		if good == nil {
			// what parsed of it is used; what did not may have held
			// anything, a Site included
			in.Docs = append(in.Docs, f.Docs...)
			in.Incomplete = append(in.Incomplete, f.Path)
			continue
		}
		// the copy under internal/ may have gone (internal/ removed by
		// hand, a removal of the namespace that did not finish): what
		// this pass stands on must outlive the process
		if _, err := os.Stat(filepath.Join(dir.LastGood(), copyName(f.Path, good.sum))); errors.Is(err, fs.ErrNotExist) {
			ns.store(dir, f.Path, good)
		}
		// since it was last written: the same in every process
		since := f.Modified
		if since.IsZero() {
			since = now
		}
		docs, _ := resources.Decode(f.Path, good.data)
		msg := fmt.Sprintf("%s is broken since %s (%s); the resources it last held stay in force until it is fixed or removed",
			f.Path, since.UTC().Format(time.RFC3339), broken)
		for _, d := range docs {
			d.Warn(msg)
		}
		in.Docs = append(in.Docs, docs...)
	}
	for p := range known {
		if !seen[p] {
			delete(known, p)
			h := goodName(p)
			if name, ok := ns.disk[h]; ok {
				dir.Files().Remove(filepath.Join(dir.LastGood(), name))
				delete(ns.disk, h)
			}
		}
	}
	if !first {
		// after the first pass every copy on disk is of a known file:
		// those of files gone went with them just above
		return in
	}
	// copies of files that are gone, also while no controller ran
	present := make(map[string]bool, len(seen))
	for p := range seen {
		present[goodName(p)] = true
	}
	for h, name := range ns.disk {
		if !present[h] {
			dir.Files().Remove(filepath.Join(dir.LastGood(), name))
			delete(ns.disk, h)
		}
	}
	return in
}

func goodName(file string) string {
	sum := sha256.Sum256([]byte(file))
	return hex.EncodeToString(sum[:16])
}

// copyName is the name of the copy of file with content sum.
func copyName(file string, sum [sha256.Size]byte) string {
	return goodName(file) + "." + hex.EncodeToString(sum[:8])
}

// listGood lists the copies under internal/last-good, by the hash of their
// file's path.
func listGood(dir namespace.Dir) map[string]string {
	out := map[string]string{}
	entries, _ := os.ReadDir(dir.LastGood())
	for _, e := range entries {
		h, _, _ := strings.Cut(e.Name(), ".")
		if prev, ok := out[h]; ok && prev > e.Name() {
			continue // two copies (a crash between write and remove): either will do
		}
		out[h] = e.Name()
	}
	return out
}

// load reads the copy of file, nil when there is none.
func (ns *Files) load(dir namespace.Dir, file string) *goodFile {
	name, ok := ns.disk[goodName(file)]
	if !ok {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir.LastGood(), name))
	if err != nil {
		return nil
	}
	return &goodFile{sum: sha256.Sum256(data), data: data}
}

// store writes the copy of file and removes the one it replaces; failing
// to is not worth failing the pass for: the copy in memory still serves
// while the controller runs.
func (ns *Files) store(dir namespace.Dir, file string, good *goodFile) {
	h, name := goodName(file), copyName(file, good.sum)
	if _, err := dir.Files().WriteFile(filepath.Join(dir.LastGood(), name), good.data, 0o600, 0o700, false); err != nil {
		return
	}
	if old, ok := ns.disk[h]; ok && old != name {
		dir.Files().Remove(filepath.Join(dir.LastGood(), old))
	}
	ns.disk[h] = name
}
