package status

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
)

// TestReadCache: a cached read gives what a fresh one does after files
// are written, replaced and removed; an unchanged file is not parsed
// again.
func TestReadCache(t *testing.T) {
	dir, err := namespace.Open(t.TempDir(), "ns")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir.Input(), 0o755)
	w := Writer{Dir: dir, Now: time.Now}
	entry := func(name, st, msg string) Entry {
		return Entry{Kind: "Listener", Name: name, Raw: []byte("kind: Listener\n"), Status: Status{Status: st, Message: msg}}
	}
	var c ReadCache
	check := func(when string) []Resource {
		t.Helper()
		got, err := c.ReadResources(dir)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ReadResources(dir)
		if len(got) != len(want) {
			t.Fatalf("%s: cached %d resources, fresh %d", when, len(got), len(want))
		}
		for i := range got {
			if got[i].Name != want[i].Name || !got[i].Status.equal(&want[i].Status) {
				t.Errorf("%s: cached %+v, fresh %+v", when, got[i], want[i])
			}
		}
		return got
	}
	w.Write([]Entry{entry("a", Ready, "OK"), entry("b", Pending, "waiting")})
	check("first read")
	// an unchanged file is taken from the cache: planted content (same
	// inode, size and time) is not read
	path := filepath.Join(dir.RuntimeResources(), "Listener-a.yaml")
	fi, _ := os.Stat(path)
	data, _ := os.ReadFile(path)
	planted := []byte(string(data[:len(data)-len(Trailer)-4]) + "!!!\n" + Trailer)
	os.WriteFile(path, planted, 0o644) // in place: the same inode
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	if got, _ := c.ReadResources(dir); got[0].Error != "" {
		t.Errorf("an unchanged file was parsed again: %+v", got[0])
	}
	if fresh, _ := ReadResources(dir); fresh[0].Error == "" {
		t.Errorf("the planted content parses: the check above proves nothing")
	}
	os.WriteFile(path, data, 0o644)
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	w.Write([]Entry{entry("a", Error, "broken now"), entry("c", Ready, "OK")})
	got := check("after b removed, a replaced, c added")
	if len(got) != 2 || got[0].Status.Message != "broken now" || got[1].Name != "c" {
		t.Errorf("after changes: %+v", got)
	}
	if len(c.files) != 2 {
		t.Errorf("the cache holds %d files, want 2", len(c.files))
	}
}
