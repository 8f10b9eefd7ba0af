package status

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDigest: a new process (a new Memo) compares the status files the
// digest knows by their stat, without reading them, and keeps their
// transition times; a file changed behind its back is read and repaired; a
// digest whose sum does not match what a pass would write makes it write
// the file again; a resource gone leaves the digest with its file.
func TestDigest(t *testing.T) {
	dir := namespaceDir(t)
	clock := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	w := Writer{Dir: dir, Now: func() time.Time { return clock }}
	entries := func(names ...string) []Entry {
		var out []Entry
		for _, n := range names {
			out = append(out, Entry{Kind: "Listener", Name: n,
				Raw:    []byte("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: " + n + "\n"),
				Status: Status{Status: Ready, Message: "OK", Conditions: []Condition{{Type: Configured, Status: "True", Reason: "Ready"}}}})
		}
		return out
	}
	file := func(n string) string { return filepath.Join(dir.RuntimeResources(), FileName("Listener", n)) }
	pass := func(es []Entry) ([]string, int64) {
		t.Helper()
		w.Memo = &Memo{} // a new process
		before := reads.Load()
		changed, err := w.Write(es)
		if err != nil {
			t.Fatal(err)
		}
		return changed, reads.Load() - before
	}
	if changed, _ := pass(entries("a", "b", "c")); len(changed) != 3 {
		t.Fatalf("first pass changed %v", changed)
	}
	if _, err := os.Stat(filepath.Join(dir.Internal(), digestFile)); err != nil {
		t.Fatalf("no digest: %v", err)
	}
	first, _ := os.ReadFile(file("a"))
	clock = clock.Add(time.Hour) // a condition written anew would say so
	changed, read := pass(entries("a", "b", "c"))
	if len(changed) != 0 || read != 0 {
		t.Errorf("unchanged, a new process changed %v and read %d files", changed, read)
	}
	if again, _ := os.ReadFile(file("a")); string(again) != string(first) {
		t.Errorf("a's file moved:\n%s\nwas\n%s", again, first)
	}
	// b changed behind its back: read, and written back
	if err := os.WriteFile(file("b"), []byte("status: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, read = pass(entries("a", "b", "c"))
	if !slices.Equal(changed, []string{"runtime/resources/Listener-b.yaml"}) || read != 1 {
		t.Errorf("b edited: changed %v, read %d files", changed, read)
	}
	// a digest whose sum is not what a pass writes: the file is written
	digest := filepath.Join(dir.Internal(), digestFile)
	data, _ := os.ReadFile(digest)
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 7 && f[0] == "Listener-c.yaml" {
			f[7] = strings.Repeat("0", 32) // the sum
			l = strings.Join(f, " ")
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(digest, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, read = pass(entries("a", "b", "c"))
	if !slices.Equal(changed, []string{"runtime/resources/Listener-c.yaml"}) || read != 0 {
		t.Errorf("c's sum wrong: changed %v, read %d files", changed, read)
	}
	if got, _ := os.ReadFile(file("c")); !Complete(got) || !strings.Contains(string(got), "name: c") {
		t.Errorf("c written:\n%s", got)
	}
	// c goes: its file and its line
	changed, _ = pass(entries("a", "b"))
	if !slices.Equal(changed, []string{"runtime/resources/Listener-c.yaml"}) {
		t.Errorf("c gone: changed %v", changed)
	}
	if data, _ := os.ReadFile(digest); strings.Contains(string(data), "Listener-c.yaml") {
		t.Errorf("the digest still has c:\n%s", data)
	}
	if st, _ := os.Stat(digest); st.Mode().Perm() != 0o600 {
		t.Errorf("digest mode %v", st.Mode().Perm())
	}
}

// TestWriteOneThenGone: a status written alone (a failed pass's Site
// status) is removed by the next Write that has no entry for it, the memo
// of the passes kept (CI's TestChurn found one left behind when the Site
// went with the next pass).
func TestWriteOneThenGone(t *testing.T) {
	dir := namespaceDir(t)
	w := Writer{Dir: dir, Now: time.Now, Memo: &Memo{}}
	entry := func(kind, name string) Entry {
		return Entry{Kind: kind, Name: name,
			Raw:    []byte("apiVersion: skupper.io/v2alpha1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"),
			Status: Status{Status: Ready, Message: "OK"}}
	}
	if _, err := w.Write([]Entry{entry("Site", "s"), entry("Listener", "l")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]Entry{entry("Listener", "l")}); err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(dir.RuntimeResources(), FileName("Site", "s"))
	if err := w.WriteOne(Entry{Kind: "Site", Name: "s", Raw: entry("Site", "s").Raw, Status: Status{Status: Error, Message: "reconcile failed"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(site); err != nil {
		t.Fatalf("WriteOne wrote nothing: %v", err)
	}
	changed, err := w.Write([]Entry{entry("Listener", "l")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(site); !os.IsNotExist(err) {
		t.Errorf("the Site's status written alone outlived the Site (changed %v): %v", changed, err)
	}
	if !slices.Equal(changed, []string{"runtime/resources/Site-s.yaml"}) {
		t.Errorf("changed %v", changed)
	}
}

// TestMemoOfADirectoryRemoved: the passes' memo does not stand for the
// files of a directory removed behind its back (the namespace's runtime/
// removed, the namespace directory kept): the next Write writes them all
// again (CI's TestChurn found a status missing for good).
func TestMemoOfADirectoryRemoved(t *testing.T) {
	dir := namespaceDir(t)
	w := Writer{Dir: dir, Now: time.Now, Memo: &Memo{}}
	entries := []Entry{{Kind: "Listener", Name: "l", Raw: []byte("kind: Listener\nmetadata:\n  name: l\n"), Status: Status{Status: Ready, Message: "OK"}}}
	for range 2 {
		if _, err := w.Write(entries); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(dir.Runtime()); err != nil {
		t.Fatal(err)
	}
	entries[0].Known = true // as a pass that changed nothing gives it
	changed, err := w.Write(entries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir.RuntimeResources(), "Listener-l.yaml")); err != nil || len(changed) != 1 {
		t.Errorf("the status file of a directory removed was not written again (changed %v): %v", changed, err)
	}
}

// TestWriteIntoANewDirectory: a Write that makes the status directory
// reads nothing back (there is nothing), yet knows what it wrote: the next
// Write removes a file no entry stands for, and a new process's Write
// (its memo from the digest) finds every file as written.
func TestWriteIntoANewDirectory(t *testing.T) {
	dir := namespaceDir(t)
	entry := func(name string) Entry {
		return Entry{Kind: "Listener", Name: name, Raw: []byte("kind: Listener\nmetadata:\n  name: " + name + "\n"),
			Status: Status{Status: Ready, Message: "OK", Conditions: []Condition{{Type: ReadyCond, Status: "True", Reason: "Ready"}}}}
	}
	w := Writer{Dir: dir, Now: time.Now, Memo: &Memo{}}
	before := reads.Load()
	changed, err := w.Write([]Entry{entry("a"), entry("b")})
	if err != nil {
		t.Fatal(err)
	}
	if n := reads.Load() - before; n != 0 || len(changed) != 2 {
		t.Errorf("a new directory: %d files read back, changed %v", n, changed)
	}
	changed, err = w.Write([]Entry{entry("a")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []string{"runtime/resources/Listener-b.yaml"}) {
		t.Errorf("the next Write changed %v, want the status of b removed", changed)
	}
	if _, err := os.Stat(filepath.Join(dir.RuntimeResources(), "Listener-b.yaml")); !os.IsNotExist(err) {
		t.Errorf("the status of b outlived it: %v", err)
	}
	fresh := Writer{Dir: dir, Now: time.Now, Memo: &Memo{}}
	before = reads.Load()
	if changed, err := fresh.Write([]Entry{entry("a")}); err != nil || len(changed) != 0 || reads.Load() != before {
		t.Errorf("a new process: changed %v, %d read back: %v", changed, reads.Load()-before, err)
	}
}
