package hosttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/site-controller/site-controller/pkg/runtime"
)

// Host is a simulated host: a network namespace with an address on the
// switch, a data home, a systemd user manager and a site-controller, the
// last two running in the namespace (and so every router the manager
// starts for the controller).
type Host struct {
	net    *Network
	Name   string // a, b, c: part of its namespace's name
	NS     string // its network namespace
	Addr   string // its address on the switch
	Dir    string // everything of the host: data home, manager's directories, logs
	Home   string // the controller's data home
	RunDir string // XDG_RUNTIME_DIR of its manager (the session bus lives here)
	Config string // XDG_CONFIG_HOME of its manager (its user units)

	// Args are added to the controller's command line (say, --grant-server).
	Args []string

	bare    bool     // a namespace on the switch only: no manager, no controller
	cgroups []string // the host's cgroup in each hierarchy systemd uses

	mu         sync.Mutex
	manager    *proc
	controller *proc
}

// proc is a process the harness started and waits for.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop signals the process and waits up to grace for it to end, then
// kills it.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	if p == nil || !p.running() {
		return
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// start runs cmd with its output appended to the log file at logPath.
func start(cmd *exec.Cmd, logPath string) (*proc, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log %s: %w", logPath, err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	// a backstop: should the test process die, so does what it started
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); log.Close(); close(p.done) }()
	return p, nil
}

// AddHost makes host name (lowercase letters and digits) on the switch at
// the next address, with its own systemd user manager and, started with
// args added to its command line, its own site-controller.
func (n *Network) AddHost(name string, args ...string) *Host {
	n.t.Helper()
	h := n.addNamespace(name, false)
	h.Args = args
	if err := h.Boot(); err != nil {
		n.t.Fatalf("host %s: %v", name, err)
	}
	return h
}

// AddRelay makes a bare host on the switch: a network namespace with an
// address and nothing running in it (a SlowPath runs its relay there).
func (n *Network) AddRelay(name string) *Host {
	n.t.Helper()
	return n.addNamespace(name, true)
}

func (n *Network) addNamespace(name string, bare bool) *Host {
	t := n.t
	t.Helper()
	n.mu.Lock()
	idx := len(n.hosts)
	n.mu.Unlock()
	h := &Host{net: n, Name: name, NS: n.id + "-" + name, Addr: fmt.Sprintf("%s.%d", Subnet, idx+1), bare: bare}
	dir, err := os.MkdirTemp("", n.id+"-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	h.Dir, h.Home, h.RunDir, h.Config = dir, filepath.Join(dir, "home"), filepath.Join(dir, "run"), filepath.Join(dir, "config")
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	if _, err := command("ip", "netns", "add", h.NS); err != nil {
		t.Fatalf("host %s: %v", name, err)
	}
	// the host's end of its cable is eth0; the switch's, v-<name> on br0
	port := "v-" + name
	for _, args := range [][]string{
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"-n", n.Switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"-n", n.Switch, "link", "set", port, "master", "br0"},
		{"-n", n.Switch, "link", "set", port, "up"},
		{"-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
		{"-n", h.NS, "link", "set", "eth0", "up"},
	} {
		if _, err := command("ip", args...); err != nil {
			t.Fatalf("host %s: %v", name, err)
		}
	}
	if bare {
		return h
	}
	for _, d := range []string{h.Home, h.Config} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, root := range cgroupRoots() {
		cg := filepath.Join(root, h.NS)
		if err := os.Mkdir(cg, 0o755); err != nil {
			t.Fatalf("host %s: making its cgroup: %v", name, err)
		}
		h.cgroups = append(h.cgroups, cg)
	}
	if len(h.cgroups) == 0 {
		t.Fatalf("host %s: no cgroup hierarchy for its systemd manager (no cgroup2 or name=systemd mount)", name)
	}
	return h
}

// teardown ends everything of the host and removes it: the controller
// (SIGTERM, as systemd would stop it), the manager (which stops its
// units), whatever is left in its cgroup or namespace, then the cgroup,
// the namespace and its directory.
func (h *Host) teardown() {
	h.mu.Lock()
	ctl, mgr := h.controller, h.manager
	h.mu.Unlock()
	ctl.stop(syscall.SIGTERM, 10*time.Second)
	mgr.stop(syscall.SIGTERM, 10*time.Second)
	for _, cg := range h.cgroups {
		killCgroup(cg)
	}
	if out, err := command("ip", "netns", "pids", h.NS); err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil {
				kill(pid)
			}
		}
	}
	for _, cg := range h.cgroups {
		removeCgroup(cg)
	}
	command("ip", "netns", "del", h.NS)
	if h.Dir != "" {
		os.RemoveAll(h.Dir)
	}
}

// env is the environment of the host's manager, controller and systemctl:
// its own runtime and configuration directories and session bus, nothing
// of the test's (whose bus is another manager's).
func (h *Host) env() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + h.Dir,
		"LANG=C.UTF-8",
		"XDG_RUNTIME_DIR=" + h.RunDir,
		"XDG_CONFIG_HOME=" + h.Config,
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(h.RunDir, "bus"),
	}
}

// managerScript runs in the host's namespace, in a mount namespace of its
// own: it moves itself into the host's cgroups (so the manager's units
// are the host's, and none of another manager's), makes the marker
// systemd --user needs to run as a real manager (/run/systemd/system) on
// a tmpfs only this mount namespace sees, and becomes the manager.
const managerScript = `set -e
for cg in "$@"; do echo $$ > "$cg/cgroup.procs"; done
mkdir -p /run/systemd
mount -t tmpfs -o mode=0755 hosttest /run/systemd
mkdir /run/systemd/system
exec systemd --user
`

// Boot starts the host as a machine boots: a fresh runtime directory, its
// systemd user manager (which starts the units enabled before, the routers
// included), then its controller.
func (h *Host) Boot() error {
	if err := h.StartManager(); err != nil {
		return err
	}
	return h.StartController()
}

// StartManager starts the host's systemd user manager and waits until it
// and its session bus answer.
func (h *Host) StartManager() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.manager != nil && h.manager.running() {
		return errors.New("its manager runs already")
	}
	// a boot starts with an empty runtime directory, as /run/user is
	if err := os.RemoveAll(h.RunDir); err != nil {
		return fmt.Errorf("emptying the runtime directory: %w", err)
	}
	if err := os.Mkdir(h.RunDir, 0o700); err != nil {
		return fmt.Errorf("making the runtime directory: %w", err)
	}
	args := append([]string{"--net=" + netnsPath(h.NS), "--", "unshare", "--mount", "--propagation", "private", "--",
		"/bin/sh", "-c", managerScript, "sh"}, h.cgroups...)
	cmd := exec.Command("nsenter", args...)
	cmd.Env = h.env()
	p, err := start(cmd, filepath.Join(h.Dir, "systemd.log"))
	if err != nil {
		return fmt.Errorf("its systemd manager: %w", err)
	}
	h.manager = p
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := commandContext(ctx, h.env(), "", "systemctl", "--user", "show-environment")
		_, berr := os.Stat(filepath.Join(h.RunDir, "bus"))
		if err == nil && berr == nil {
			return nil
		}
		if !p.running() {
			return fmt.Errorf("its systemd manager exited: %s", tail(filepath.Join(h.Dir, "systemd.log"), 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("its systemd manager did not come up: %v %v: %s", err, berr, tail(filepath.Join(h.Dir, "systemd.log"), 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartController starts `site-controller run --platform linux
// --systemd-scope user` in the host's namespace on its data home, with
// the host's Args.
func (h *Host) StartController() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.controller != nil && h.controller.running() {
		return errors.New("its controller runs already")
	}
	args := append([]string{"--net=" + netnsPath(h.NS), "--", h.net.Bin, "run", "--data-home", h.Home, "--platform", "linux",
		"--systemd-scope", "user", "--router-binary", h.net.Router}, h.Args...)
	cmd := exec.Command("nsenter", args...)
	cmd.Env = h.env()
	p, err := start(cmd, filepath.Join(h.Dir, "controller.log"))
	if err != nil {
		return fmt.Errorf("its controller: %w", err)
	}
	h.controller = p
	return nil
}

// StopController stops the controller as systemd would (SIGTERM) and
// waits for it to end; routers keep running.
func (h *Host) StopController() {
	h.mu.Lock()
	p := h.controller
	h.mu.Unlock()
	p.stop(syscall.SIGTERM, 10*time.Second)
}

// KillController kills the controller (SIGKILL) and waits for it to end.
func (h *Host) KillController() {
	h.mu.Lock()
	p := h.controller
	h.mu.Unlock()
	p.stop(syscall.SIGKILL, 10*time.Second)
}

// ControllerRunning tells whether the controller runs.
func (h *Host) ControllerRunning() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.controller != nil && h.controller.running()
}

// Crash ends every process of the host at once (SIGKILL): the controller,
// the manager and everything in the host's cgroups (routers, the bus).
// Its sockets close with them, as a host's do when its processes are
// killed (a host that loses power says nothing: Reboot blocks its network
// first).
func (h *Host) Crash() {
	h.KillController()
	h.mu.Lock()
	p := h.manager
	h.mu.Unlock()
	p.stop(syscall.SIGKILL, 10*time.Second)
	for _, cg := range h.cgroups {
		killCgroup(cg)
	}
	// the next boot's manager makes its cgroups anew
	for _, cg := range h.cgroups {
		entries, _ := os.ReadDir(cg)
		for _, e := range entries {
			if e.IsDir() {
				removeCgroup(filepath.Join(cg, e.Name()))
			}
		}
	}
}

// Systemctl runs systemctl --user against the host's manager.
func (h *Host) Systemctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return commandContext(ctx, h.env(), "", "systemctl", append([]string{"--user"}, args...)...)
}

// Router is the state of a namespace's router unit: its main process and
// how often systemd restarted it.
type Router struct {
	PID      int
	Restarts int
	Active   string
}

// Router reads the state of namespace ns's router unit.
func (h *Host) Router(ns string) (Router, error) {
	out, err := h.Systemctl("show", "-p", "MainPID", "-p", "NRestarts", "-p", "ActiveState", runtime.UnitName(ns))
	if err != nil {
		return Router{}, err
	}
	var r Router
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "MainPID":
			r.PID, _ = strconv.Atoi(v)
		case "NRestarts":
			r.Restarts, _ = strconv.Atoi(v)
		case "ActiveState":
			r.Active = v
		}
	}
	return r, nil
}

// KillRouter kills namespace ns's router (SIGKILL), as a crash would; its
// unit restarts it. It returns the process killed.
func (h *Host) KillRouter(ns string) (int, error) {
	r, err := h.Router(ns)
	if err != nil {
		return 0, err
	}
	if r.PID == 0 {
		return 0, fmt.Errorf("the router of %s does not run (%s)", ns, r.Active)
	}
	if err := syscall.Kill(r.PID, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("killing the router of %s (%d): %w", ns, r.PID, err)
	}
	return r.PID, nil
}

// Listen listens on addr (IP literal and port) in the host's namespace.
func (h *Host) Listen(addr string) (net.Listener, error) {
	return listenIn(netnsPath(h.NS), addr)
}

// Dial connects to addr (IP literal and port) from the host's namespace.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return dialIn(ctx, netnsPath(h.NS), addr)
}

// Nft loads nft commands (nft -f syntax) into the host's namespace.
func (h *Host) Nft(rules string) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err := commandContext(ctx, nil, rules, "ip", "netns", "exec", h.NS, "nft", "-f", "-")
	return err
}

// Log is the tail of the host's controller log.
func (h *Host) Log(lines int) string { return tail(filepath.Join(h.Dir, "controller.log"), lines) }

// tail is the last lines of a file.
func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// lookPath finds a tool on PATH or in the sbin directories, where root's
// tools live.
func lookPath(tool string) (string, error) {
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, tool)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", tool)
}

// Sysctl sets a network sysctl of the host's namespace (net.ipv4.*: each
// network namespace has its own), as an administrator of that host would.
func (h *Host) Sysctl(key, value string) error {
	if !strings.HasPrefix(key, "net.") {
		return fmt.Errorf("host %s: %s is not a network namespace's sysctl", h.Name, key)
	}
	if _, err := command("ip", "netns", "exec", h.NS, "sysctl", "-q", "-w", key+"="+value); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	return nil
}
