package fileio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Tree is a directory whose inside others may write into (a router
// container has bound parts of a namespace's runtime/): every write,
// removal and directory made below its root is done relative to
// directories opened one component at a time with O_NOFOLLOW, so that a
// symbolic link planted anywhere below the root is refused (ErrSymlink)
// instead of followed, and a link swapped in between a check and a write
// cannot redirect it: there is no check apart from the write. The root
// itself is followed: it is the operator's.
//
// The zero Tree has no root: paths are followed as they are (for files
// only the operator writes into: units, a file named on the command line).
type Tree struct {
	root string
	// uid and gid own the files written and the directories made or
	// secured through the Tree; -1 leaves them to the writer
	uid, gid int
	// requires is an entry the root must hold for a directory to be made
	// below it ("" for none)
	requires string
}

// ErrSymlink is the error of a write through a Tree that met a symbolic
// link below its root.
var ErrSymlink = errors.New("is a symbolic link, which is not followed")

// Beneath returns the Tree rooted at root, an absolute path. The root must
// exist: writes below a missing root fail (fs.ErrNotExist), they never
// make it again.
func Beneath(root string) Tree { return Tree{root: filepath.Clean(root), uid: -1, gid: -1} }

// Owned returns the same Tree writing files and directories owned by
// uid:gid (a router that runs as another user reads them); a file whose
// owner differs counts as changed. Only root can give files away.
func (t Tree) Owned(uid, gid int) Tree {
	t.uid, t.gid = uid, gid
	return t
}

// Requiring returns the same Tree writing nothing below its root unless
// the root holds name: a namespace directory being removed (rm -rf takes
// input/ with the rest) gets nothing new meanwhile, which would make the
// removal fail.
func (t Tree) Requiring(name string) Tree {
	t.requires = name
	return t
}

// Root is the Tree's root ("" for the zero Tree).
func (t Tree) Root() string { return t.root }

func (t Tree) owned() bool { return t.root != "" && t.uid >= 0 }

// openDir opens directory dir for writing into, creating what is missing
// when create is set: dir with perm, directories on the way to it below
// the root 0700. Below the root no component may be a symbolic link.
func (t Tree) openDir(dir string, perm fs.FileMode, create bool) (int, error) {
	if t.root == "" {
		if create {
			if err := os.MkdirAll(dir, perm); err != nil {
				return -1, fmt.Errorf("creating %s: %w", dir, err)
			}
		}
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: dir, Err: err}
		}
		return fd, nil
	}
	rel, err := filepath.Rel(t.root, filepath.Clean(dir))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return -1, fmt.Errorf("%s is not below %s", dir, t.root)
	}
	// the root is never made: a namespace directory removed meanwhile
	// stays removed
	fd, err := unix.Open(t.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: t.root, Err: err}
	}
	if create && t.requires != "" {
		// looked at by every write: one being removed gets nothing new
		var st unix.Stat_t
		if err := unix.Fstatat(fd, t.requires, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("not writing into %s: it has no %s (being removed?): %w", t.root, t.requires, fs.ErrNotExist)
		}
	}
	if rel == "." {
		return fd, nil
	}
	// the whole way in one call where the kernel has openat2 (Linux
	// 5.6): the same refusal of symbolic links; otherwise, or when
	// something is missing or refused, one component at a time
	if next, err := openBeneath(fd, rel); err == nil {
		unix.Close(fd)
		return next, nil
	}
	at := t.root
	names := strings.Split(rel, "/")
	for i, name := range names {
		at = filepath.Join(at, name)
		next, err := openDirAt(fd, name)
		if errors.Is(err, unix.ENOENT) && create {
			mode := fs.FileMode(0o700) // a directory on the way is private
			if i == len(names)-1 {
				mode = perm
			}
			if err := unix.Mkdirat(fd, name, uint32(mode)); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, fmt.Errorf("creating %s: %w", at, err)
			}
			next, err = openDirAt(fd, name)
		}
		if err != nil {
			err = t.explain(fd, name, at, err)
			unix.Close(fd)
			return -1, err
		}
		unix.Close(fd)
		fd = next
	}
	return fd, nil
}

// noOpenat2 is set once openat2 was found missing (or forbidden, by a
// seccomp filter).
var noOpenat2 atomic.Bool

// openBeneath opens directory rel below fd with no symbolic link on the
// way (nor a way out of fd by ".."), in one system call.
func openBeneath(fd int, rel string) (int, error) {
	if noOpenat2.Load() {
		return -1, unix.ENOSYS
	}
	next, err := unix.Openat2(fd, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		noOpenat2.Store(true)
	}
	return next, err
}

func openDirAt(fd int, name string) (int, error) {
	return unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// explain turns the error of opening name in fd (at path) into one that
// says when it was a symbolic link.
func (t Tree) explain(fd int, name, path string, err error) error {
	var st unix.Stat_t
	if (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) &&
		unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("writing below %s: %s %w", t.root, path, ErrSymlink)
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

// current is a file as found: content, permission bits and owner.
type current struct {
	data     []byte
	perm     fs.FileMode
	uid, gid int
}

// readAt reads name in directory fd without following a symbolic link or
// blocking on a FIFO; anything but a regular file is an error.
func readAt(fd int, name string) (current, error) {
	f, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return current{}, err
	}
	file := os.NewFile(uintptr(f), name)
	defer file.Close()
	var st unix.Stat_t
	if err := unix.Fstat(f, &st); err != nil {
		return current{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return current{}, fmt.Errorf("%s is not a regular file", name)
	}
	data := make([]byte, st.Size)
	if _, err := io.ReadFull(file, data); err != nil {
		return current{}, err
	}
	return current{data: data, perm: fs.FileMode(st.Mode) & fs.ModePerm, uid: int(st.Uid), gid: int(st.Gid)}, nil
}

// WriteFile is the package's WriteFile below the Tree's root; a file
// whose owner is not the Tree's counts as changed.
func (t Tree) WriteFile(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) (bool, error) {
	fd, err := t.openDir(filepath.Dir(path), dirPerm, true)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	old, err := readAt(fd, filepath.Base(path))
	switch {
	case err == nil && old.perm == perm && bytes.Equal(old.data, data) && (!t.owned() || old.uid == t.uid && old.gid == t.gid):
		return false, nil
	case errors.Is(err, unix.ENOENT):
		return true, t.createAt(fd, path, data, perm, flushOf(sync), nil)
	}
	return true, t.replaceAt(fd, path, data, perm, flushOf(sync))
}

// Create is the package's Create below the Tree's root.
func (t Tree) Create(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) error {
	fd, err := t.openDir(filepath.Dir(path), dirPerm, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return t.createAt(fd, path, data, perm, flushOf(sync), nil)
}

// Replace is the package's Replace below the Tree's root.
func (t Tree) Replace(path string, data []byte, perm, dirPerm fs.FileMode, sync bool) error {
	fd, err := t.openDir(filepath.Dir(path), dirPerm, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return t.replaceAt(fd, path, data, perm, flushOf(sync))
}

// CreateNew is the package's CreateNew below the Tree's root.
func (t Tree) CreateNew(path string, data []byte, perm, dirPerm fs.FileMode) error {
	fd, err := t.openDir(filepath.Dir(path), dirPerm, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	tmp, err := t.tempAt(fd, path, data, perm, true)
	if err != nil {
		return err
	}
	defer unix.Unlinkat(fd, tmp, 0)
	// link(2) fails when the name exists: the check and the creation are
	// one step
	if err := unix.Linkat(fd, tmp, fd, filepath.Base(path), 0); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fs.ErrExist
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncFD(fd, path)
}

// Append adds data at the end of the existing file path (never through a
// symbolic link): fs.ErrNotExist when there is none, so that a file
// removed meanwhile is never made again holding only its tail.
func (t Tree) Append(path string, data []byte, sync bool) error {
	fd, err := t.openDir(filepath.Dir(path), 0, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	f, err := unix.Openat(fd, filepath.Base(path), unix.O_WRONLY|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("appending to %s: %w", path, ErrSymlink)
		}
		return &fs.PathError{Op: "append", Path: path, Err: err}
	}
	file := os.NewFile(uintptr(f), path)
	defer file.Close()
	if _, err := file.Write(data); err != nil {
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	if sync {
		flushes.Add(1)
		if err := file.Sync(); err != nil {
			return fmt.Errorf("appending to %s: %w", path, err)
		}
	}
	return nil
}

// createAt writes a new file name in directory fd so that it appears
// whole: an unnamed O_TMPFILE file linked in, or replaceAt where that is
// not possible (no O_TMPFILE, or the name exists by now). With st, the
// file's stat as linked in is stored there.
func (t Tree) createAt(fd int, path string, data []byte, perm fs.FileMode, sync flush, st *unix.Stat_t) error {
	f, err := unix.Openat(fd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, uint32(perm))
	if err != nil {
		return t.replaceStat(fd, path, data, perm, sync, st)
	}
	defer unix.Close(f)
	if err := t.fill(f, data, perm, sync != noFlush); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := linkIn(f, fd, filepath.Base(path)); err != nil {
		return t.replaceStat(fd, path, data, perm, sync, st)
	}
	if st != nil {
		// after the link, which changes the file's ctime
		if err := ignoringEINTR(func() error { return unix.Fstat(f, st) }); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if sync == flushAll {
		return syncFD(fd, path)
	}
	return nil
}

// replaceStat is replaceAt, then the stat of what it put in place into st
// (when given).
func (t Tree) replaceStat(fd int, path string, data []byte, perm fs.FileMode, sync flush, st *unix.Stat_t) error {
	if err := t.replaceAt(fd, path, data, perm, sync); err != nil {
		return err
	}
	if st == nil {
		return nil
	}
	if err := unix.Fstatat(fd, filepath.Base(path), st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// noEmptyPath is set once linkat refused AT_EMPTY_PATH (it takes
// CAP_DAC_READ_SEARCH): the file is linked by its /proc name from then on.
var noEmptyPath atomic.Bool

// linkIn links the unnamed file f into directory fd as name.
func linkIn(f, fd int, name string) error {
	tried := !noEmptyPath.Load()
	if tried {
		err := unix.Linkat(f, "", fd, name, unix.AT_EMPTY_PATH)
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EPERM) {
			return err
		}
	}
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(f), fd, name, unix.AT_SYMLINK_FOLLOW)
	if err == nil && tried {
		noEmptyPath.Store(true)
	}
	return err
}

// flush is what a write flushes to disk: nothing, the file (its directory
// flushed later, with others), or the file and its directory.
type flush uint8

const (
	noFlush flush = iota
	flushFile
	flushAll
)

func flushOf(sync bool) flush {
	if sync {
		return flushAll
	}
	return noFlush
}

// replaceAt writes a temporary file beside name in directory fd and
// renames it over name (a symbolic link there is replaced, not followed).
func (t Tree) replaceAt(fd int, path string, data []byte, perm fs.FileMode, sync flush) error {
	tmp, err := t.tempAt(fd, path, data, perm, sync != noFlush)
	if err != nil {
		return err
	}
	if err := unix.Renameat(fd, tmp, fd, filepath.Base(path)); err != nil {
		unix.Unlinkat(fd, tmp, 0)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if sync == flushAll {
		return syncFD(fd, path)
	}
	return nil
}

// tempAt writes data to a new temporary file beside path's name in
// directory fd and returns its name.
func (t Tree) tempAt(fd int, path string, data []byte, perm fs.FileMode, sync bool) (string, error) {
	base := filepath.Base(path)
	for range 100 {
		tmp := "." + base + ".tmp" + strconv.FormatUint(rand.Uint64()%1e10, 10)
		f, err := unix.Openat(fd, tmp, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("writing %s: %w", path, err)
		}
		err = t.fill(f, data, perm, sync)
		if cerr := unix.Close(f); err == nil {
			err = cerr
		}
		if err != nil {
			unix.Unlinkat(fd, tmp, 0)
			return "", fmt.Errorf("writing %s: %w", path, err)
		}
		return tmp, nil
	}
	return "", fmt.Errorf("writing %s: no free temporary name", path)
}

// fill gives a new file f its mode (the create mode is subject to umask),
// owner and content: the system calls themselves, an *os.File costing
// more than they do for a small file.
func (t Tree) fill(f int, data []byte, perm fs.FileMode, sync bool) error {
	if err := ignoringEINTR(func() error { return unix.Fchmod(f, uint32(perm)) }); err != nil {
		return err
	}
	if t.owned() {
		if err := ignoringEINTR(func() error { return unix.Fchown(f, t.uid, t.gid) }); err != nil {
			return err
		}
	}
	for len(data) > 0 {
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = unix.Write(f, data)
			return err
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		data = data[n:]
	}
	if sync {
		flushes.Add(1)
		return ignoringEINTR(func() error { return unix.Fsync(f) })
	}
	return nil
}

// flushes counts the fsyncs of files and directories this process asked
// for.
var flushes atomic.Int64

// Flushes is how many fsyncs of files and directories the package made
// (tests: what a write leaves to the page cache).
func Flushes() int64 { return flushes.Load() }

func syncFD(fd int, path string) error {
	flushes.Add(1)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("syncing the directory of %s: %w", path, err)
	}
	return nil
}

// MkdirAll makes dir and what is missing above it (perm), then makes dir
// itself exactly perm (a looser mode found is tightened) and, for an
// owned Tree, owned by the Tree's owner.
func (t Tree) MkdirAll(dir string, perm fs.FileMode) error {
	fd, err := t.openDir(dir, perm, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return t.secure(fd, dir, perm)
}

// secure gives directory fd (at dir) exactly perm, and the tree's owner.
func (t Tree) secure(fd int, dir string, perm fs.FileMode) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("securing %s: %w", dir, err)
	}
	if fs.FileMode(st.Mode)&fs.ModePerm != perm {
		if err := unix.Fchmod(fd, uint32(perm)); err != nil {
			return fmt.Errorf("securing %s: %w", dir, err)
		}
	}
	if t.owned() && (int(st.Uid) != t.uid || int(st.Gid) != t.gid) {
		if err := unix.Fchown(fd, t.uid, t.gid); err != nil {
			return fmt.Errorf("securing %s: %w", dir, err)
		}
	}
	return nil
}

// Settled tells, from one lstat and no open, whether MkdirAll (exact) or
// Tighten (not exact) would leave dir as it is: a directory of mode perm
// (no looser than perm, when not exact) and the tree's owner, or, for
// Tighten, a missing one. The components above dir are not looked at:
// call it for a directory whose parents below the root were settled
// first (a symbolic link among them is then found at its own turn).
func (t Tree) Settled(dir string, perm fs.FileMode, exact bool) bool {
	var st unix.Stat_t
	if err := unix.Fstatat(unix.AT_FDCWD, dir, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return !exact && errors.Is(err, unix.ENOENT)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	have := fs.FileMode(st.Mode) & fs.ModePerm
	if !exact {
		return have&^perm == 0
	}
	return have == perm && (!t.owned() || int(st.Uid) == t.uid && int(st.Gid) == t.gid)
}

// Tighten makes an existing directory dir no looser than perm (bits
// perm lacks are taken away); a missing one is left missing.
func (t Tree) Tighten(dir string, perm fs.FileMode) error {
	fd, err := t.openDir(dir, 0, false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("securing %s: %w", dir, err)
	}
	if have := fs.FileMode(st.Mode) & fs.ModePerm; have&^perm != 0 {
		if err := unix.Fchmod(fd, uint32(have&perm)); err != nil {
			return fmt.Errorf("securing %s: %w", dir, err)
		}
	}
	return nil
}

// Remove removes the file or empty directory path (a symbolic link there
// is removed itself); a missing one is no error.
func (t Tree) Remove(path string) error { return t.removeWith(path, removeAt) }

func removeAt(fd int, name string) error {
	err := unix.Unlinkat(fd, name, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		err = unix.Unlinkat(fd, name, unix.AT_REMOVEDIR)
	}
	return err
}

// RemoveAll removes path and everything below it, never following a
// symbolic link (one found is removed itself); a missing one is no error.
func (t Tree) RemoveAll(path string) error { return t.removeWith(path, removeAllAt) }

// removeWith removes path with remove, in its directory opened below the
// root; a missing one is no error.
func (t Tree) removeWith(path string, remove func(fd int, name string) error) error {
	fd, err := t.openDir(filepath.Dir(path), 0, false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := remove(fd, filepath.Base(path)); err != nil && !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "remove", Path: path, Err: err}
	}
	return nil
}

func removeAllAt(parent int, name string) error {
	err := unix.Unlinkat(parent, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return err
	}
	fd, oerr := openDirAt(parent, name)
	if oerr != nil {
		return err // not a directory we may enter: the unlink's answer
	}
	dir := os.NewFile(uintptr(fd), name)
	names, rerr := dir.Readdirnames(-1)
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil && !errors.Is(err, unix.ENOENT) {
			dir.Close()
			return err
		}
	}
	dir.Close()
	if rerr != nil {
		return rerr
	}
	return unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
}

// RemoveTemps removes temporary files that a crash between writing and
// renaming left in dir.
func (t Tree) RemoveTemps(dir string) {
	fd, err := t.openDir(dir, 0, false)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	removeTempsIn(fd, dir)
}

// removeTempsIn removes the temporary files a crash left in directory fd
// (at path dir).
func removeTempsIn(fd int, dir string) {
	// a descriptor of its own to list: the list reads move its offset
	lfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	d := os.NewFile(uintptr(lfd), dir)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return
	}
	for _, name := range names {
		if isTemp(name) {
			unix.Unlinkat(fd, name, 0) // a directory of that name stays
		}
	}
}

// Dir is a directory below a Tree's root held open for a batch of reads
// and writes of the files in it: the directory is walked (and made) once,
// not once per file. Its methods take file names, never paths; they may
// be called from several goroutines.
type Dir struct {
	t    Tree
	fd   int
	path string
	// later: flushed writes leave the directory to Sync; dirty: one did
	later, dirty bool
}

// OpenDir opens dir for a batch, making it (perm) and what is missing on
// the way as a write does. The caller closes it.
func (t Tree) OpenDir(dir string, perm fs.FileMode) (*Dir, error) {
	fd, err := t.openDir(dir, perm, true)
	if err != nil {
		return nil, err
	}
	return &Dir{t: t, fd: fd, path: dir}, nil
}

// Close closes the directory.
func (d *Dir) Close() error { return unix.Close(d.fd) }

// RemoveTemps removes the temporary files that a crash between writing
// and renaming left in the directory.
func (d *Dir) RemoveTemps() { removeTempsIn(d.fd, d.path) }

// Secure gives the directory exactly perm, and the tree's owner, as
// MkdirAll does.
func (d *Dir) Secure(perm fs.FileMode) error { return d.t.secure(d.fd, d.path, perm) }

// SyncLater makes the directory's flushed writes (sync) flush each file
// before it is linked in, and leave the directory to Sync: a batch of
// files that cannot be made again flushes their directory once.
func (d *Dir) SyncLater() { d.later = true }

// Sync flushes the directory to disk, when a flushed write since SyncLater
// or the last Sync changed it.
func (d *Dir) Sync() error {
	if !d.dirty {
		return nil
	}
	d.dirty = false
	return syncFD(d.fd, filepath.Join(d.path, "."))
}

// flush is how a write with sync flushes in this directory.
func (d *Dir) flush(sync bool) flush {
	if sync && d.later {
		d.dirty = true
		return flushFile
	}
	return flushOf(sync)
}

// ReadInto is the package's ReadInto of the file name in the directory.
func (d *Dir) ReadInto(name string, buf *bytes.Buffer) (fs.FileMode, error) {
	f, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &fs.PathError{Op: "open", Path: filepath.Join(d.path, name), Err: err}
	}
	file := os.NewFile(uintptr(f), name)
	defer file.Close()
	var st unix.Stat_t
	if err := unix.Fstat(f, &st); err != nil {
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, fmt.Errorf("%s is not a regular file", filepath.Join(d.path, name))
	}
	buf.Grow(int(st.Size))
	if _, err := buf.ReadFrom(file); err != nil {
		return 0, err
	}
	return fs.FileMode(st.Mode) & fs.ModePerm, nil
}

// WriteFile is the Tree's WriteFile of the file name in the directory.
func (d *Dir) WriteFile(name string, data []byte, perm fs.FileMode, sync bool) (bool, error) {
	path := filepath.Join(d.path, name)
	old, err := readAt(d.fd, name)
	switch {
	case err == nil && old.perm == perm && bytes.Equal(old.data, data) && (!d.t.owned() || old.uid == d.t.uid && old.gid == d.t.gid):
		return false, nil
	case errors.Is(err, unix.ENOENT):
		return true, d.t.createAt(d.fd, path, data, perm, d.flush(sync), nil)
	}
	return true, d.t.replaceAt(d.fd, path, data, perm, d.flush(sync))
}

// Stat is the lstat of the file name in the directory.
func (d *Dir) Stat(name string, st *unix.Stat_t) error {
	if err := unix.Fstatat(d.fd, name, st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "stat", Path: filepath.Join(d.path, name), Err: err}
	}
	return nil
}

// Remove removes the file name from the directory; a missing one is no
// error.
func (d *Dir) Remove(name string) error {
	if err := removeAt(d.fd, name); err != nil && !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "remove", Path: filepath.Join(d.path, name), Err: err}
	}
	return nil
}

// Create is the Tree's Create of the file name in the directory.
func (d *Dir) Create(name string, data []byte, perm fs.FileMode, sync bool) error {
	return d.t.createAt(d.fd, filepath.Join(d.path, name), data, perm, d.flush(sync), nil)
}

// CreateStat is Create without a flush, storing the stat of the file it
// made in st (taken from the file itself, not looked up by name again).
func (d *Dir) CreateStat(name string, data []byte, perm fs.FileMode, st *unix.Stat_t) error {
	return d.t.createAt(d.fd, filepath.Join(d.path, name), data, perm, noFlush, st)
}

// Replace is the Tree's Replace of the file name in the directory.
func (d *Dir) Replace(name string, data []byte, perm fs.FileMode, sync bool) error {
	return d.t.replaceAt(d.fd, filepath.Join(d.path, name), data, perm, d.flush(sync))
}
