package fileio

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadInput(t *testing.T) {
	const data = "sixteen bytes..."
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		want string // the error; "" reads "data" (16 bytes)
		is   error
	}{
		{"regular file", func(t *testing.T, p string) { os.WriteFile(p, []byte(data), 0o644) }, "", nil},
		{"symlink to a regular file", func(t *testing.T, p string) {
			os.WriteFile(p+".real", []byte(data), 0o644)
			os.Symlink(filepath.Base(p)+".real", p)
		}, "", nil},
		{"missing", func(t *testing.T, p string) {}, "", fs.ErrNotExist},
		{"named pipe", func(t *testing.T, p string) { syscall.Mkfifo(p, 0o644) }, "not a regular file (a named pipe)", nil},
		{"symlink to a named pipe", func(t *testing.T, p string) {
			syscall.Mkfifo(p+".fifo", 0o644)
			os.Symlink(p+".fifo", p)
		}, "not a regular file (a named pipe)", nil},
		{"directory", func(t *testing.T, p string) { os.Mkdir(p, 0o755) }, "not a regular file (a directory)", nil},
		{"device", func(t *testing.T, p string) { os.Symlink("/dev/zero", p) }, "not a regular file (a device)", nil},
		{"too large", func(t *testing.T, p string) { os.WriteFile(p, []byte(strings.Repeat("x", 17)), 0o644) }, "too large: 17 bytes, more than the 16 allowed", nil},
		// a file of /proc says it holds 0 bytes and holds more: as a file
		// that grew since it was looked at
		{"grew past the cap", func(t *testing.T, p string) { os.Symlink("/proc/self/status", p) }, "too large: more than the 16 bytes allowed", nil},
		{"symlink loop", func(t *testing.T, p string) { os.Symlink(filepath.Base(p), p) }, "cannot read: a loop of symbolic links", nil},
		{"unreadable", func(t *testing.T, p string) {
			if os.Geteuid() == 0 {
				t.Skip("root reads every file")
			}
			os.WriteFile(p, []byte(data), 0)
		}, "cannot read: permission denied", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			tc.make(t, path)
			start := time.Now()
			got, err := ReadInput(path, 16)
			if took := time.Since(start); took > time.Second {
				t.Errorf("took %v", took)
			}
			switch {
			case tc.is != nil:
				if !errors.Is(err, tc.is) {
					t.Errorf("error %v, want one that is %v", err, tc.is)
				}
			case tc.want != "":
				if err == nil || err.Error() != tc.want {
					t.Errorf("error %v, want %q", err, tc.want)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case string(got) != data:
				t.Errorf("read %q", got)
			}
		})
	}
}

// TestReadGrown: a file that holds more than it said when looked at is
// read whole, the buffer grown as the reads fill it.
func TestReadGrown(t *testing.T) {
	want, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	got, err := ReadInput("/proc/self/status", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// the process's own status moves between reads: compare its shape
	if !strings.HasPrefix(string(got), "Name:") || strings.Count(string(got), "\n") != strings.Count(string(want), "\n") {
		t.Errorf("read %d bytes (%d lines), want %d lines", len(got), strings.Count(string(got), "\n"), strings.Count(string(want), "\n"))
	}
}
