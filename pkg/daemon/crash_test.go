package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/status"
)

const helperEnv = "SITE_CONTROLLER_TEST_DAEMON"

// TestMain lets the crash test run the daemon in a child process: the
// test binary re-executed with helperEnv set to a data home runs the
// daemon there, prints its HTTP address, and stops on SIGTERM.
func TestMain(m *testing.M) {
	if home := os.Getenv(helperEnv); home != "" {
		os.Exit(runHelperDaemon(home))
	}
	os.Exit(m.Run())
}

func runHelperDaemon(home string) int {
	d, err := New(Options{Options: controller.Options{DataHome: home}, Rescan: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go http.Serve(l, d.Handler())
	fmt.Println(l.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type helper struct {
	cmd  *exec.Cmd
	addr string
}

func startHelper(t *testing.T, home string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+home)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("daemon process: %v", err)
	}
	return &helper{cmd: cmd, addr: strings.TrimSpace(line)}
}

// metric reads one unlabelled metric of the helper.
func (h *helper) metric(name string) (float64, bool) {
	resp, err := http.Get("http://" + h.addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		var v float64
		if strings.HasPrefix(line, name+" ") {
			if _, err := fmt.Sscan(strings.TrimPrefix(line, name+" "), &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

func (h *helper) ready() bool {
	resp, err := http.Get("http://" + h.addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// checkNotTorn fails the test when any file the controller writes under
// runtime/ or internal/ is incomplete.
func checkNotTorn(t *testing.T, home string) int {
	n := 0
	filepath.WalkDir(namespace.Root(home), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(path, "/input/") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil // removed meanwhile
		}
		n++
		switch ext := filepath.Ext(path); {
		case ext == ".json":
			if !json.Valid(data) {
				t.Errorf("torn JSON: %s", path)
			}
		case ext == ".yaml" && filepath.Base(filepath.Dir(path)) == "resources":
			if !status.Complete(data) {
				t.Errorf("torn status: %s", path)
			}
		case ext == ".yaml":
			var v map[string]any
			if err := yaml.Unmarshal(data, &v); err != nil || v == nil {
				t.Errorf("torn YAML: %s: %v", path, err)
			}
		case ext == ".crt" || ext == ".key":
			if b, _ := pem.Decode(data); b == nil {
				t.Errorf("torn PEM: %s", path)
			}
		case d.Name() == "site-id" || d.Name() == "management-port":
			if !strings.HasSuffix(string(data), "\n") {
				t.Errorf("torn %s", path)
			}
		}
		return nil
	})
	return n
}

// TestCrashDuringChurn kills the daemon with SIGKILL at random points while
// files churn, checks after every kill that no file it writes is torn,
// then starts it once more and requires it to converge.
func TestCrashDuringChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: several daemon processes")
	}
	home := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	for round := range 6 {
		h := startHelper(t, home)
		done := make(chan struct{})
		go func() {
			defer close(done)
			churn(t, home, seed+uint64(round), 3, 600, 4)
		}()
		// readers all along: no file may ever be seen half written
		stopReading := make(chan struct{})
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			for {
				select {
				case <-stopReading:
					return
				default:
					checkNotTorn(t, home)
				}
			}
		}()
		time.Sleep(time.Duration(20+r.IntN(400)) * time.Millisecond)
		h.cmd.Process.Signal(syscall.SIGKILL)
		h.cmd.Wait()
		<-done
		close(stopReading)
		<-readerDone
		files := checkNotTorn(t, home)
		t.Logf("round %d: killed; %d files checked", round, files)
	}
	h := startHelper(t, home)
	fixture.Eventually(t, "ready after restart", h.ready)
	quiet := time.Now()
	for time.Since(quiet) < 300*time.Millisecond {
		n, ok := h.metric("site_controller_queue_length")
		r, ok2 := h.metric("site_controller_scheduled_retries")
		if !ok || !ok2 || n > 0 || r > 0 {
			quiet = time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	if err := h.cmd.Wait(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
	checkNotTorn(t, home)
	assertConverged(t, home)
}
