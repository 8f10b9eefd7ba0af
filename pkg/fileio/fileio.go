// Package fileio writes files so that readers never see them half
// written: atomic create and replace (O_TMPFILE and link, or a temporary
// file beside the target and rename), fsync for content that cannot be
// regenerated, flock-based locks, and the small helpers around them. It
// knows nothing of namespaces or resources.
package fileio

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// WriteFile writes data to path atomically (temporary file in the same
// directory, then rename), creating parent directories with dirPerm. It
// does nothing and returns false when the file already holds data with the
// given mode. With sync set, the data is flushed to disk before the rename
// and the directory after it: for content that cannot be regenerated.
// Directories on the way are followed as they are, symbolic links
// included: for files under a directory someone else can write into, use
// a Tree.
func WriteFile(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) (bool, error) {
	return Tree{}.WriteFile(path, data, perm, dirPerm, sync)
}

// Create writes a file that does not exist yet so that it appears whole:
// an unnamed O_TMPFILE file is written, then linked in. Where that is not
// possible (file system without O_TMPFILE, or the file appeared meanwhile)
// it falls back to Replace.
func Create(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) error {
	return Tree{}.Create(path, data, perm, dirPerm, sync)
}

// CreateNew writes a file that must not exist yet, atomically: it appears
// whole or not at all, and an existing file (however recent) is never
// replaced: the error is then fs.ErrExist.
func CreateNew(path string, data []byte, perm, dirPerm fs.FileMode) error {
	return Tree{}.CreateNew(path, data, perm, dirPerm)
}

// Replace writes data to path atomically, as WriteFile does, without
// comparing with what is there.
func Replace(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) error {
	return Tree{}.Replace(path, data, perm, dirPerm, sync)
}

// ReadCurrent returns a file's content and permission bits, with one open.
func ReadCurrent(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, 0, err
	}
	return data, st.Mode().Perm(), nil
}

// ReadInto reads a file into buf (which it grows as needed) and returns
// its permission bits, with one open. A symbolic link is not followed and
// anything but a regular file is an error: it reads back what the
// controller wrote, never what someone linked in its place.
func ReadInto(path string, buf *bytes.Buffer) (fs.FileMode, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", path)
	}
	buf.Grow(int(st.Size()))
	if _, err := buf.ReadFrom(f); err != nil {
		return 0, err
	}
	return st.Mode().Perm(), nil
}

// ForEach runs f(0) … f(n-1) on a few goroutines and waits for them: file
// work spends much of its time in system calls, so twice as many
// goroutines as processors keep both busy.
func ForEach(n int, f func(int)) {
	workers := min(n, 2*runtime.GOMAXPROCS(0))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// isTemp tells whether name is one of Replace's temporary files
// ("."+name+".tmp…").
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp")
}

// RemoveTemps removes temporary files that a crash between writing and
// renaming left in dir.
func RemoveTemps(dir string) { Tree{}.RemoveTemps(dir) }
