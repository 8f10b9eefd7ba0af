package daemon

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/site-controller/site-controller/pkg/fileio"
)

// maxScanned is the largest file the rescan hashes; a larger one is
// compared by its stat alone.
const maxScanned = 16 << 20

// inputScanner notices changes to the files a reconcile reads — resource
// files, credentials, issuers and the platform — without events: the
// periodic rescan's safety net. A file whose stat (size, times, inode) is
// unchanged is not read again; one whose stat changed is read and compared
// by content hash, so a touch costs nothing.
type inputScanner struct {
	files map[string]scannedFile // by path
}

type scannedFile struct {
	key  [5]int64 // dev, inode, size, mtime, ctime (ns)
	sum  [32]byte
	hash bool // sum is known
}

func statKey(st os.FileInfo) [5]int64 {
	k := [5]int64{0, 0, st.Size(), st.ModTime().UnixNano(), 0}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		k[0], k[1] = int64(s.Dev), int64(s.Ino)
		k[4] = s.Ctim.Sec*1e9 + s.Ctim.Nsec
	}
	return k
}

// inputFiles lists the files of a namespace that its reconcile reads.
func inputFiles(dir string) []string {
	var files []string
	filepath.WalkDir(filepath.Join(dir, "input"), func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if _, err := os.Lstat(filepath.Join(dir, "internal", "platform.yaml")); err == nil {
		files = append(files, filepath.Join(dir, "internal", "platform.yaml"))
	}
	return files
}

// scan compares the namespace's files with what it saw last and tells
// whether anything changed (a file added, removed, or with new content).
// With contents false only stats are taken (a first look).
func (s *inputScanner) scan(dir string, contents bool) bool {
	changed := false
	seen := map[string]bool{}
	for _, path := range inputFiles(dir) {
		seen[path] = true
		st, err := os.Stat(path) // follows links, as the reconcile does
		if err != nil {
			if _, had := s.files[path]; had {
				changed = true
				delete(s.files, path)
			}
			continue
		}
		key := statKey(st)
		old, had := s.files[path]
		if had && old.key == key {
			continue
		}
		entry := scannedFile{key: key}
		if contents {
			// guarded as the reconcile reads: a named pipe is never
			// opened to wait for a writer (its stat is its key)
			if data, err := fileio.ReadInput(path, maxScanned); err == nil {
				entry.sum, entry.hash = sha256.Sum256(data), true
			}
		}
		if !had || !old.hash || !entry.hash || old.sum != entry.sum {
			changed = true
		}
		s.files[path] = entry
	}
	prefix := dir + string(filepath.Separator)
	for path := range s.files {
		if len(path) > len(prefix) && path[:len(prefix)] == prefix && !seen[path] {
			delete(s.files, path)
			changed = true
		}
	}
	return changed
}
