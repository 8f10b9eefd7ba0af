package daemon

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/runtimetest"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestRouterConfined: a router cannot make the daemon write outside its
// directories. Inside the container (the real router image, under Docker
// and Podman) nothing the controller wrote can be changed and nothing can
// be planted beside it: the binds are read-only, so is the root; the
// router's process runs as RouterUID with no capability and no new
// privileges. A symbolic link planted in runtime/certs all the same (from
// the host: an older router's, or anyone's with write access) is refused
// by the next pass, which says so in the Site status, and nothing outside
// the namespace directory changes; once it is gone the site recovers.
func TestRouterConfined(t *testing.T) {
	for _, platform := range []string{"docker", "podman"} {
		t.Run(platform, func(t *testing.T) { testRouterConfined(t, platform) })
	}
}

func testRouterConfined(t *testing.T, platform string) {
	var cli []string
	switch platform {
	case "docker":
		cli = []string{"docker", "-H", enginetest.DockerEndpoint(t)}
	case "podman":
		cli = []string{"podman", "--url", enginetest.PodmanEndpoint(t)}
	}
	l := startLiveSite(t, platform)
	name := runtime.ContainerName(l.ns)
	exec1 := func(script string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, cli[0], append(cli[1:], "exec", name, "sh", "-c", script)...).CombinedOutput()
		return string(out), err
	}

	// what the router could try from inside
	for _, try := range []string{
		"ln -s / /etc/skupper-router/runtime/certs/evil",
		"ln -sfn /etc /etc/skupper-router/runtime/certs/skupper-local-server",
		"echo x > /etc/skupper-router/config/skrouterd.json",
		"touch /usr/bin/evil",
	} {
		if out, err := exec1(try); err == nil || !strings.Contains(out, "Read-only file system") {
			t.Errorf("%q from inside the router: %v %s (want: read-only file system)", try, err, out)
		}
	}
	if out, err := exec1("echo ok > /tmp/scratch && cat /tmp/scratch"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("the router's /tmp is not writable: %v %s", err, out)
	}
	if _, err := os.Lstat(filepath.Join(fixture.NSDir(l.home, l.ns), "runtime", "certs", "evil")); err == nil {
		t.Error("a link planted from inside the router is in runtime/certs")
	}
	p := runtimetest.ProcStatus(t, l.pid())
	if p["CapEff"] != "0000000000000000" || p["CapBnd"] != "0000000000000000" || p["NoNewPrivs"] != "1" ||
		!strings.HasPrefix(p["Uid"], "10000\t") {
		t.Errorf("the router's process: Uid %s CapEff %s CapBnd %s NoNewPrivs %s", p["Uid"], p["CapEff"], p["CapBnd"], p["NoNewPrivs"])
	}

	// a link planted from the host is refused, and nothing outside changes
	outside := t.TempDir()
	os.Chmod(outside, 0o755)
	fixture.WriteFile(t, filepath.Join(outside, "ca.crt"), "not a CA")
	port := routertest.FreePort(t)
	cred := filepath.Join(fixture.NSDir(l.home, l.ns), "runtime", "certs", "skupper-local-server")
	saved := cred + ".saved"
	if err := os.Rename(cred, saved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, cred); err != nil {
		t.Fatal(err)
	}
	fixture.WriteFile(t, filepath.Join(l.res, "l.yaml"), fixture.ListenerYAML("l", port))
	fixture.Eventually(t, "Site status saying the link is refused", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "Site", "s")
		return s != nil && s.Status == status.Error && strings.Contains(s.Message, "skupper-local-server is a symbolic link, which is not followed")
	})
	if data, _ := os.ReadFile(filepath.Join(outside, "ca.crt")); string(data) != "not a CA" {
		t.Errorf("outside ca.crt now holds %q", data)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("outside now holds %v", entries)
	}
	if st, _ := os.Stat(outside); st.Mode().Perm() != 0o755 {
		t.Errorf("outside's mode changed to %v", st.Mode().Perm())
	}
	// gone again: the site recovers
	os.Remove(cred)
	os.Rename(saved, cred)
	fixture.WriteFile(t, filepath.Join(l.res, "l.yaml"), fixture.ListenerYAML("l", port)+"# again\n")
	fixture.Eventually(t, "Site ready again", fixture.SiteReady(l.home, l.ns, "s"))

	// a Listener below 1024: the router is made again with the one
	// capability it needs (on Docker as root, which alone gets an added
	// capability there), and serves it
	low := lowPort(t)
	echo := routertest.EchoServer(t, nil)
	fixture.WriteFile(t, filepath.Join(l.res, "low.yaml"), fixture.ListenerYAML("low", low)+"---\n"+fixture.ConnectorYAML("low-back", "low", echo))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, low, nil); err != nil {
		t.Fatalf("through the Listener on port %d: %v", low, err)
	}
	p = runtimetest.ProcStatus(t, l.pid())
	if p["CapBnd"] != "0000000000000400" || p["NoNewPrivs"] != "1" {
		t.Errorf("the router binding port %d: Uid %s CapEff %s CapBnd %s (want only NET_BIND_SERVICE, 0x400) NoNewPrivs %s", low, p["Uid"], p["CapEff"], p["CapBnd"], p["NoNewPrivs"])
	}
}

// lowPort is a port below 1024 free on 127.0.0.1 (held by nothing now).
func lowPort(t *testing.T) int {
	t.Helper()
	for port := 1023; port > 900; port-- {
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port below 1024")
	return 0
}
