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
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/site-controller/site-controller/pkg/fileio"
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
		if resources.ValidName(e.Name()) != "" {
			continue // not a namespace name (hidden files, temporary names)
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
			if errors.Is(err, fs.ErrNotExist) {
				// the whole directory, or something in it, went while
				// we listed: what is gone is not there to read
				if path == root {
					return fs.SkipAll
				}
				return nil
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
			if errors.Is(err, fs.ErrNotExist) || (err == nil && st.IsDir()) {
				return nil // dangling link or a link to a directory
			}
			// anything else (a loop, a pipe) is read, and reported there
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

// MaxFileSize is the default cap on the size of one resource file.
const MaxFileSize = 1 << 20

// File is one resource file as read.
type File struct {
	Path string // relative to the namespace directory
	Data []byte
	// Broken says why the file cannot be used as a whole: it cannot be
	// read, is not a regular file, is too large, or holds invalid YAML or a
	// document that is not a mapping. "" when it was read and parsed.
	Broken string
	// Empty is true for a file that holds nothing but white space.
	Empty bool
	// Modified is when the file (or the link to it) last changed.
	Modified time.Time
	Docs     []*resources.Document
	Problems []resources.Problem
}

// ReadFiles reads and decodes every resource file of the namespace, on a
// few goroutines. Only regular files (through symbolic links) of at most
// maxSize bytes are read: a named pipe, a device or a huge file is a
// problem of that file, never a read that blocks or bloats.
func (d Dir) ReadFiles(maxSize int64) ([]File, error) {
	if maxSize <= 0 {
		maxSize = MaxFileSize
	}
	paths, err := d.ResourceFiles()
	if err != nil {
		return nil, err
	}
	files := make([]File, len(paths))
	fileio.ForEach(len(paths), func(i int) {
		f := &files[i]
		f.Path = paths[i]
		if st, err := os.Lstat(filepath.Join(d.Path, f.Path)); err == nil {
			f.Modified = st.ModTime()
		}
		if st, err := os.Stat(filepath.Join(d.Path, f.Path)); err == nil && st.ModTime().After(f.Modified) {
			f.Modified = st.ModTime()
		}
		data, err := readRegular(filepath.Join(d.Path, f.Path), maxSize)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			f.Path = "" // removed while we listed
		case err != nil:
			f.Broken = err.Error()
			f.Problems = []resources.Problem{{File: f.Path, Message: err.Error()}}
		default:
			f.Data = data
			f.Empty = len(bytes.TrimSpace(data)) == 0
			f.Docs, f.Problems = resources.Decode(f.Path, data)
			if len(f.Problems) > 0 {
				f.Broken = f.Problems[0].Message
				if f.Problems[0].Line > 0 {
					f.Broken = fmt.Sprintf("line %d: %s", f.Problems[0].Line, f.Broken)
				}
			}
		}
	})
	return slices.DeleteFunc(files, func(f File) bool { return f.Path == "" }), nil
}

// readRegular reads a regular file of at most max bytes. It never opens
// anything else for reading: a named pipe would block, a device never end.
func readRegular(path string, max int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, readError(err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(st.Mode())
	}
	if st.Size() > max {
		return nil, fmt.Errorf("too large: %d bytes, more than the %d a resource file may have (--max-file-size)", st.Size(), max)
	}
	// O_NONBLOCK: should a pipe have been swapped in since the stat, the
	// open does not wait for a writer
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, readError(err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, readError(err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(st.Mode())
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, readError(err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("too large: more than the %d bytes a resource file may have (--max-file-size)", max)
	}
	return data, nil
}

func readError(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if errors.Is(err, unix.ELOOP) {
		return errors.New("cannot read: a loop of symbolic links")
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("cannot read: %w", err)
}

func notRegular(m fs.FileMode) error {
	what := "not a regular file"
	switch {
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeDevice != 0:
		what = "a device"
	case m.IsDir():
		what = "a directory"
	}
	return fmt.Errorf("not read: %s; only regular files are read as resources", what)
}

// Load reads and validates every resource file of the namespace. A file
// that cannot be read is a problem of that file, not an error of the load.
func (d Dir) Load() (*resources.Namespace, error) {
	files, err := d.ReadFiles(MaxFileSize)
	if err != nil {
		return nil, err
	}
	var docs []*resources.Document
	var probs []resources.Problem
	for _, f := range files {
		docs = append(docs, f.Docs...)
		probs = append(probs, f.Problems...)
	}
	return resources.Build(d.Name, docs, probs), nil
}

// Identity tells one directory from another created later at the same
// path: device and inode (which a file system reuses at once for a
// directory removed and created again), and, where the file system records
// it, the birth time.
type Identity struct {
	dev, ino uint64
	birth    unix.StatxTimestamp
}

// Identity returns the identity of the namespace directory.
func (d Dir) Identity() (Identity, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, d.Path, 0, unix.STATX_INO|unix.STATX_BTIME, &st); err != nil {
		return Identity{}, &os.PathError{Op: "statx", Path: d.Path, Err: err}
	}
	id := Identity{dev: uint64(st.Dev_major)<<32 | uint64(st.Dev_minor), ino: st.Ino}
	if st.Mask&unix.STATX_BTIME != 0 {
		id.birth = st.Btime
	}
	return id, nil
}
