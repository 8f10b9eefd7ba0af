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
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Standin builds the stand-in router (internal/standin, a static binary)
// once per test process and returns its path.
func Standin(t testing.TB) string { return command(t, "standin") }

// command builds internal/<name> (a static binary) once per test process
// and returns its path.
func command(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if path, ok := built[name]; ok {
		return path
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("building internal/%s: %v", name, err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", path, "./internal/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building internal/%s: %v: %s", name, err, out)
	}
	built[name] = path
	return path
}

// StandinRootfs returns a tar archive of a root file system holding only
// /standin: imported as an image (docker import, podman import) with
// ENTRYPOINT ["/standin"], it stands in for the router image, which cannot
// be pulled on these machines.
func StandinRootfs(t testing.TB) []byte { return rootfs(t, "standin") }

// rootfs is a tar archive of a root file system holding only the static
// binary internal/<name> as /<name>, and /tmp.
func rootfs(t testing.TB, name string) []byte {
	t.Helper()
	bin, err := os.ReadFile(command(t, name))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(bin)
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
