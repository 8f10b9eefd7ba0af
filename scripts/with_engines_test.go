// Package scripts holds the tests of the project's shell scripts.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWithEnginesStopsWhatItStarted runs scripts/with-engines.sh with a
// podman that refuses to start (after dockerd came up) and CONTAINER_HOST
// and DOCKER_HOST set: the script clears the variables for its engines,
// fails at once naming podman, and stops the dockerd it started (which an
// earlier version left running, holding its data root); started again
// beside a dockerd that holds the data root, it refuses, naming it.
func TestWithEnginesStopsWhatItStarted(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("with-engines.sh needs root")
	}
	for _, tool := range []string{"dockerd", "curl", "pgrep", "newuidmap", "docker-compose", "systemd-analyze", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: the script would install it", tool)
		}
	}
	if _, err := os.Stat("/usr/lib/systemd/user/dbus.socket"); err != nil {
		t.Skip("dbus-user-session not installed: the script would install it")
	}
	bin, root := t.TempDir(), t.TempDir()
	envFile := filepath.Join(t.TempDir(), "podman.env")
	fake := "#!/bin/sh\nenv > " + envFile + "\necho 'podman: refusing to start' >&2\nexit 125\n"
	if err := os.WriteFile(filepath.Join(bin, "podman"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func() (string, error) {
		cmd := exec.Command("./with-engines.sh", "true")
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "SITE_CONTROLLER_DOCKER_ROOT="+root,
			"SITE_CONTROLLER_ROUTER_DIR=/nonexistent", "CONTAINER_HOST=ssh://core@192.0.2.1/run/podman/podman.sock",
			"DOCKER_HOST=tcp://192.0.2.1:2375", "CONTAINER_ENDPOINT=unix:///nonexistent.sock")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	holders := func() string {
		out, _ := exec.Command("pgrep", "-f", "--", "--data-root "+root+"( |$)").Output()
		return strings.TrimSpace(string(out))
	}
	t.Cleanup(func() {
		if pids := holders(); pids != "" {
			t.Errorf("dockerd %s still holds %s", pids, root)
			exec.Command("kill", strings.Fields(pids)...).Run()
		}
	})

	start := time.Now()
	out, err := run()
	if err == nil || !strings.Contains(out, "podman exited before it came up") {
		t.Fatalf("with a podman that does not start: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the failure took %s to notice", d)
	}
	if pids := holders(); pids != "" {
		t.Errorf("dockerd %s left running after the script failed:\n%s", pids, out)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatalf("podman was not started: %v\n%s", err, out)
	}
	for _, v := range []string{"CONTAINER_HOST=", "DOCKER_HOST=", "CONTAINER_ENDPOINT="} {
		if strings.Contains("\n"+string(env), "\n"+v) {
			t.Errorf("podman ran with %s…", v)
		}
	}

	// a dockerd that holds the data root: refused, named
	held := exec.Command("bash", "-c", "exec -a 'dockerd --data-root "+root+" --x' sleep 60")
	if err := held.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { held.Process.Kill(); held.Wait() }()
	time.Sleep(100 * time.Millisecond)
	out, err = run()
	if err == nil || !strings.Contains(out, "still uses "+root) {
		t.Errorf("beside a dockerd holding the data root: %v\n%s", err, out)
	}
}
