// Package namespace knows the layout of a site's directory
// (<data-home>/namespaces/<ns>/), reads its input and writes its runtime
// files atomically.
//
// It never writes, renames or deletes anything under input/: that
// directory belongs to the user.
package namespace

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
func (d Dir) Input() string              { return d.Join("input") }
func (d Dir) Runtime() string            { return d.Join("runtime") }
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

// TokenAnswers is runtime/tokens, where what was taken of the grant
// servers' answers to the AccessTokens is kept; TokenAnswer is one
// token's, TokenState what the controller keeps of its redemption.
func (d Dir) TokenAnswers() string           { return d.Join("runtime", "tokens") }
func (d Dir) TokenAnswer(name string) string { return d.Join("runtime", "tokens", name+".yaml") }
func (d Dir) TokenState(name string) string  { return d.Join("internal", "tokens", name+".yaml") }

// GrantState is what the controller keeps of an AccessGrant (its URL's
// id, its code, the redemptions counted); LastGood the store of the
// last good content of the input files; Links the site's link files.
func (d Dir) GrantState(name string) string { return d.Join("internal", "grants", name+".yaml") }
func (d Dir) LastGood() string              { return d.Join("internal", "last-good.log") }
func (d Dir) Links() string                 { return d.Join("runtime", "links") }

// LinkFile is the link file of a RouterAccess for one of its hosts.
func (d Dir) LinkFile(access, host string) string {
	return d.Join("runtime", "links", "link-"+access+"-"+host+".yaml")
}

// Files is the namespace directory as a fileio.Tree: every write below it
// goes through it, so that a symbolic link planted there (a router can
// write into what is bound into its container) is never followed, and no
// directory is made in a namespace directory without input/ (one being
// removed).
func (d Dir) Files() fileio.Tree { return fileio.Beneath(d.Path).Requiring("input") }

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
	// Sum is the SHA-256 of Data.
	Sum      [sha256.Size]byte
	Docs     []*resources.Document
	Problems []resources.Problem
}

// ReadFiles reads and decodes every resource file of the namespace, on a
// few goroutines. Only regular files (through symbolic links) of at most
// maxSize bytes are read: a named pipe, a device or a huge file is a
// problem of that file, never a read that blocks or bloats.
func (d Dir) ReadFiles(maxSize int64) ([]File, error) {
	return d.ReadFilesCached(maxSize, nil, nil)
}

// ReadFilesCached is ReadFiles that takes from cache what it read before of
// a file whose stat (of the link and of what it points to) has not changed
// since, and keeps there what it reads. With a nil cache every file is
// read.
//
// When changed is not nil, it holds every path (relative to the namespace
// directory) that may have changed since the cache was last filled, and
// nothing else did: files are neither listed nor looked at again unless
// named there, or read for want of a trusted copy. A changed directory
// makes it list and look at everything.
func (d Dir) ReadFilesCached(maxSize int64, cache *FileCache, changed []string) ([]File, error) {
	if maxSize <= 0 {
		maxSize = MaxFileSize
	}
	paths, hinted, err := d.listFiles(cache, changed)
	if err != nil {
		return nil, err
	}
	files := make([]File, len(paths))
	read := func(i int) {
		f := &files[i]
		if hinted != nil && !hinted[paths[i]] {
			if cached, ok := cache.trusted(paths[i]); ok {
				*f = cached
				return
			}
		}
		if got, ok := d.readFile(maxSize, cache, paths[i]); ok {
			*f = got
		} // else removed while we listed: Path stays ""
	}
	if hinted != nil {
		// nearly everything comes from the cache: goroutines would cost
		// more than they save
		for i := range files {
			read(i)
		}
	} else {
		fileio.ForEach(len(paths), read)
	}
	files = slices.DeleteFunc(files, func(f File) bool { return f.Path == "" })
	cache.keep(files)
	return files, nil
}

// readFile reads one resource file, or takes it from cache when its stat
// has not changed since it was read; false when it is gone.
func (d Dir) readFile(maxSize int64, cache *FileCache, path string) (File, bool) {
	f := File{Path: path}
	full := filepath.Join(d.Path, path)
	var st unix.Stat_t
	key, stated, ok := statFile(full, &st)
	if !ok {
		return File{}, false
	}
	if cached, ok := cache.get(path, key); ok {
		return cached, true
	}
	f.Modified = key.modified()
	readAt := time.Now()
	known := &st
	if !stated {
		known = nil
	}
	data, err := readRegular(full, maxSize, known)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return File{}, false
	case err != nil:
		f.Broken = err.Error()
		f.Problems = []resources.Problem{{File: f.Path, Message: err.Error()}}
	default:
		f.Data = data
		f.Sum = sha256.Sum256(data)
		f.Empty = len(bytes.TrimSpace(data)) == 0
		f.Docs, f.Problems = resources.Decode(f.Path, data)
		if len(f.Problems) > 0 {
			f.Broken = f.Problems[0].Message
			if f.Problems[0].Line > 0 {
				f.Broken = fmt.Sprintf("line %d: %s", f.Problems[0].Line, f.Broken)
			}
		}
		cache.put(f.Path, key, f, readAt)
	}
	return f, true
}

// ReadChanged reads the resource files among changed (paths relative to
// the namespace directory) that changed since cache was last filled, when
// nothing else did, and brings cache up to date: by path, each file as
// read now, or nil for one that is gone. False when that cannot stand
// for reading them all: cache holds no listing yet or symbolic links
// (what they point to changes without an event), or a change is not a
// resource file (a directory, input/certs).
func (d Dir) ReadChanged(maxSize int64, cache *FileCache, changed []string) (map[string]*File, bool) {
	if maxSize <= 0 {
		maxSize = MaxFileSize
	}
	if cache == nil || len(changed) == 0 {
		return nil, false
	}
	cache.mu.Lock()
	listed, links := cache.listed, cache.links
	cache.mu.Unlock()
	if listed == nil || links > 0 {
		return nil, false
	}
	paths, hinted, ok := d.updateListing(listed, changed)
	if !ok {
		return nil, false
	}
	for _, p := range changed {
		if !hinted[filepath.Clean(p)] {
			return nil, false
		}
	}
	out := make(map[string]*File, len(hinted))
	for p := range hinted {
		if _, present := slices.BinarySearch(paths, p); !present {
			out[p] = nil
			cache.forget(p)
			continue
		}
		f, ok := d.readFile(maxSize, cache, p)
		if !ok {
			return nil, false // gone since it was listed: list again
		}
		out[p] = &f
	}
	cache.mu.Lock()
	cache.listed = paths
	cache.mu.Unlock()
	return out, true
}

// listFiles returns the resource files of the namespace: listed, or, when
// the cache holds a listing and every change is known, that listing
// brought up to date with the changed paths, which it also returns as a
// set (nil when it listed).
func (d Dir) listFiles(cache *FileCache, changed []string) ([]string, map[string]bool, error) {
	if cache != nil && changed != nil {
		cache.mu.Lock()
		listed := cache.listed
		cache.mu.Unlock()
		if listed != nil {
			if paths, hinted, ok := d.updateListing(listed, changed); ok {
				cache.mu.Lock()
				cache.listed = paths
				cache.mu.Unlock()
				return paths, hinted, nil
			}
		}
	}
	paths, err := d.ResourceFiles()
	if err != nil {
		return nil, nil, err
	}
	if cache != nil {
		cache.mu.Lock()
		cache.listed = paths
		cache.mu.Unlock()
	}
	return paths, nil, nil
}

// updateListing applies changed paths to a listing of the resource files,
// as ResourceFiles would list them; false when a change is one it cannot
// apply (a directory).
func (d Dir) updateListing(listed, changed []string) ([]string, map[string]bool, bool) {
	hinted := map[string]bool{}
	paths := listed
	copied := false
	for _, p := range changed {
		p = filepath.Clean(p)
		rel, err := filepath.Rel(filepath.Join("input", "resources"), p)
		switch {
		case err == nil && rel == ".", p == "input" || p == ".":
			return nil, nil, false // the directory itself
		case err != nil || strings.HasPrefix(rel, ".."):
			continue // not a resource file: read by every pass anyway
		}
		present := true
		st, err := os.Stat(filepath.Join(d.Path, p))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			present = false // gone, or a dangling link
		case err == nil && st.IsDir():
			return nil, nil, false // a directory: list it all
		}
		if !present {
			prefix := p + string(filepath.Separator)
			if i, _ := slices.BinarySearch(paths, prefix); i < len(paths) && strings.HasPrefix(paths[i], prefix) {
				return nil, nil, false // a directory that went
			}
		}
		parts := strings.Split(rel, string(filepath.Separator))
		if slices.ContainsFunc(parts[:len(parts)-1], Ignored) || !IsResourceFile(parts[len(parts)-1]) {
			continue // never listed
		}
		// what is not a directory is read, and what is wrong with it
		// reported there, as ResourceFiles lists it
		hinted[p] = true
		i, found := slices.BinarySearch(paths, p)
		if found == present {
			continue
		}
		if !copied {
			paths, copied = slices.Clone(paths), true
		}
		if present {
			paths = slices.Insert(paths, i, p)
		} else {
			paths = slices.Delete(paths, i, i+1)
		}
	}
	return paths, hinted, true
}

// FileCache keeps what ReadFilesCached read of one namespace directory's
// files, so that a pass after one file changed reads that file only. A
// file is taken from the cache only when its stat is the same as when it
// was read, and it was read long enough after its last change that a
// later change cannot carry the same times (file systems stamp times from
// a clock that moves in steps of milliseconds).
type FileCache struct {
	// Window is how long after a file's last change a read of it is not
	// trusted to stand for its content, the file read again next time
	// (zero: racyWindow; negative: none)
	Window time.Duration

	mu    sync.Mutex
	files map[string]cachedFile
	// listed are the resource files as last listed, kept up to date
	// with the changes passes were told of; nil until listed
	listed []string
	// links counts the files that are symbolic links
	links int
}

type cachedFile struct {
	key  fileKey
	file File
	// link is true for a symbolic link: what it points to can change
	// without an event in the namespace, so it is looked at every time
	link bool
}

// racyWindow is how long after a file's last change a read of it is not
// trusted to stand for its content: file systems stamp times from a clock
// that moves in steps.
const racyWindow = 2 * time.Second

// fileKey is what a file's stat says about its content: of the link
// itself and, through a symbolic link, of the file it points to.
type fileKey struct {
	link, target StatKey
}

// StatKey is what one lstat says of a file's content: a file written
// again, in place or replaced, has another (times in nanoseconds).
type StatKey struct {
	Dev, Ino, Size, Mtime, Ctime int64
	Mode                         uint32
}

// StatKeyOf is the key of a stat.
func StatKeyOf(st *unix.Stat_t) StatKey {
	return StatKey{Dev: int64(st.Dev), Ino: int64(st.Ino), Size: st.Size, Mode: st.Mode,
		Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec, Ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec}
}

// fileKeyOf stats path and, when it is a symbolic link, what it points to;
// false when it is gone.
func fileKeyOf(path string) (fileKey, bool) {
	var st unix.Stat_t
	k, _, ok := statFile(path, &st)
	return k, ok
}

// statFile is fileKeyOf, and the stat of what path names (a symbolic link
// followed) in st, with whether it could be taken.
func statFile(path string, st *unix.Stat_t) (key fileKey, stated, there bool) {
	if err := unix.Lstat(path, st); err != nil {
		return fileKey{}, false, !errors.Is(err, unix.ENOENT)
	}
	k := fileKey{link: StatKeyOf(st)}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if err := unix.Stat(path, st); err != nil {
			return k, false, true
		}
		k.target = StatKeyOf(st)
	}
	return k, true, true
}

// modified is when the file, or the link to it, last changed.
func (k fileKey) modified() time.Time {
	return time.Unix(0, max(k.link.Mtime, k.target.Mtime))
}

// changed is the latest change time of the link and its target.
func (k fileKey) changed() time.Time {
	return time.Unix(0, max(k.link.Ctime, k.target.Ctime, k.link.Mtime, k.target.Mtime))
}

func (c *FileCache) get(path string, key fileKey) (File, bool) {
	if c == nil {
		return File{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.files[path]
	if !ok || e.key != key {
		return File{}, false
	}
	return e.file, true
}

// trusted returns the cached copy of a file that no change was reported
// for: one that is not a symbolic link.
func (c *FileCache) trusted(path string) (File, bool) {
	if c == nil {
		return File{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.files[path]
	if !ok || e.link {
		return File{}, false
	}
	return e.file, true
}

func (c *FileCache) put(path string, key fileKey, f File, readAt time.Time) {
	if c == nil {
		return
	}
	window := c.Window
	if window == 0 {
		window = racyWindow
	}
	link := key.link.Mode&unix.S_IFMT == unix.S_IFLNK
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.files[path]; ok && old.link {
		c.links--
	}
	if link {
		c.links++ // counted, cached or not: it is read every time
	}
	if c.files == nil {
		c.files = map[string]cachedFile{}
	}
	if readAt.Sub(key.changed()) < window {
		delete(c.files, path) // the copy before this change
		if link {
			c.files[path] = cachedFile{key: fileKey{}, link: true} // never matches a stat
		}
		return
	}
	// a change after the stat that keyed the read gives the file
	// another stat, unless it came within the same tick of the file
	// system's clock as the change before: hence the window
	c.files[path] = cachedFile{key: key, file: f, link: link}
}

// forget drops what the cache holds of path.
func (c *FileCache) forget(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.files[path]; ok {
		if old.link {
			c.links--
		}
		delete(c.files, path)
	}
}

// keep forgets every file but those read now.
func (c *FileCache) keep(files []File) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		seen[f.Path] = true
	}
	for p, e := range c.files {
		if !seen[p] {
			if e.link {
				c.links--
			}
			delete(c.files, p)
		}
	}
}

// readRegular reads a resource file with fileio.ReadInput: only a
// regular file of at most max bytes, never anything that could block (a
// named pipe) or never end (a device); st, when not nil, is the file's
// stat just taken (links followed), which the read need not take again.
func readRegular(path string, max int64, st *unix.Stat_t) ([]byte, error) {
	data, err := fileio.ReadInputStat(path, max, st)
	var nr *fileio.NotRegularError
	var tl *fileio.TooLargeError
	switch {
	case errors.As(err, &nr):
		return nil, fmt.Errorf("not read: %s; only regular files are read as resources", nr.What)
	case errors.As(err, &tl) && tl.Size < 0:
		return nil, fmt.Errorf("too large: more than the %d bytes a resource file may have (--max-file-size)", max)
	case errors.As(err, &tl):
		return nil, fmt.Errorf("too large: %d bytes, more than the %d a resource file may have (--max-file-size)", tl.Size, max)
	}
	return data, err
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
func (d Dir) Identity() (Identity, error) { return IdentityOf(d.Path) }

// IdentityOf returns the identity of the file or directory at path.
func IdentityOf(path string) (Identity, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_INO|unix.STATX_BTIME, &st); err != nil {
		return Identity{}, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	id := Identity{dev: uint64(st.Dev_major)<<32 | uint64(st.Dev_minor), ino: st.Ino}
	if st.Mask&unix.STATX_BTIME != 0 {
		id.birth = st.Btime
	}
	return id, nil
}
