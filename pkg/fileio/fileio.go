// Package fileio writes files so that readers never see them half
// written: atomic create and replace (O_TMPFILE and link, or a temporary
// file beside the target and rename), fsync for content that cannot be
// regenerated, flock-based locks, and the small helpers around them. It
// knows nothing of namespaces or resources.
package fileio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// WriteFile writes data to path atomically (temporary file in the same
// directory, then rename), creating parent directories with dirPerm. It
// does nothing and returns false when the file already holds data with the
// given mode. With sync set, the data is flushed to disk before the rename
// and the directory after it: for content that cannot be regenerated.
func WriteFile(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) (bool, error) {
	old, mode, err := ReadCurrent(path)
	switch {
	case err == nil && mode == perm && bytes.Equal(old, data):
		return false, nil
	case errors.Is(err, fs.ErrNotExist):
		return true, Create(path, data, perm, dirPerm, sync)
	}
	return true, Replace(path, data, perm, dirPerm, sync)
}

// Create writes a file that does not exist yet so that it appears whole:
// an unnamed O_TMPFILE file is written, then linked in. Where that is not
// possible (file system without O_TMPFILE, or the file appeared meanwhile)
// it falls back to Replace.
func Create(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) error {
	dir := filepath.Dir(path)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, uint32(perm))
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		fd, err = unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, uint32(perm))
	}
	if err != nil {
		return Replace(path, data, perm, dirPerm, sync)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := f.Chmod(perm); err != nil { // O_TMPFILE's mode is subject to umask
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW); err != nil {
		return Replace(path, data, perm, dirPerm, sync)
	}
	if sync {
		return syncDir(dir)
	}
	return nil
}

// CreateNew writes a file that must not exist yet, atomically: it appears
// whole or not at all, and an existing file (however recent) is never
// replaced: the error is then fs.ErrExist.
func CreateNew(path string, data []byte, perm, dirPerm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm, dirPerm, true)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// link(2) fails when the name exists: the check and the creation are
	// one step
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new temporary file beside path (so that a
// rename or link puts it in place atomically) and returns its name.
func writeTemp(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil && sync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return tmp.Name(), nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
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
// its permission bits, with one open.
func ReadInto(path string, buf *bytes.Buffer) (fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	buf.Grow(int(st.Size()))
	if _, err := buf.ReadFrom(f); err != nil {
		return 0, err
	}
	return st.Mode().Perm(), nil
}

// Replace writes data to path atomically, as WriteFile does, without
// comparing with what is there.
func Replace(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) error {
	tmp, err := writeTemp(path, data, perm, dirPerm, sync)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if sync {
		return syncDir(filepath.Dir(path))
	}
	return nil
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
func RemoveTemps(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() && isTemp(e.Name()) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
