package controller

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
)

// lastGoodDir holds, under internal/, a copy of the last content of each
// resource file that was read and parsed whole (0600: a file may hold a
// Secret), so that a restart keeps a broken file's resources in force too.
const lastGoodDir = "last-good"

// lastGood remembers the last good content of every resource file, so that
// a file that breaks (a syntax error, caught half-written, unreadable, cut
// to nothing) keeps its resources in force instead of tearing them out of
// the router. Only a file that parses and no longer holds a resource, or a
// file that is removed, takes resources away.
type lastGood struct {
	mu    sync.Mutex
	files map[string]*goodFiles // by namespace
}

// goodFiles are the last good files of one namespace directory; a new
// directory of the same name (removed and created again) starts afresh.
type goodFiles struct {
	dir   namespace.Identity
	files map[string]*goodFile
}

type goodFile struct {
	sum  [sha256.Size]byte
	data []byte
}

// inputOf is what a pass uses of a namespace's files.
type inputOf struct {
	docs  []*resources.Document
	probs []resources.Problem
	// incomplete names files that could not be used whole and whose last
	// good content is unknown: the pass is no evidence that anything is
	// gone.
	incomplete []string
}

// resolve puts each broken file's last good documents in its place, with a
// warning on each, and remembers the good content of the others.
func (g *lastGood) resolve(dir namespace.Dir, self namespace.Identity, files []namespace.File, now time.Time) inputOf {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.files == nil {
		g.files = map[string]*goodFiles{}
	}
	ns, seen := g.files[dir.Name], map[string]bool{}
	first := ns == nil || ns.dir != self
	if first {
		ns = &goodFiles{dir: self, files: map[string]*goodFile{}}
		g.files[dir.Name] = ns
	}
	known := ns.files
	var in inputOf
	for _, f := range files {
		seen[f.Path] = true
		good := known[f.Path]
		if good == nil {
			good = loadGood(dir, f.Path)
			if good != nil {
				known[f.Path] = good
			}
		}
		broken := f.Broken
		if broken == "" && f.Empty && good != nil && len(bytes.TrimSpace(good.data)) > 0 {
			broken = "the file is empty (being written?); remove it to remove its resources"
		}
		in.probs = append(in.probs, f.Problems...)
		if broken == "" {
			in.docs = append(in.docs, f.Docs...)
			sum := sha256.Sum256(f.Data)
			if good == nil || good.sum != sum {
				good = &goodFile{sum: sum, data: f.Data}
				known[f.Path] = good
				storeGood(dir, f.Path, f.Data)
			}
			continue
		}
		if good == nil {
			// what parsed of it is used; what did not may have held
			// anything, a Site included
			in.docs = append(in.docs, f.Docs...)
			in.incomplete = append(in.incomplete, f.Path)
			continue
		}
		// the copy under internal/ may have gone (internal/ removed by
		// hand, a removal of the namespace that did not finish): what
		// this pass stands on must outlive the process
		if _, err := os.Stat(goodPath(dir, f.Path)); errors.Is(err, fs.ErrNotExist) {
			storeGood(dir, f.Path, good.data)
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
		in.docs = append(in.docs, docs...)
	}
	for p := range known {
		if !seen[p] {
			delete(known, p)
			os.Remove(goodPath(dir, p))
		}
	}
	if first {
		sweepGood(dir, seen)
	}
	return in
}

// forget drops what is remembered of a namespace that is gone.
func (g *lastGood) forget(ns string) {
	g.mu.Lock()
	delete(g.files, ns)
	g.mu.Unlock()
}

func goodName(file string) string {
	sum := sha256.Sum256([]byte(file))
	return hex.EncodeToString(sum[:16])
}

func goodPath(dir namespace.Dir, file string) string {
	return filepath.Join(dir.Internal(), lastGoodDir, goodName(file))
}

func loadGood(dir namespace.Dir, file string) *goodFile {
	data, err := os.ReadFile(goodPath(dir, file))
	if err != nil {
		return nil
	}
	return &goodFile{sum: sha256.Sum256(data), data: data}
}

// storeGood keeps a copy; failing to is not worth failing the pass for:
// the copy in memory still serves while the controller runs.
func storeGood(dir namespace.Dir, file string, data []byte) {
	fileio.WriteFile(goodPath(dir, file), data, 0o600, 0o700, false)
}

// sweepGood removes copies of files that are gone (removed while the
// controller was not running).
func sweepGood(dir namespace.Dir, files map[string]bool) {
	keep := map[string]bool{}
	for f := range files {
		keep[goodName(f)] = true
	}
	entries, err := os.ReadDir(filepath.Join(dir.Internal(), lastGoodDir))
	if err != nil {
		return
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			os.Remove(filepath.Join(dir.Internal(), lastGoodDir, e.Name()))
		}
	}
}
