// Command coldstart is the daemon's scale harness: it writes a data home
// of N namespaces × M resources, starts `site-controller run` on it as
// systemd would (NOTIFY_SOCKET), and measures the time to READY=1, the
// peak RSS at that moment, the number of inotify instances, and the CPU
// the daemon uses while idle afterwards. Runs repeat; medians are printed.
//
//	go run ./internal/scale/coldstart -bin bin/site-controller
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/site-controller/site-controller/internal/scale"
)

func main() {
	bin := flag.String("bin", "bin/site-controller", "site-controller binary")
	nsCount := flag.Int("namespaces", 100, "namespaces")
	perNS := flag.Int("resources", 100, "resources per namespace (one Site, the rest Listeners and Connectors)")
	runs := flag.Int("runs", 5, "runs")
	idle := flag.Duration("idle", 10*time.Second, "how long to measure idle CPU")
	restart := flag.Bool("restart", false, "measure a restart: each data home is brought up once (unmeasured) first")
	flag.Parse()
	if err := run(*bin, *nsCount, *perNS, *runs, *idle, *restart); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

type result struct {
	ready   time.Duration
	rssKB   int
	inotify int
	idleCPU float64 // fraction of one core
}

func run(bin string, nsCount, perNS, runs int, idle time.Duration, restart bool) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "coldstart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var results []result
	// every data home first, then a pause: on a virtual disk the write-back
	// of 10,000 fresh files slows whatever runs next, and that is not what
	// is being measured
	for r := range runs {
		if err := scale.Namespaces(filepath.Join(work, fmt.Sprintf("home%d", r)), nsCount, perNS); err != nil {
			return err
		}
	}
	syscall.Sync()
	time.Sleep(15 * time.Second)
	for r := range runs {
		home := filepath.Join(work, fmt.Sprintf("home%d", r))
		if restart {
			if _, err := once(bin, home, 0); err != nil {
				return err
			}
		}
		res, err := once(bin, home, idle)
		if err != nil {
			return err
		}
		fmt.Printf("run %d: READY after %v, peak RSS %d MB, %d inotify instance(s), idle CPU %.2f%% of a core\n",
			r, res.ready.Round(time.Millisecond), res.rssKB/1024, res.inotify, res.idleCPU*100)
		results = append(results, res)
	}
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(results))
		for i, r := range results {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	fmt.Printf("median of %d: READY %.0f ms, peak RSS %.0f MB, inotify %.0f, idle CPU %.2f%%\n", len(results),
		med(func(r result) float64 { return float64(r.ready.Milliseconds()) }),
		med(func(r result) float64 { return float64(r.rssKB) / 1024 }),
		med(func(r result) float64 { return float64(r.inotify) }),
		med(func(r result) float64 { return r.idleCPU * 100 }))
	return nil
}

func once(bin, home string, idle time.Duration) (result, error) {
	var res result
	sock := filepath.Join(home, "notify.sock")
	os.Remove(sock) // an earlier run's (a restart is measured on the same home)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return res, err
	}
	defer conn.Close()
	cmd := exec.Command(bin, "run", "--data-home", home, "--platform", "none", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return res, fmt.Errorf("waiting for READY=1: %w", err)
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			break
		}
	}
	res.ready = time.Since(start)
	pid := cmd.Process.Pid
	res.rssKB = procStatusKB(pid, "VmHWM:")
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); l == "anon_inode:inotify" {
			res.inotify++
		}
	}
	if idle <= 0 {
		return res, nil
	}
	time.Sleep(time.Second) // let the first pass's own aftermath settle
	t0 := cpuTicks(pid)
	time.Sleep(idle)
	t1 := cpuTicks(pid)
	res.idleCPU = float64(t1-t0) / 100 / idle.Seconds() // USER_HZ = 100
	return res, nil
}

func procStatusKB(pid int, key string) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return 0
}

// cpuTicks is utime+stime of a process, in clock ticks.
func cpuTicks(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	k, _ := strconv.Atoi(f[12])
	return u + k
}
