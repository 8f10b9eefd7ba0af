package status

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/namespace"
)

// The digest is what the passes know of a namespace's status files, kept
// in internal/status-digest: for each file, its stat as last written or
// read, a sum of its content and its conditions' transition times. A new
// process (a restart, `render`) compares a status file by its stat and the
// sum of what it would write instead of reading it; a file whose stat
// differs (anything changed it, or a pass whose digest was not saved) is
// read as before. It is written whole by a full pass that changed it, not
// flushed: lost, the files are read again.
const digestFile = "status-digest"

// digestEntry is one status file in the digest.
type digestEntry struct {
	key namespace.StatKey
	sum [16]byte
	// times are the conditions' lastTransitionTime: "type=status@time"
	// words (a map for each of thousands of files costs memory)
	times string
}

// timesOf reads an entry's times, by "type=status".
func (e digestEntry) timesOf() map[string]string {
	out := map[string]string{}
	for w := range strings.FieldsSeq(e.times) {
		if k, v, ok := strings.Cut(w, "@"); ok {
			out[k] = v
		}
	}
	return out
}

// timesWord is the times of conditions as an entry keeps them.
func timesWord(cs []Condition) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.Type + "=" + c.Status + "@" + c.LastTransitionTime)
	}
	return b.String()
}

func sumOf(data []byte) [16]byte {
	full := sha256.Sum256(data)
	return [16]byte(full[:16])
}

// reads counts the status files read to be compared (tests).
var reads atomic.Int64

// loadDigest reads the digest of the namespace's status files once per
// Memo; nothing when there is none, or it cannot be read.
func (m *Memo) loadDigest(w Writer) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.disk != nil {
		return
	}
	m.disk = map[string]digestEntry{}
	data, err := fileio.ReadInput(filepath.Join(w.Dir.Internal(), digestFile), 64<<20)
	if err != nil {
		return
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasSuffix(f[0], ".yaml") {
			continue
		}
		if kind, name, ok := strings.Cut(strings.TrimSuffix(f[0], ".yaml"), "-"); !ok || !Writable(kind, name) {
			continue
		}
		var n [6]int64
		ok := true
		for i := range n {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			n[i], ok = v, ok && err == nil
		}
		sum, err := hex.DecodeString(f[7])
		if !ok || err != nil || len(sum) != 16 {
			continue
		}
		m.disk[f[0]] = digestEntry{key: namespace.StatKey{Dev: n[0], Ino: n[1], Size: n[2], Mtime: n[3], Ctime: n[4], Mode: uint32(n[5])},
			sum: [16]byte(sum), times: strings.Join(f[8:], " ")}
	}
}

// known returns the digest's entry of file, if any.
func (m *Memo) known(file string) (digestEntry, bool) {
	if m == nil {
		return digestEntry{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.disk[file]
	return e, ok
}

// recorded puts file's entry in the digest (its file is written by the
// next full pass).
func (m *Memo) recorded(file string, e digestEntry) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.disk == nil {
		m.disk = map[string]digestEntry{}
	}
	if old, ok := m.disk[file]; !ok || old.key != e.key || old.sum != e.sum {
		m.disk[file] = e
		m.diskDirty = true
	}
}

// dropped takes file out of the digest.
func (m *Memo) dropped(file string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.disk[file]; ok {
		delete(m.disk, file)
		m.diskDirty = true
	}
}

// saveDigest writes the digest when a pass changed it.
func (m *Memo) saveDigest(w Writer) error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	if !m.diskDirty {
		m.mu.Unlock()
		return nil
	}
	var b bytes.Buffer
	b.WriteString("# the status files as last written or read: name device inode size mtime ctime mode sum type=status@lastTransitionTime...\n")
	for _, file := range slices.Sorted(maps.Keys(m.disk)) {
		e := m.disk[file]
		b.WriteString(file)
		for _, n := range []int64{e.key.Dev, e.key.Ino, e.key.Size, e.key.Mtime, e.key.Ctime, int64(e.key.Mode)} {
			b.WriteByte(' ')
			b.WriteString(strconv.FormatInt(n, 10))
		}
		b.WriteByte(' ')
		b.WriteString(hex.EncodeToString(e.sum[:]))
		if e.times != "" {
			b.WriteString(" " + e.times)
		}
		b.WriteByte('\n')
	}
	m.diskDirty = false
	m.mu.Unlock()
	path := filepath.Join(w.Dir.Internal(), digestFile)
	if err := w.Dir.Files().Replace(path, b.Bytes(), 0o600, 0o700, false); err != nil {
		m.mu.Lock()
		m.diskDirty = true
		m.mu.Unlock()
		os.Remove(path) // a digest not written is never left to say less than is true
		return err
	}
	return nil
}
