// Package lastgood remembers the last good content of every resource file
// of a namespace, so that a file that breaks (a syntax error, caught
// half-written, unreadable, cut to nothing) keeps its resources in force
// instead of tearing them out of the router. Only a file that parses and
// no longer holds a resource, or a file that is removed, takes resources
// away.
//
// The content is kept across restarts in one store per namespace,
// internal/last-good.log (namespace.Dir.LastGood, 0600: a file may hold a
// Secret): a pass that learnt new good content, or saw a file go, appends
// one batch of records to it; the store is written again whole, and
// atomically, only when it has grown to twice what it holds, or a crash
// cut its last batch short. A pass that changed nothing writes nothing.
package lastgood

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
)

// Files are the last good files of one namespace directory (its owner's
// in the controller); a new directory of the same name (removed and made
// again) starts afresh.
type Files struct {
	dir   namespace.Identity
	files map[string]*goodFile // by path
	// size is what the store holds on disk, live what its current
	// records take of it
	size, live int64
	// whole says the store must be written whole at the next pass: it
	// is missing, was cut short, holds records of files that are gone,
	// or the copies of an older layout were taken in
	whole bool
	// legacy are the copies of the older layout (a directory of them),
	// by the hash of their file's path: the broken files' are taken in,
	// and the directory is removed once the store is written
	legacy map[string]string
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
		ns = open(dir, self)
		*g = ns
	}
	var batch []byte
	usedBroken := false
	var in Input
	for _, f := range files {
		seen[f.Path] = true
		good := ns.files[f.Path]
		if good == nil && ns.legacy != nil && (f.Broken != "" || f.Empty) {
			if good = ns.loadLegacy(dir, f.Path); good != nil {
				ns.put(f.Path, good)
			}
		}
		broken := f.Broken
		if broken == "" && f.Empty && good != nil && len(bytes.TrimSpace(good.data)) > 0 {
			broken = "the file is empty (being written?); remove it to remove its resources"
		}
		in.Problems = append(in.Problems, f.Problems...)
		if broken == "" {
			in.Docs = append(in.Docs, f.Docs...)
			if good == nil || good.sum != f.Sum {
				good = &goodFile{sum: f.Sum, data: f.Data}
				ns.put(f.Path, good)
				batch = appendRecord(batch, opPut, f.Path, good.data)
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
		usedBroken = true
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
	for p := range ns.files {
		if !seen[p] {
			ns.drop(p)
			if first {
				ns.whole = true // gone while no controller ran
			} else {
				batch = appendRecord(batch, opGone, p, nil)
			}
		}
	}
	ns.save(dir, batch, usedBroken)
	return in
}

// Open tells whether Record can stand for Resolve: the store is directory
// self's, opened by a pass before.
func Open(g *Files, self namespace.Identity) bool {
	return g != nil && g.dir == self && g.legacy == nil
}

// Record remembers the content of the files that changed, the others
// having not (files: by path; nil for a file that is gone), as Resolve
// would from a pass that read them all: every file given is good (neither
// broken nor empty: the caller made sure). False when it cannot stand for
// Resolve: the store is not this directory's yet.
func Record(g *Files, self namespace.Identity, dir namespace.Dir, files map[string]*namespace.File) bool {
	ns := g
	if !Open(g, self) {
		return false
	}
	var batch []byte
	for _, p := range slices.Sorted(maps.Keys(files)) {
		f := files[p]
		if f == nil {
			if ns.files[p] != nil {
				ns.drop(p)
				batch = appendRecord(batch, opGone, p, nil)
			}
			continue
		}
		if good := ns.files[p]; good == nil || good.sum != f.Sum {
			good = &goodFile{sum: f.Sum, data: f.Data}
			ns.put(p, good)
			batch = appendRecord(batch, opPut, p, good.data)
		}
	}
	ns.save(dir, batch, false)
	return true
}

// record operations
const (
	opPut  = '+'
	opGone = '-'
)

// header starts a store; a store without it is not read.
const header = "site-controller last-good 1\n"

// recordSize is the bytes a record of path and data takes in the store.
func recordSize(path string, data []byte) int64 {
	return int64(8 + 1 + binary.MaxVarintLen64 + len(path) + len(data))
}

// appendRecord appends one record: its body's length and CRC-32C (4
// bytes each, big-endian), then the body: the operation, the path's
// length (uvarint), the path, and for opPut the file's content.
func appendRecord(b []byte, op byte, path string, data []byte) []byte {
	body := make([]byte, 0, 1+binary.MaxVarintLen64+len(path)+len(data))
	body = append(body, op)
	body = binary.AppendUvarint(body, uint64(len(path)))
	body = append(body, path...)
	body = append(body, data...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, castagnoli))
	return append(b, body...)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// parse reads the records of a store into files; whole tells that it
// ended in a record cut short or damaged (what came before is used).
func parse(data []byte, files map[string]*goodFile) (whole bool) {
	if !bytes.HasPrefix(data, []byte(header)) {
		return len(data) > 0
	}
	data = data[len(header):]
	for len(data) > 0 {
		if len(data) < 8 {
			return true
		}
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(len(data)-8) {
			return true
		}
		body := data[8 : 8+n]
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(data[4:]) || len(body) < 2 {
			return true
		}
		data = data[8+n:]
		l, k := binary.Uvarint(body[1:])
		if k <= 0 || l > uint64(len(body)-1-k) {
			return true
		}
		path := string(body[1+k : 1+k+int(l)])
		switch body[0] {
		case opPut:
			content := bytes.Clone(body[1+k+int(l):])
			files[path] = &goodFile{sum: sha256.Sum256(content), data: content}
		case opGone:
			delete(files, path)
		default:
			return true
		}
	}
	return false
}

// open reads the store of a namespace directory met for the first time.
func open(dir namespace.Dir, self namespace.Identity) *Files {
	ns := &Files{dir: self, files: map[string]*goodFile{}}
	data, err := readPrivate(dir.LastGood())
	switch {
	case err == nil:
		ns.whole = parse(data, ns.files)
		ns.size = int64(len(data))
	case !errors.Is(err, fs.ErrNotExist):
		ns.whole = true
	}
	for p, f := range ns.files {
		ns.live += recordSize(p, f.data)
	}
	if entries, err := os.ReadDir(legacyDir(dir)); err == nil {
		ns.legacy, ns.whole = map[string]string{}, true
		for _, e := range entries {
			h, _, _ := strings.Cut(e.Name(), ".")
			if prev, ok := ns.legacy[h]; e.Type().IsRegular() && (!ok || prev < e.Name()) {
				ns.legacy[h] = e.Name()
			}
		}
	}
	return ns
}

// readPrivate reads a file of internal/, never through a symbolic link.
func readPrivate(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (ns *Files) put(path string, good *goodFile) {
	if old := ns.files[path]; old != nil {
		ns.live -= recordSize(path, old.data)
	}
	ns.files[path] = good
	ns.live += recordSize(path, good.data)
}

func (ns *Files) drop(path string) {
	if old := ns.files[path]; old != nil {
		ns.live -= recordSize(path, old.data)
		delete(ns.files, path)
	}
}

// save brings the store up to date: batch appended, or the whole written
// again when it must be, when it would grow beyond twice what it holds,
// or when it is gone while broken files stand on it (internal/ removed
// by hand: what this pass stands on must outlive the process). Failing
// to is not worth failing the pass for: the content in memory still
// serves while the controller runs; the next pass that changes anything
// tries again, whole.
func (ns *Files) save(dir namespace.Dir, batch []byte, usedBroken bool) {
	path := dir.LastGood()
	if !ns.whole && usedBroken && len(batch) == 0 {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			ns.whole = true
		}
	}
	if !ns.whole && len(batch) == 0 {
		return
	}
	if !ns.whole && ns.size+int64(len(batch)) <= 2*ns.live+64<<10 {
		err := dir.Files().Append(path, batch, false)
		if err == nil {
			ns.size += int64(len(batch))
			return
		}
		if !errors.Is(err, fs.ErrNotExist) {
			ns.whole = true
			return
		}
		if len(ns.files) == 0 {
			return
		}
	}
	data := []byte(header)
	for p, f := range ns.files {
		data = appendRecord(data, opPut, p, f.data)
	}
	// a store made where there was none, of files all good now, holds
	// what the input holds: lost to a crash before it reached the disk,
	// it leaves the namespace as it was before it was written. One that
	// replaces a store, or holds a broken file's last good content or an
	// older layout's copies (removed next), is flushed first.
	flush := ns.size > 0 || usedBroken || ns.legacy != nil
	if err := dir.Files().Replace(path, data, 0o600, 0o700, flush); err != nil {
		ns.whole = true
		return
	}
	ns.size, ns.whole = int64(len(data)), false
	if ns.legacy != nil && dir.Files().RemoveAll(legacyDir(dir)) == nil {
		ns.legacy = nil
	}
}

// legacyDir is where earlier versions kept a copy per file, named
// <hash of its path>.<hash of its content>: the first pass takes in the
// copies of broken files and removes the directory.
func legacyDir(dir namespace.Dir) string { return filepath.Join(dir.Internal(), "last-good") }

// loadLegacy reads the older layout's copy of file, nil when there is
// none.
func (ns *Files) loadLegacy(dir namespace.Dir, file string) *goodFile {
	sum := sha256.Sum256([]byte(file))
	name, ok := ns.legacy[hex.EncodeToString(sum[:16])]
	if !ok {
		return nil
	}
	data, err := readPrivate(filepath.Join(legacyDir(dir), name))
	if err != nil {
		return nil
	}
	return &goodFile{sum: sha256.Sum256(data), data: data}
}
