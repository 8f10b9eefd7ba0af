package routertest

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	standinOnce sync.Once
	standinPath string
	standinErr  error
)

// Standin builds the stand-in router (internal/standin, a static binary)
// once per test process and returns its path.
func Standin(t testing.TB) string {
	t.Helper()
	standinOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			standinErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "standin")
		if err != nil {
			standinErr = err
			return
		}
		standinPath = filepath.Join(dir, "standin")
		cmd := exec.Command("go", "build", "-o", standinPath, "./internal/standin")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			standinErr = &buildError{err, string(out)}
		}
	})
	if standinErr != nil {
		t.Fatalf("building the stand-in router: %v", standinErr)
	}
	return standinPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// StandinRootfs returns a tar archive of a root file system holding only
// /standin: imported as an image (docker import, podman import) with
// ENTRYPOINT ["/standin"], it stands in for the router image, which cannot
// be pulled on these machines.
func StandinRootfs(t testing.TB) []byte {
	t.Helper()
	bin, err := os.ReadFile(Standin(t))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "standin", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(bin)
	// the router image has /tmp; the stand-in does not need it, but keep
	// the layout familiar
	tw.WriteHeader(&tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// StandinImage is the name tests give the imported stand-in image.
const StandinImage = "localhost/site-controller-standin:test"

// ReportFile makes every service the test's systemd user manager starts
// from now on append the stand-in's line to a file (there is no journal
// here to keep their output), and returns the file.
func ReportFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report")
	if out, err := exec.Command("systemctl", "--user", "set-environment", "STANDIN_REPORT="+path).CombinedOutput(); err != nil {
		t.Fatalf("systemctl --user set-environment: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("systemctl", "--user", "unset-environment", "STANDIN_REPORT").Run() })
	return path
}
