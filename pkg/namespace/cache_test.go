package namespace

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// listener is a resource file's content; port tells versions apart.
func listener(name, port string) string {
	return "apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: " + name +
		"\nspec:\n  routingKey: k\n  host: 127.0.0.1\n  port: " + port + "\n"
}

// portsOf returns "file=port" of every Listener read, sorted.
func portsOf(t *testing.T, files []File) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		for _, d := range f.Docs {
			raw := strings.TrimSpace(string(d.Raw))
			out = append(out, filepath.Base(f.Path)+"="+raw[len(raw)-5:])
		}
	}
	slices.Sort(out)
	return out
}

// TestFileCache: a pass told what changed reads only that; a pass told
// nothing trusts the cache, except for files changed too recently for
// their times to tell, and symbolic links; a changed directory, or not
// knowing, lists and looks at everything.
func TestFileCache(t *testing.T) {
	// the window decides whether a file changed "just now": an hour, or
	// nothing, so that no step depends on how fast the test runs
	cache := &FileCache{}
	justNow := func() { cache.Window = time.Hour }
	settled := func() { cache.Window = -1 }
	justNow()
	home := t.TempDir()
	d, _ := Open(home, "ns")
	res := d.InputResources()
	write := func(name, port string) {
		t.Helper()
		tmp := filepath.Join(res, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(listener("l-"+name[:1], port)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(res, name)); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(res, 0o755)
	write("a.yaml", "10001")
	write("b.yaml", "10002")
	read := func(changed []string, want ...string) {
		t.Helper()
		files, err := d.ReadFilesCached(0, cache, changed)
		if err != nil {
			t.Fatal(err)
		}
		if got := portsOf(t, files); !slices.Equal(got, want) {
			t.Fatalf("changed %q: read %v, want %v", changed, got, want)
		}
	}
	read(nil, "a.yaml=10001", "b.yaml=10002")
	if len(cache.files) != 0 {
		t.Fatalf("files changed just now were kept: %d", len(cache.files))
	}
	settled()
	read([]string{}, "a.yaml=10001", "b.yaml=10002") // read again: not trusted before
	if len(cache.files) != 2 {
		t.Fatalf("cache holds %d files, want 2", len(cache.files))
	}

	// told nothing changed, it trusts what it read: proof that it reads
	// nothing it was not told of
	write("a.yaml", "20001")
	read([]string{}, "a.yaml=10001", "b.yaml=10002")
	read([]string{"input/resources/a.yaml"}, "a.yaml=20001", "b.yaml=10002")
	// not knowing what changed, it looks at every file's stat
	write("b.yaml", "20002")
	read(nil, "a.yaml=20001", "b.yaml=20002")

	// a file changed within the window is read by every pass until it
	// is older, whatever it is told
	justNow()
	write("b.yaml", "30002")
	read([]string{"input/resources/b.yaml"}, "a.yaml=20001", "b.yaml=30002")
	if _, ok := cache.files["input/resources/b.yaml"]; ok {
		t.Fatal("a file changed just now was kept")
	}
	settled()

	// new and removed files come from the changes, not a listing
	write("c.yaml", "10003")
	os.Remove(filepath.Join(res, "a.yaml"))
	read([]string{"input/resources/c.yaml", "input/resources/a.yaml", "input/resources/.c.yaml.tmp", "input/certs/x/tls.crt"},
		"b.yaml=30002", "c.yaml=10003")
	if !slices.Equal(cache.listed, []string{"input/resources/b.yaml", "input/resources/c.yaml"}) {
		t.Fatalf("listing %v", cache.listed)
	}

	// a directory: everything is listed again
	os.MkdirAll(filepath.Join(res, "sub"), 0o755)
	os.WriteFile(filepath.Join(res, "sub", "d.yaml"), []byte(listener("l-d", "10004")), 0o644)
	read([]string{"input/resources/sub"}, "b.yaml=30002", "c.yaml=10003", "d.yaml=10004")
	os.RemoveAll(filepath.Join(res, "sub"))
	read([]string{"input/resources"}, "b.yaml=30002", "c.yaml=10003")

	// a symbolic link's target can change with no event where the link
	// is: links are looked at every time
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "e.yaml"), []byte(listener("l-e", "10005")), 0o644)
	os.Symlink(filepath.Join(other, "e.yaml"), filepath.Join(res, "e.yaml"))
	read([]string{"input/resources/e.yaml"}, "b.yaml=30002", "c.yaml=10003", "e.yaml=10005")
	tmp := filepath.Join(other, ".e.tmp")
	os.WriteFile(tmp, []byte(listener("l-e", "20005")), 0o644)
	os.Rename(tmp, filepath.Join(other, "e.yaml"))
	read([]string{}, "b.yaml=30002", "c.yaml=10003", "e.yaml=20005")
}

// TestReadChanged: the changed files alone are read, new, changed and
// gone, and the listing follows them (a later full read agrees); what it
// cannot stand for is refused: no listing yet, a symbolic link among the
// files, a change that is no resource file or a directory.
func TestReadChanged(t *testing.T) {
	d := Dir{Name: "ns", Path: t.TempDir()}
	res := d.InputResources()
	os.MkdirAll(res, 0o755)
	write := func(name, port string) {
		if err := os.WriteFile(filepath.Join(res, name), []byte(listener(name, port)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "09001")
	write("b.yaml", "09002")
	cache := &FileCache{Window: -1}
	if _, ok := d.ReadChanged(0, cache, []string{"input/resources/a.yaml"}); ok {
		t.Error("taken before the cache held a listing")
	}
	if _, err := d.ReadFilesCached(0, cache, nil); err != nil {
		t.Fatal(err)
	}
	write("a.yaml", "09011")
	write("c.yaml", "09003")
	os.Remove(filepath.Join(res, "b.yaml"))
	got, ok := d.ReadChanged(0, cache, []string{"input/resources/a.yaml", "input/resources/b.yaml", "input/resources/c.yaml"})
	if !ok {
		t.Fatal("refused")
	}
	if len(got) != 3 || got["input/resources/b.yaml"] != nil || got["input/resources/a.yaml"] == nil || got["input/resources/c.yaml"] == nil {
		t.Fatalf("read %v", got)
	}
	if p := portsOf(t, []File{*got["input/resources/a.yaml"], *got["input/resources/c.yaml"]}); !slices.Equal(p, []string{"a.yaml=09011", "c.yaml=09003"}) {
		t.Errorf("read %v", p)
	}
	// a pass told nothing changed since reads what ReadChanged left
	files, err := d.ReadFilesCached(0, cache, []string{})
	if err != nil {
		t.Fatal(err)
	}
	if p := portsOf(t, files); !slices.Equal(p, []string{"a.yaml=09011", "c.yaml=09003"}) {
		t.Errorf("then a pass reads %v", p)
	}
	for _, refused := range [][]string{
		{"input/certs/x/tls.crt"},
		{"input/resources"},
		{},
	} {
		if _, ok := d.ReadChanged(0, cache, refused); ok {
			t.Errorf("took %v", refused)
		}
	}
	os.Mkdir(filepath.Join(res, "sub"), 0o755)
	if _, ok := d.ReadChanged(0, cache, []string{"input/resources/sub"}); ok {
		t.Error("took a new directory")
	}
	os.Symlink(filepath.Join(res, "a.yaml"), filepath.Join(res, "link.yaml"))
	if _, err := d.ReadFilesCached(0, cache, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.ReadChanged(0, cache, []string{"input/resources/a.yaml"}); ok {
		t.Error("took a change among symbolic links")
	}
	os.Remove(filepath.Join(res, "link.yaml"))
	if _, err := d.ReadFilesCached(0, cache, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.ReadChanged(0, cache, []string{"input/resources/a.yaml"}); !ok {
		t.Error("the link went, and changes are still refused")
	}
}
