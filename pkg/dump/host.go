package dump

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// hostFacts are the files host/facts.txt is made of.
var hostFacts = []string{
	"/proc/sys/kernel/osrelease",
	"/proc/version",
	"/proc/sys/fs/inotify/max_user_watches",
	"/proc/sys/fs/inotify/max_user_instances",
	"/proc/sys/fs/inotify/max_queued_events",
	"/proc/sys/fs/file-max",
	"/proc/sys/fs/file-nr",
	"/proc/sys/fs/nr_open",
	"/proc/loadavg",
	"/proc/uptime",
}

// collectHost adds host/: kernel, OS, the limits that bound a site (open
// files, inotify), and this process's own limits.
func collectHost(a *archive) {
	var b strings.Builder
	for _, f := range hostFacts {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", f, err)
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", f, strings.TrimSpace(string(data)))
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "MemTotal:") || strings.HasPrefix(line, "MemAvailable:") {
				fmt.Fprintf(&b, "/proc/meminfo: %s\n", strings.Join(strings.Fields(line), " "))
			}
		}
	}
	fmt.Fprintf(&b, "uid %d, gid %d\n", os.Getuid(), os.Getgid())
	a.add("host/facts.txt", []byte(b.String()))
	for _, f := range []struct{ src, name string }{{"/etc/os-release", "host/os-release"}, {"/proc/self/limits", "host/limits-of-dump.txt"}} {
		if data, err := os.ReadFile(f.src); err == nil {
			a.add(f.name, data)
		} else {
			a.problem("reading "+f.src, err)
		}
	}
}

// Daemon is the running `site-controller run` of the data home, found by
// its command line.
type Daemon struct {
	PID      int    `yaml:"pid,omitempty"`
	HTTP     string `yaml:"http,omitempty"`
	DataHome string `yaml:"dataHome"`
}

// FindDaemon looks through /proc for a `site-controller run` whose data
// home is dataHome, and the address it serves /metrics on (--http).
func FindDaemon(dataHome, defaultHome string) *Daemon {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || len(data) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if filepath.Base(args[0]) != "site-controller" || len(args) < 2 || args[1] != "run" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		d := &Daemon{PID: pid, DataHome: defaultHome}
		for i := 2; i < len(args); i++ {
			name, value, hasValue := strings.Cut(args[i], "=")
			if !hasValue && i+1 < len(args) {
				value = args[i+1]
			}
			switch name {
			case "--data-home":
				d.DataHome = value
			case "--http":
				d.HTTP = value
			}
		}
		if !filepath.IsAbs(d.DataHome) { // as the daemon made it: against its working directory
			if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil {
				d.DataHome = filepath.Join(cwd, d.DataHome)
			}
		}
		if filepath.Clean(d.DataHome) == filepath.Clean(dataHome) {
			return d
		}
	}
	return nil
}

// collectDaemon adds daemon/: the running daemon's command line and
// limits, when one is found, and its /metrics, /healthz and /readyz.
func collectDaemon(ctx context.Context, a *archive, o Options) {
	d := FindDaemon(o.DataHome, o.DataHome)
	if d != nil {
		a.summary.Daemon = d
		for _, f := range []string{"cmdline", "limits", "status"} {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", d.PID, f))
			if err != nil {
				a.problem("reading the daemon's "+f, err)
				continue
			}
			if f == "cmdline" {
				data = append(bytes.ReplaceAll(bytes.TrimRight(data, "\x00"), []byte{0}, []byte{' '}), '\n')
			}
			a.add("daemon/"+f+".txt", data)
		}
	}
	addr := o.HTTP
	if addr == "" && d != nil {
		addr = d.HTTP
	}
	if addr == "" {
		a.problem("the daemon's metrics", fmt.Errorf("no --http address given and no running daemon of %s serving one found", o.DataHome))
		return
	}
	if a.summary.Daemon == nil {
		a.summary.Daemon = &Daemon{DataHome: o.DataHome}
	}
	a.summary.Daemon.HTTP = addr
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		err := withTimeout(ctx, o, func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, maxFile))
			if err != nil {
				return err
			}
			a.add("daemon"+strings.ReplaceAll(path, "/", "/http-")+".txt", append([]byte(resp.Status+"\n\n"), body...))
			return nil
		})
		if err != nil {
			a.problem("the daemon's "+path, err)
		}
	}
}
