// Package hosttest makes simulated hosts on this machine, for tests of
// sites on separate hosts: each host is a network namespace with its own
// address on a shared bridge (which lives in a "switch" namespace of its
// own, never on this machine's interfaces), its own data home, its own
// systemd user manager and its own `site-controller run --platform linux`,
// both running inside the host's namespace, so every router a host's
// controller starts (a skupper-<ns>.service unit of that manager) runs
// there too and reaches the other hosts only across the bridge.
//
// Faults are what networks and hosts do: nft rules in a host's namespace
// (drop both ways, drop one way, reset), processes killed (the router, the
// controller, every process of a host), and a slow, narrow path (latency
// and a rate) through a userspace relay.
//
// Everything a Network makes (namespaces, veth pairs, the bridge, cgroups,
// processes, directories) is removed when the test ends, on a signal
// (Main), and, should a run be killed outright, by the next run: names
// carry the owning process's id, and a namespace whose owner is gone is
// removed with everything in it.
package hosttest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/routertest"
)

// Prefix starts the name of everything the harness makes: namespaces and
// cgroups are named Prefix<pid>n<k>-<host>.
const Prefix = "scht"

// Subnet is the simulated hosts' network: host k (from 0) has Subnet.<k+1>.
const Subnet = "10.253.0"

var (
	seq      atomic.Int64
	liveMu   sync.Mutex
	liveNets = map[*Network]bool{}
)

// Network is a switch and the simulated hosts on it.
type Network struct {
	t      testing.TB
	id     string
	Switch string // the switch's namespace, holding the bridge br0
	Bin    string // the site-controller binary the hosts run
	Router string // skrouterd

	mu       sync.Mutex
	hosts    []*Host
	cleanups []func()
	down     bool
}

// New makes a switch (a network namespace holding a bridge) for simulated
// hosts, torn down with everything on it when the test ends. It skips the
// test, in one line, where network namespaces cannot be made (not root);
// a missing systemd, nft or router fails it when the real-router tests may
// not skip.
func New(t testing.TB) *Network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("simulated hosts need network namespaces, which need root: skipping")
	}
	for _, tool := range []string{"ip", "nft", "nsenter", "unshare", "systemd", "systemctl"} {
		if _, err := lookPath(tool); err != nil {
			routertest.Missing(t, tool+" not found (scripts/with-engines.sh installs iproute2, nftables, util-linux and systemd)")
		}
	}
	router := routertest.Binary(t)
	RemoveStale(t)
	n := &Network{t: t, id: fmt.Sprintf("%s%dn%d", Prefix, os.Getpid(), seq.Add(1)), Bin: Binary(t), Router: router}
	n.Switch = n.id + "-sw"
	liveMu.Lock()
	liveNets[n] = true
	liveMu.Unlock()
	t.Cleanup(n.Close)
	if _, err := command("ip", "netns", "add", n.Switch); err != nil {
		t.Skipf("cannot make a network namespace here (%v): skipping", err)
	}
	n.onClose(func() { command("ip", "netns", "del", n.Switch) })
	for _, args := range [][]string{
		{"-n", n.Switch, "link", "set", "lo", "up"},
		{"-n", n.Switch, "link", "add", "br0", "type", "bridge"},
		{"-n", n.Switch, "link", "set", "br0", "up"},
	} {
		if _, err := command("ip", args...); err != nil {
			t.Fatalf("making the switch: %v", err)
		}
	}
	return n
}

// onClose registers a step of the teardown; steps run in reverse order.
func (n *Network) onClose(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cleanups = append(n.cleanups, f)
}

// Close tears down every host (its processes, cgroups, namespace and
// directory) and the switch. It is safe to call more than once.
func (n *Network) Close() {
	n.mu.Lock()
	if n.down {
		n.mu.Unlock()
		return
	}
	n.down = true
	hosts := n.hosts
	steps := n.cleanups
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() { defer wg.Done(); h.teardown() }()
	}
	wg.Wait()
	for i := len(steps) - 1; i >= 0; i-- {
		steps[i]()
	}
	liveMu.Lock()
	delete(liveNets, n)
	liveMu.Unlock()
}

// closeAll tears down every network of this process (on a signal).
func closeAll() {
	liveMu.Lock()
	nets := make([]*Network, 0, len(liveNets))
	for n := range liveNets {
		nets = append(nets, n)
	}
	liveMu.Unlock()
	for _, n := range nets {
		n.Close()
	}
}

// staleName is a namespace or cgroup name the harness made: its owner's
// process id.
var staleName = regexp.MustCompile(`^` + Prefix + `(\d+)n\d+-[a-z0-9]+$`)

// RemoveStale removes what runs killed outright (SIGKILL, a test binary's
// timeout) left: namespaces and cgroups named by the harness whose owning
// process is gone, with every process in them.
func RemoveStale(t testing.TB) {
	t.Helper()
	out, err := command("ip", "netns", "list")
	if err != nil {
		return
	}
	stale := func(name string) bool {
		m := staleName.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, _ := strconv.Atoi(m[1])
		return pid != os.Getpid() && !alive(pid)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !stale(f[0]) {
			continue
		}
		pids, _ := command("ip", "netns", "pids", f[0])
		for _, p := range strings.Fields(pids) {
			if pid, err := strconv.Atoi(p); err == nil {
				kill(pid)
			}
		}
		command("ip", "netns", "del", f[0])
		t.Logf("removed network namespace %s, left by an earlier run", f[0])
	}
	for _, root := range cgroupRoots() {
		dirs, _ := os.ReadDir(root)
		for _, d := range dirs {
			if d.IsDir() && stale(d.Name()) {
				killCgroup(filepath.Join(root, d.Name()))
				removeCgroup(filepath.Join(root, d.Name()))
			}
		}
	}
	// the hosts' directories (<id>-<host>-*) and built binaries (<pid>-bin-*)
	tmp, _ := os.ReadDir(os.TempDir())
	for _, d := range tmp {
		m := staleDir.FindStringSubmatch(d.Name())
		if m == nil || !d.IsDir() {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); pid != os.Getpid() && !alive(pid) {
			os.RemoveAll(filepath.Join(os.TempDir(), d.Name()))
		}
	}
}

// staleDir is a temporary directory the harness made: its owner's process
// id.
var staleDir = regexp.MustCompile(`^` + Prefix + `(\d+)(n\d+-[a-z0-9]+|-bin)-\d+$`)

// alive tells whether a process exists.
func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// kill sends SIGKILL to a process the harness started.
func kill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

// cgroupRoots are the mount points of the cgroup hierarchies systemd
// uses: the cgroup2 one (unified, or the only one) and the legacy
// name=systemd one, where present.
func cgroupRoots() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superoptions
		pre, post, ok := strings.Cut(s.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		if qf[0] == "cgroup2" || (qf[0] == "cgroup" && strings.Contains(qf[2], "name=systemd")) {
			out = append(out, pf[4])
		}
	}
	return out
}

// killCgroup kills every process in a cgroup and its children: at once
// through cgroup.kill where the kernel has it, else one by one until none
// is left.
func killCgroup(dir string) {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err == nil {
		waitEmpty(dir)
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pids := cgroupPids(dir)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			kill(pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEmpty waits (a bounded time) until no process is left in a cgroup.
func waitEmpty(dir string) {
	deadline := time.Now().Add(10 * time.Second)
	for len(cgroupPids(dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// cgroupPids lists the processes in a cgroup and its children.
func cgroupPids(dir string) []int {
	var out []int
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

// removeCgroup removes a cgroup and its children, deepest first (a cgroup
// is removed with rmdir once it holds no process).
func removeCgroup(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		for try := 0; try < 50; try++ {
			if err := os.Remove(dirs[i]); err == nil || os.IsNotExist(err) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
