package lastgood

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
)

const good = "apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: %s\nspec:\n  routingKey: k\n  host: 127.0.0.1\n  port: 9000\n"

func listener(name string) string { return strings.ReplaceAll(good, "%s", name) }

// ns is a namespace directory with resource files, read as a pass reads
// them.
type ns struct {
	t   *testing.T
	dir namespace.Dir
}

func newNS(t *testing.T) ns {
	dir := namespace.Dir{Name: "ns", Path: t.TempDir()}
	os.MkdirAll(dir.Join("input", "resources"), 0o755)
	os.MkdirAll(dir.Internal(), 0o700)
	return ns{t, dir}
}

func (n ns) write(file, data string) {
	if err := os.WriteFile(n.dir.Join("input", "resources", file), []byte(data), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

func (n ns) remove(file string) { os.Remove(n.dir.Join("input", "resources", file)) }

// pass resolves the namespace's files with g (nil: a new process).
func (n ns) pass(g **Files) Input {
	n.t.Helper()
	files, err := n.dir.ReadFiles(0)
	if err != nil {
		n.t.Fatal(err)
	}
	id, err := n.dir.Identity()
	if err != nil {
		n.t.Fatal(err)
	}
	return Resolve(g, n.dir, id, files, time.Now())
}

func (n ns) storeSize() int64 {
	st, err := os.Lstat(n.dir.LastGood())
	if err != nil {
		return -1
	}
	return st.Size()
}

// names lists the Listeners in force, with "!" after one kept from a
// broken file.
func names(in Input) string {
	var out []string
	built := resources.Build("ns", in.Docs, nil)
	for _, d := range in.Docs {
		s := d.Name
		for _, p := range built.ProblemsOf(d) {
			if p.Warning && strings.Contains(p.Message, "stay in force") {
				s += "!"
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func TestStore(t *testing.T) {
	for _, c := range []struct {
		name string
		// steps run in order on one namespace; restart drops what the
		// process kept
		steps func(n ns, g **Files)
		want  string // Listeners in force after the last pass
		// incomplete are files the last pass could not vouch for
		incomplete string
	}{
		{"a broken file keeps its resources across a restart", func(n ns, g **Files) {
			n.write("a.yaml", listener("a"))
			n.write("b.yaml", listener("b"))
			n.pass(g)
			n.write("a.yaml", "kind: [")
			*g = nil
		}, "a!,b", ""},
		{"the last good content is the newest one", func(n ns, g **Files) {
			n.write("a.yaml", listener("a"))
			n.pass(g)
			n.write("a.yaml", listener("a2"))
			n.pass(g)
			*g = nil
			n.write("a.yaml", "")
		}, "a2!", ""},
		{"a removed file's content is forgotten", func(n ns, g **Files) {
			n.write("a.yaml", listener("a"))
			n.write("b.yaml", listener("b"))
			n.pass(g)
			n.remove("a.yaml")
			n.pass(g)
			*g = nil
			n.write("a.yaml", "kind: [")
		}, "b", "input/resources/a.yaml"},
		{"a file removed while no controller ran is forgotten", func(n ns, g **Files) {
			n.write("a.yaml", listener("a"))
			n.pass(g)
			n.remove("a.yaml")
			*g = nil
			n.pass(g)
			*g = nil
			n.write("a.yaml", "kind: [")
		}, "", "input/resources/a.yaml"},
		{"a batch cut short by a crash: the earlier ones serve", func(n ns, g **Files) {
			n.write("a.yaml", listener("a"))
			n.pass(g)
			size := n.storeSize()
			n.write("a.yaml", listener("a2"))
			n.pass(g)
			os.Truncate(n.dir.LastGood(), size+5)
			*g = nil
			n.write("a.yaml", "kind: [")
		}, "a!", ""},
		{"a store removed by hand is written again", func(n ns, g **Files) {
			n.write("a.yaml", listener("a"))
			n.pass(g)
			n.write("a.yaml", "kind: [")
			n.pass(g)
			os.Remove(n.dir.LastGood())
			n.pass(g) // stands on a's content: writes it down again
			*g = nil
		}, "a!", ""},
		{"a store that is not ours is not read", func(n ns, g **Files) {
			n.write("a.yaml", listener("a"))
			os.WriteFile(n.dir.LastGood(), []byte("something else"), 0o600)
			n.pass(g)
			*g = nil
			n.write("a.yaml", "kind: [")
		}, "a!", ""},
		{"the older layout's copies are taken in", func(n ns, g **Files) {
			n.write("a.yaml", "kind: [")
			legacy := filepath.Join(n.dir.Internal(), "last-good")
			os.MkdirAll(legacy, 0o700)
			// <hash of the path>.<hash of the content>, as earlier versions named them
			sum := sha256.Sum256([]byte("input/resources/a.yaml"))
			os.WriteFile(filepath.Join(legacy, hex.EncodeToString(sum[:16])+".0123456789abcdef"), []byte(listener("old")), 0o600)
			n.pass(g)
			if _, err := os.Stat(legacy); err == nil {
				n.t.Error("the older layout's directory is still there")
			}
			*g = nil
		}, "old!", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newNS(t)
			var g *Files
			c.steps(n, &g)
			in := n.pass(&g)
			if got := names(in); got != c.want {
				t.Errorf("in force: %q, want %q", got, c.want)
			}
			if got := strings.Join(in.Incomplete, ","); got != c.incomplete {
				t.Errorf("incomplete: %q, want %q", got, c.incomplete)
			}
			if st, err := os.Lstat(n.dir.LastGood()); err == nil && st.Mode().Perm() != 0o600 {
				t.Errorf("the store's mode is %v", st.Mode().Perm())
			}
		})
	}
}

// TestStoreWrites: a pass that changed nothing writes nothing; one change
// appends one record, whatever the namespace's size; the store never
// grows beyond about twice what it holds (and 64 KiB).
func TestStoreWrites(t *testing.T) {
	n := newNS(t)
	for i := range 30 {
		n.write("l"+string(rune('a'+i%26))+strings.Repeat("x", i/26)+".yaml", listener("l"))
	}
	var g *Files
	n.pass(&g)
	whole := n.storeSize()
	st0, _ := os.Lstat(n.dir.LastGood())
	n.pass(&g)
	if st, _ := os.Lstat(n.dir.LastGood()); !os.SameFile(st0, st) || st.Size() != whole || st.ModTime() != st0.ModTime() {
		t.Errorf("a pass that changed nothing wrote the store")
	}
	n.write("la.yaml", listener("changed"))
	n.pass(&g)
	record := int64(len(appendRecord(nil, opPut, "input/resources/la.yaml", []byte(listener("changed")))))
	if got := n.storeSize() - whole; got != record {
		t.Errorf("one change grew the store by %d bytes, want one record's %d", got, record)
	}
	for i := range 600 {
		n.write("la.yaml", listener("changed"+strings.Repeat("y", i%7)))
		n.pass(&g)
	}
	if size := n.storeSize(); size > 2*g.live+64<<10 {
		t.Errorf("the store is %d bytes holding %d", size, g.live)
	}
	g = nil
	n.write("la.yaml", "kind: [")
	if got, _, _ := strings.Cut(names(n.pass(&g)), ","); got != "changedyyyy!" { // the last of 600: 599%7 = 4
		t.Errorf("after compactions, in force: %q, want the last content's changedyyyy!", got)
	}
}

// TestStoreNeverFollowsLinks: a symbolic link planted where the store is
// is replaced, never written through.
func TestStoreNeverFollowsLinks(t *testing.T) {
	n := newNS(t)
	n.write("a.yaml", listener("a"))
	var g *Files
	n.pass(&g)
	target := filepath.Join(t.TempDir(), "elsewhere")
	os.WriteFile(target, []byte("theirs"), 0o644)
	os.Remove(n.dir.LastGood())
	os.Symlink(target, n.dir.LastGood())
	n.write("a.yaml", listener("a2"))
	n.pass(&g)
	n.write("a.yaml", listener("a3"))
	n.pass(&g)
	if data, _ := os.ReadFile(target); string(data) != "theirs" {
		t.Errorf("the link's target was written: %q", data)
	}
	g = nil
	n.write("a.yaml", "kind: [")
	if got := names(n.pass(&g)); got != "a3!" {
		t.Errorf("in force after a restart: %q, want a3!", got)
	}
}

// TestRecord: files recorded one change at a time (Record) leave the store
// as passes that read everything would: after a restart, a broken file's
// resources are the last recorded content, a removed file's are gone; and
// a store not opened yet is left to Resolve.
func TestRecord(t *testing.T) {
	n := newNS(t)
	n.write("a.yaml", listener("a1"))
	n.write("b.yaml", listener("b1"))
	var g *Files
	n.pass(&g)
	id, _ := n.dir.Identity()
	file := func(name, content string) *namespace.File {
		return &namespace.File{Path: "input/resources/" + name, Data: []byte(content), Sum: sha256.Sum256([]byte(content))}
	}
	n.write("a.yaml", listener("a2"))
	n.remove("b.yaml")
	n.write("c.yaml", listener("c1"))
	if !Record(g, id, n.dir, map[string]*namespace.File{"input/resources/a.yaml": file("a.yaml", listener("a2")),
		"input/resources/b.yaml": nil, "input/resources/c.yaml": file("c.yaml", listener("c1"))}) {
		t.Fatal("Record refused an open store")
	}
	size := n.storeSize()
	if !Record(g, id, n.dir, map[string]*namespace.File{"input/resources/a.yaml": file("a.yaml", listener("a2"))}) || n.storeSize() != size {
		t.Error("recording what the store holds wrote it")
	}
	// a new process: what was recorded stands in for broken files
	n.write("a.yaml", "kind: [")
	n.write("c.yaml", "")
	var fresh *Files
	if got := names(n.pass(&fresh)); got != "a2!,c1!" {
		t.Errorf("after a restart, in force: %q, want a2!,c1! (b gone)", got)
	}
	if Record(nil, id, n.dir, nil) {
		t.Error("Record took a store that was never opened")
	}
}

// TestStoreFlushes: a store made where there was none, of files all good,
// is left to the page cache (a crash before it reaches the disk leaves the
// namespace as it was); one that replaces a store, or stands for a broken
// file, is flushed before it takes the old one's place.
func TestStoreFlushes(t *testing.T) {
	n := newNS(t)
	for _, f := range []string{"a", "b", "c"} {
		n.write(f+".yaml", listener(f))
	}
	flushed := func(what string, pass func(), want bool) {
		t.Helper()
		before := fileio.Flushes()
		pass()
		if got := fileio.Flushes() > before; got != want {
			t.Errorf("%s: flushed %v, want %v", what, got, want)
		}
		if n.storeSize() <= 0 {
			t.Errorf("%s: no store written", what)
		}
	}
	var g *Files
	flushed("the first store", func() { n.pass(&g) }, false)
	n.remove("c.yaml")
	g = nil // a new process: c went while none ran, the store is written whole
	flushed("a store written over another", func() { n.pass(&g) }, true)
	n.write("a.yaml", "kind: [")
	if err := os.Remove(n.dir.LastGood()); err != nil {
		t.Fatal(err)
	}
	flushed("a store a broken file stands on", func() { n.pass(&g) }, true)
	g = nil
	if got := names(n.pass(&g)); got != "a!,b" {
		t.Errorf("in force after a restart: %q, want a kept from its last good content", got)
	}
}
