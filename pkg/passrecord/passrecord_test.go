package passrecord

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
)

func TestEncodeDecode(t *testing.T) {
	for _, r := range []*Record{
		{Context: Digest("a"), Entries: []Entry{{Path: "."}}},
		{Context: Digest("a", "b"), Until: time.Unix(1700000000, 123), Problems: []resources.Problem{{File: "input/resources/x.yaml", Line: 3, ID: "Listener/x", Field: "spec.port", Message: "must be 1–65535"}, {Message: "w", Warning: true}},
			Entries: []Entry{{Path: ".", Key: Key{StatKey: namespace.StatKey{Dev: 1, Ino: 2, Mode: 0o40755}}}, {Path: "input/resources/x y.yaml", Key: Key{StatKey: namespace.StatKey{Dev: 1, Ino: 3, Size: 40, Mtime: 5, Ctime: 6, Mode: 0o100644}, Uid: 10000, Gid: 10000}}}},
	} {
		data, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Until.Equal(r.Until) || got.Context != r.Context || !reflect.DeepEqual(got.Problems, r.Problems) || !slices.Equal(got.Entries, r.Entries) {
			t.Errorf("decoded %+v, want %+v", got, r)
		}
		again, _ := got.Encode()
		if string(again) != string(data) {
			t.Errorf("encoded again:\n%s\nwant\n%s", again, data)
		}
	}
}

func TestDecodeBad(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{"", "not a pass record"},
		{"site-controller pass record 2\n", "not a pass record"},
		{"site-controller pass record 1\nctx\n0\n", "pass record cut short"},
		{"site-controller pass record 1\nctx\nx\nnull\n", `pass record: until: strconv.ParseInt: parsing "x": invalid syntax`},
		{"site-controller pass record 1\nctx\n0\n{\n", "pass record: problems: unexpected end of JSON input"},
		{"site-controller pass record 1\nctx\n0\nnull\n.\t1\t2\n", "pass record: 3 fields in an entry, want 9"},
		{"site-controller pass record 1\nctx\n0\nnull\n.\t1\t2\t3\t4\t5\t6\t7\t8", "pass record cut short"},
	} {
		if _, err := Decode([]byte(tc.data)); err == nil || err.Error() != tc.want {
			t.Errorf("Decode(%q): %v, want %s", tc.data, err, tc.want)
		}
	}
}

func TestSnapshot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "input", "resources"), 0o755)
	os.WriteFile(filepath.Join(root, "input", "resources", "a.yaml"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(root, "record"), []byte("r"), 0o600)
	extra := filepath.Join(root, "..", filepath.Base(root)+"-missing")
	skip := func(rel string) bool { return rel == "record" }
	got, ok := Snapshot(root, skip, []string{extra})
	if !ok {
		t.Fatal("not recordable")
	}
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	want := []string{extra, ".", "input", "input/resources", "input/resources/a.yaml"}
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Errorf("paths %q, want %q", paths, want)
	}
	for _, e := range got {
		switch e.Path {
		case extra:
			if e.Key != (Key{}) {
				t.Errorf("missing extra: %+v", e.Key)
			}
		case "input/resources/a.yaml":
			if e.Key.Size != 1 || e.Key.Mtime == 0 || e.Key.Ino == 0 {
				t.Errorf("file: %+v", e.Key)
			}
		default:
			if e.Key.Mtime != 0 || e.Key.Mode&syscall.S_IFDIR == 0 {
				t.Errorf("directory %s: %+v (a directory's times are not kept)", e.Path, e.Key)
			}
		}
	}
	if !Settled(got, time.Now().Add(time.Minute)) || Settled(got, time.Now().Add(-time.Minute)) {
		t.Errorf("Settled is wrong about files written just now")
	}
	// what the record cannot stand for
	for name, make := range map[string]func(p string) error{
		"symbolic link": func(p string) error { return os.Symlink("a.yaml", p) },
		"named pipe":    func(p string) error { return syscall.Mkfifo(p, 0o644) },
	} {
		p := filepath.Join(root, "input", "resources", "odd")
		if err := make(p); err != nil {
			t.Fatal(err)
		}
		if _, ok := Snapshot(root, skip, nil); ok {
			t.Errorf("%s: recordable", name)
		}
		os.Remove(p)
	}
	if _, ok := Snapshot(root, skip, []string{"relative"}); ok {
		t.Errorf("a relative extra path: recordable")
	}
}
