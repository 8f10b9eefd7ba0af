package daemon

import (
	"crypto/sha256"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/namespace"
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
	key  namespace.StatKey
	sum  [32]byte
	hash bool // sum is known
}

// statInput calls visit with the stat of every file of a namespace that
// its reconcile reads (following symbolic links, as it does; nil when
// that fails): those below input/ (a directory is walked, not one a link
// points to) and internal/platform.yaml. Each is looked at from its
// directory, opened once: a baseline of a thousand namespaces is a few
// thousand opens and stats of one name each.
func statInput(dir string, visit func(path string, st *unix.Stat_t)) {
	statTree(filepath.Join(dir, "input"), visit)
	platform := filepath.Join(dir, "internal", "platform.yaml")
	var st unix.Stat_t
	if unix.Fstatat(unix.AT_FDCWD, platform, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		statFile(unix.AT_FDCWD, platform, platform, &st, visit)
	}
}

func statTree(dir string, visit func(path string, st *unix.Stat_t)) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 8<<10)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	for _, name := range names {
		var st unix.Stat_t
		if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue // gone meanwhile
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			statTree(filepath.Join(dir, name), visit)
			continue
		}
		statFile(fd, name, filepath.Join(dir, name), &st, visit)
	}
}

// statFile visits the file path, name in directory fd (the path itself
// with AT_FDCWD), whose lstat is st: a symbolic link by what it points to.
func statFile(fd int, name, path string, st *unix.Stat_t, visit func(path string, st *unix.Stat_t)) {
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if unix.Fstatat(fd, name, st, 0) != nil {
			visit(path, nil)
			return
		}
	}
	visit(path, st)
}

// scan compares the namespace's files with what it saw last and tells
// whether anything changed (a file added, removed, or with new content).
// With contents false only stats are taken (a first look).
func (s *inputScanner) scan(dir string, contents bool) bool {
	changed := false
	seen := map[string]bool{}
	statInput(dir, func(path string, st *unix.Stat_t) {
		seen[path] = true
		if st == nil {
			if _, had := s.files[path]; had {
				changed = true
				delete(s.files, path)
			}
			return
		}
		key := namespace.StatKeyOf(st)
		old, had := s.files[path]
		if had && old.key == key {
			return
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
	})
	prefix := dir + string(filepath.Separator)
	for path := range s.files {
		if len(path) > len(prefix) && path[:len(prefix)] == prefix && !seen[path] {
			delete(s.files, path)
			changed = true
		}
	}
	return changed
}
