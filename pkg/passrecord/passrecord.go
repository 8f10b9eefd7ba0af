// Package passrecord lets a one-shot pass (the render command) stand for
// the pass before it when nothing that pass depended on has changed since:
// a record of every entry of the namespace directory as stat saw it after
// the pass, of what else the pass depended on (the binary, its options,
// the host's names: a context), until when the clock alone leaves its
// outcome as it was, and of what the pass had to say (its problems).
//
// A pass is recorded only when its outcome follows from its files alone
// (the caller decides: no containers selected, no tokens redeemed, …) and
// when none of the entries changed within Window before the pass began:
// file systems stamp times from a clock that moves in steps, and a change
// within the same step as the one before can leave the same stat. Hence a
// pass that wrote something is not recorded; the pass after it, finding
// nothing to do, is. As make and ninja do, a changed stat means a changed
// file; the same stat, the same file.
package passrecord

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
)

// Window is how long before a pass its entries must have last changed
// for the pass to be recorded (as the namespace's file cache's).
var Window = 2 * time.Second

// Key is what the record holds of one entry: of a file, what its stat
// says of its content and access; of a directory, its access only (its
// entries are listed themselves); of an extra path that is not there, the
// zero Key.
type Key struct {
	namespace.StatKey
	Uid, Gid uint32
}

// Entry is one path (relative to the namespace directory, "." for
// itself; an extra path as given) and its Key.
type Entry struct {
	Path string
	Key  Key
}

// Record is a recorded pass.
type Record struct {
	// Context is a digest of what the pass depended on besides its
	// files (see Digest)
	Context string
	// Until is when the clock alone may change the pass's outcome (zero:
	// never)
	Until time.Time
	// Problems are the pass's problems, as it reported them
	Problems []resources.Problem
	Entries  []Entry
}

// Digest is the context of a pass: what it depended on besides its files
// (the binary, its version and options, the host's names), one string
// each.
func Digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// keyOf is the Key of a stat.
func keyOf(st *unix.Stat_t) Key {
	k := Key{StatKey: namespace.StatKeyOf(st), Uid: st.Uid, Gid: st.Gid}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		k.Size, k.Mtime, k.Ctime = 0, 0, 0
	}
	return k
}

// Snapshot stats every entry below root (root itself as "."), leaving out
// the relative paths skip names, and the extra paths (absolute, followed
// if they are symbolic links; one that is not there has the zero Key); it
// returns them sorted by path, and false when the tree cannot be recorded:
// a symbolic link or something else than a file or a directory below
// root (what it points to can change with no trace here), a directory
// that cannot be listed, or a name a record cannot hold.
func Snapshot(root string, skip func(rel string) bool, extra []string) ([]Entry, bool) {
	var out []Entry
	var walk func(fd int, rel string) bool
	walk = func(fd int, rel string) bool {
		f := os.NewFile(uintptr(fd), rel)
		defer f.Close()
		names, err := f.Readdirnames(-1)
		if err != nil {
			return false
		}
		// the stats on a few goroutines: a namespace's resources are
		// thousands of files in one directory
		sts := make([]unix.Stat_t, len(names))
		errs := make([]error, len(names))
		fileio.ForEach(len(names), func(i int) {
			errs[i] = unix.Fstatat(fd, names[i], &sts[i], unix.AT_SYMLINK_NOFOLLOW)
		})
		for i, name := range names {
			p := name
			if rel != "." {
				p = rel + "/" + name
			}
			if skip != nil && skip(p) {
				continue
			}
			if strings.ContainsAny(p, "\t\n") {
				return false
			}
			if err := errs[i]; err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue // gone since it was listed: the pass after it will see
				}
				return false
			}
			st := &sts[i]
			out = append(out, Entry{Path: p, Key: keyOf(st)})
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFREG:
			case unix.S_IFDIR:
				sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil || !walk(sub, p) {
					return false
				}
			default:
				return false
			}
		}
		return true
	}
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, false
	}
	out = append(out, Entry{Path: ".", Key: keyOf(&st)})
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil || !walk(fd, ".") {
		return nil, false
	}
	for _, p := range extra {
		if !filepath.IsAbs(p) || strings.ContainsAny(p, "\t\n") {
			return nil, false
		}
		e := Entry{Path: p}
		if err := unix.Stat(p, &st); err == nil {
			e.Key = keyOf(&st)
		} else if !errors.Is(err, unix.ENOENT) {
			return nil, false
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out, true
}

// Settled tells whether no entry changed at or after since: a pass that
// began at since+Window saw them as they are.
func Settled(entries []Entry, since time.Time) bool {
	at := since.UnixNano()
	for _, e := range entries {
		if e.Key.Mtime >= at || e.Key.Ctime >= at {
			return false
		}
	}
	return true
}

// Holds tells whether r may stand for a pass at now in context: same
// context, before Until (its entries are to be compared too: Same).
func (r *Record) Holds(context string, now time.Time) bool {
	return r != nil && r.Context == context && (r.Until.IsZero() || now.Before(r.Until))
}

// Same tells whether entries are the record's: the same paths with the
// same keys.
func (r *Record) Same(entries []Entry) bool { return slices.Equal(r.Entries, entries) }

const header = "site-controller pass record 1\n"

// Encode writes r in its file's format: a header, the context, Until,
// the problems (JSON, one line), then one line per entry.
func (r *Record) Encode() ([]byte, error) {
	probs, err := json.Marshal(r.Problems)
	if err != nil {
		return nil, fmt.Errorf("encoding the pass's problems: %w", err)
	}
	var b bytes.Buffer
	b.Grow(len(header) + len(probs) + 128 + 96*len(r.Entries))
	b.WriteString(header)
	var until int64
	if !r.Until.IsZero() {
		until = r.Until.UnixNano()
	}
	fmt.Fprintf(&b, "%s\n%d\n%s\n", r.Context, until, probs)
	num := make([]byte, 0, 24)
	for _, e := range r.Entries {
		b.WriteString(e.Path)
		for _, v := range []int64{e.Key.Dev, e.Key.Ino, e.Key.Size, e.Key.Mtime, e.Key.Ctime, int64(e.Key.Mode), int64(e.Key.Uid), int64(e.Key.Gid)} {
			b.WriteByte('\t')
			b.Write(strconv.AppendInt(num[:0], v, 10))
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// Decode reads a record written by Encode.
func Decode(data []byte) (*Record, error) {
	rest, ok := bytes.CutPrefix(data, []byte(header))
	if !ok {
		return nil, errors.New("not a pass record")
	}
	line := func() ([]byte, bool) {
		l, after, ok := bytes.Cut(rest, []byte("\n"))
		rest = after
		return l, ok
	}
	ctx, ok1 := line()
	until, ok2 := line()
	probs, ok3 := line()
	if !ok1 || !ok2 || !ok3 {
		return nil, errors.New("pass record cut short")
	}
	r := &Record{Context: string(ctx)}
	n, err := strconv.ParseInt(string(until), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("pass record: until: %w", err)
	}
	if n != 0 {
		r.Until = time.Unix(0, n)
	}
	if err := json.Unmarshal(probs, &r.Problems); err != nil {
		return nil, fmt.Errorf("pass record: problems: %w", err)
	}
	r.Entries = make([]Entry, 0, bytes.Count(rest, []byte("\n")))
	for len(rest) > 0 {
		l, ok := line()
		if !ok {
			return nil, errors.New("pass record cut short")
		}
		f := bytes.Split(l, []byte("\t"))
		if len(f) != 9 {
			return nil, fmt.Errorf("pass record: %d fields in an entry, want 9", len(f))
		}
		var v [8]int64
		for i := range v {
			if v[i], err = strconv.ParseInt(string(f[i+1]), 10, 64); err != nil {
				return nil, fmt.Errorf("pass record: %w", err)
			}
		}
		r.Entries = append(r.Entries, Entry{Path: string(f[0]), Key: Key{
			StatKey: namespace.StatKey{Dev: v[0], Ino: v[1], Size: v[2], Mtime: v[3], Ctime: v[4], Mode: uint32(v[5])},
			Uid:     uint32(v[6]), Gid: uint32(v[7])}})
	}
	return r, nil
}

// Load reads the record at path; nil when there is none or it cannot be
// read (a pass then runs, and records itself again).
func Load(path string) *Record {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	r, err := Decode(data)
	if err != nil {
		return nil
	}
	return r
}

// Save writes r to path (0600, in a 0700 directory), atomically; it can
// be made again, so it is not flushed.
func Save(path string, r *Record) error {
	data, err := r.Encode()
	if err != nil {
		return err
	}
	if _, err := fileio.WriteFile(path, data, 0o600, 0o700, false); err != nil {
		return fmt.Errorf("writing the pass record: %w", err)
	}
	return nil
}

// Remove removes the record at path, if there is one.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the pass record: %w", err)
	}
	return nil
}
