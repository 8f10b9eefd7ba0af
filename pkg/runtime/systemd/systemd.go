// Package systemd runs site routers as systemd services on the host (the
// linux platform): one unit skupper-<ns>.service running skrouterd -c on
// the namespace's configuration, written to the system or the user unit
// directory and driven over D-Bus (github.com/coreos/go-systemd/v22/dbus).
//
// It only writes, stops or removes units that carry its header line; a
// unit of the same name written by anyone else is left alone and reported.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"

	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// Scope is the systemd manager a runtime talks to.
type Scope string

const (
	System Scope = "system"
	User   Scope = "user"
)

// ParseScope checks a --systemd-scope value.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case System, User:
		return Scope(s), nil
	}
	return "", fmt.Errorf("systemd scope must be system or user, got %q", s)
}

// DefaultScope is system for root, user otherwise.
func DefaultScope() Scope {
	if os.Geteuid() == 0 {
		return System
	}
	return User
}

// header marks unit files this package owns.
const header = "# Written by site-controller"

// Options configures the runtime.
type Options struct {
	Scope Scope
	// Binary is the router to run (skrouterd).
	Binary string
	// UnitDir overrides the unit directory: /etc/systemd/system, or
	// $XDG_CONFIG_HOME/systemd/user (~/.config/systemd/user).
	UnitDir string
	// NoFile is the router's open files limit (LimitNOFILE): a router with
	// thousands of listeners needs more than systemd's default soft limit
	// of 1024. 0 means this process's hard limit, which the manager that
	// runs this process (and so the router's) allows.
	NoFile uint64
}

// UnitDir is where units of the scope are written.
func UnitDir(scope Scope) string {
	if scope == System {
		return "/etc/systemd/system"
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "systemd", "user")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "systemd", "user")
}

// Runtime is the linux platform.
type Runtime struct {
	opts Options

	conn runtime.Shared[*sd.Conn]
}

// New returns a runtime; it connects to the manager on first use.
func New(opts Options) *Runtime {
	if opts.Scope == "" {
		opts.Scope = DefaultScope()
	}
	if opts.UnitDir == "" {
		opts.UnitDir = UnitDir(opts.Scope)
	}
	if opts.NoFile == 0 {
		opts.NoFile = runtime.DefaultNoFile()
	}
	return &Runtime{opts: opts}
}

// Close drops the D-Bus connection.
func (r *Runtime) Close() { r.conn.Close((*sd.Conn).Close) }

// Platform implements runtime.Runtime.
func (r *Runtime) Platform() string { return "linux" }

func (r *Runtime) endpoint() string {
	if r.opts.Scope == User {
		return "the user manager (" + os.Getenv("DBUS_SESSION_BUS_ADDRESS") + ")"
	}
	return "the system manager"
}

// connect returns the connection to the manager, made if there is none
// or it was lost. It is shared by every namespace's calls and lives by a
// context of its own (runtime.Shared): D-Bus closes a connection when
// the context it was made with ends, and a call's context ends with the
// call.
func (r *Runtime) connect(ctx context.Context) (*sd.Conn, error) {
	c, err := r.conn.Get(ctx, (*sd.Conn).Connected, func(life context.Context) (*sd.Conn, error) {
		if r.opts.Scope == User {
			return sd.NewUserConnectionContext(life)
		}
		return sd.NewSystemConnectionContext(life)
	}, (*sd.Conn).Close)
	if err != nil {
		return nil, &runtime.Unavailable{Platform: "linux", Endpoint: r.endpoint(), Err: err}
	}
	return c, nil
}

// unitPath is the unit file of a namespace.
func (r *Runtime) unitPath(ns string) string {
	return filepath.Join(r.opts.UnitDir, runtime.UnitName(ns))
}

// escape quotes a value for a unit file: % is a specifier there, and a
// path with spaces must be quoted.
func escape(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if strings.ContainsAny(s, " \t\"\\") {
		s = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return s
}

// Unit renders the unit file of a site. The input hash is part of it, so
// a configuration change changes the unit and restarts the router.
func Unit(s runtime.Site, scope Scope, binary string, nofile uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s for namespace %s; do not edit: it is rewritten on every change.\n", header, s.Namespace)
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=Skupper router of site namespace %s\n", s.Namespace)
	if scope == System {
		b.WriteString("After=network-online.target\nWants=network-online.target\n")
	}
	// restart for ever, as a container engine would; no start limit
	b.WriteString("StartLimitIntervalSec=0\n")
	b.WriteString("\n[Service]\nType=simple\n")
	fmt.Fprintf(&b, "Environment=SKUPPER_SITE_ID=%s\n", escape(s.SiteID))
	fmt.Fprintf(&b, "Environment=SITE_CONTROLLER_INPUT=%s\n", s.Hash)
	fmt.Fprintf(&b, "Environment=%s\n", escape("SITE_CONTROLLER_DIR="+s.Dir))
	fmt.Fprintf(&b, "ExecStart=%s -c %s\n", escape(binary), escape(s.ConfigPath()))
	b.WriteString("Restart=always\nRestartSec=2s\n")
	if nofile > 0 {
		fmt.Fprintf(&b, "LimitNOFILE=%d\n", nofile)
	}
	confine(&b, s, scope)
	b.WriteString("\n[Install]\n")
	if scope == System {
		b.WriteString("WantedBy=multi-user.target\n")
	} else {
		b.WriteString("WantedBy=default.target\n")
	}
	return b.String()
}

// confine adds the router's sandbox: it reads its configuration and
// credentials, opens sockets and writes nothing. What needs no privilege
// of the manager (seccomp filters, no new privileges) is set in both
// scopes; a user manager cannot make mount namespaces or drop
// capabilities without user namespaces, so the file system and capability
// settings are the system scope's.
func confine(b *strings.Builder, s runtime.Site, scope Scope) {
	b.WriteString("# confinement: the router reads its configuration and credentials and writes nothing\n")
	b.WriteString("NoNewPrivileges=yes\nUMask=0077\n")
	b.WriteString("RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n")
	b.WriteString("RestrictNamespaces=yes\nRestrictRealtime=yes\nRestrictSUIDSGID=yes\nLockPersonality=yes\n")
	b.WriteString("SystemCallArchitectures=native\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged @resources\n")
	if scope != System {
		return
	}
	if s.LowPorts {
		b.WriteString("CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n")
	} else {
		b.WriteString("CapabilityBoundingSet=\n")
	}
	b.WriteString("ProtectSystem=strict\nProtectHome=read-only\nPrivateDevices=yes\n")
	if !underTmp(s.Dir) { // a private /tmp would hide a data home there
		b.WriteString("PrivateTmp=yes\n")
	}
	b.WriteString("ProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectKernelLogs=yes\nProtectControlGroups=yes\n")
	b.WriteString("ProtectClock=yes\nProtectHostname=yes\nProtectProc=invisible\nProcSubset=pid\n")
	b.WriteString("PrivateMounts=yes\nMemoryDenyWriteExecute=yes\nDevicePolicy=closed\n")
	fmt.Fprintf(b, "ReadOnlyPaths=%s %s\n", escape("-"+filepath.Join(s.Dir, "runtime", "router")), escape("-"+filepath.Join(s.Dir, "runtime", "certs")))
}

// underTmp tells whether path is below /tmp or /var/tmp.
func underTmp(path string) bool {
	return strings.HasPrefix(path, "/tmp/") || strings.HasPrefix(path, "/var/tmp/")
}

// owner reads the unit file at path: the namespace directory it was
// written for, or a *runtime.Foreign when site-controller did not write
// it for dir. A missing file is os.ErrNotExist.
func (r *Runtime) owner(path, dir string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	owner, _ := unitDir(string(data))
	if owner == dir {
		return nil
	}
	return &runtime.Foreign{Name: "unit file " + path, Owner: owner, Remedy: "rm " + path}
}

// unitDir reads a unit file: whether this package wrote it, and for which
// namespace directory.
func unitDir(text string) (dir string, ours bool) {
	if !strings.HasPrefix(text, header) {
		return "", false
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "Environment="); ok {
			if d, ok := strings.CutPrefix(unescape(v), "SITE_CONTROLLER_DIR="); ok {
				dir = d
			}
		}
	}
	return dir, true
}

// unescape undoes escape.
func unescape(s string) string {
	if len(s) >= 2 && strings.HasPrefix(s, `"`) && strings.HasSuffix(s, `"`) {
		s = strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(s[1 : len(s)-1])
	}
	return strings.ReplaceAll(s, "%%", "%")
}

// execBinary is the skrouterd a unit file written by Unit runs.
func execBinary(unit string) string {
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			if i := strings.LastIndex(v, " -c "); i > 0 {
				return unescape(v[:i])
			}
		}
	}
	return ""
}

// replaced tells whether the file at binary is not the one process pid
// runs (it was replaced since the process started).
func replaced(pid int, binary string) bool {
	if pid <= 0 {
		return false
	}
	running, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	now, err := os.Stat(binary)
	return err == nil && !os.SameFile(running, now)
}

// wait waits for a job to finish.
func wait(ctx context.Context, ch <-chan string, what string) error {
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s: job %s", what, res)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: no answer from systemd in 30s", what)
	}
}

// RouterUser implements runtime.Runtime: skrouterd runs as the manager's
// user (root for the system manager), without capabilities.
func (r *Runtime) RouterUser(bool) (uid, gid int) { return os.Geteuid(), os.Getegid() }

// Ensure implements runtime.Runtime.
func (r *Runtime) Ensure(ctx context.Context, s runtime.Site) (st runtime.State, err error) {
	var upgraded string
	defer func() {
		if upgraded != "" && err == nil {
			st.Upgrade, st.Upgraded = upgraded, true
		}
	}()
	if r.opts.Binary == "" {
		return runtime.State{}, errors.New("skrouterd not found: install skupper-router (skrouterd on PATH or /usr/sbin/skrouterd) or pass --router-binary")
	}
	if err := s.CheckPaths(); err != nil {
		return runtime.State{Message: err.Error()}, err
	}
	if err := runtime.CheckAbsolute("router binary", r.opts.Binary); err != nil {
		return runtime.State{Message: err.Error()}, err
	}
	conn, err := r.connect(ctx)
	if err != nil {
		return runtime.State{}, err
	}
	path := r.unitPath(s.Namespace)
	name := runtime.UnitName(s.Namespace)
	if err := r.owner(path, s.Dir); runtime.IsForeign(err) {
		return runtime.State{Status: "foreign", Message: err.Error()}, err
	}
	want := Unit(s, r.opts.Scope, r.opts.Binary, r.opts.NoFile)
	// another skrouterd (another path) is an upgrade, which the
	// controller paces: until it lets this one go, the unit stays
	upgrade := ""
	if old, err := os.ReadFile(path); err == nil && string(old) != want {
		if bin := execBinary(string(old)); bin != "" && bin != r.opts.Binary && string(old) == Unit(s, r.opts.Scope, bin, r.opts.NoFile) {
			upgrade = "skrouterd " + bin + " → " + r.opts.Binary
			if !s.Upgrade {
				want = string(old)
			}
		}
	}
	changed, err := fileio.WriteFile(path, []byte(want), 0o644, 0o755, false)
	if err != nil {
		return runtime.State{}, err
	}
	if changed && upgrade != "" {
		upgraded = upgrade
	}
	if changed {
		if err := conn.ReloadContext(ctx); err != nil {
			return runtime.State{}, r.wrap("reloading units", err)
		}
		if _, _, err := conn.EnableUnitFilesContext(ctx, []string{path}, false, true); err != nil {
			return runtime.State{}, r.wrap("enabling "+name, err)
		}
	}
	st, err = r.State(ctx, s.Namespace, s.Dir)
	if err != nil {
		return st, err
	}
	if upgrade == "" && !changed && st.Running && replaced(st.Pid, r.opts.Binary) {
		// the same path holds another skrouterd (a package upgrade)
		upgrade = "skrouterd " + r.opts.Binary + " (the one running) → " + r.opts.Binary + " (the file there now)"
		if s.Upgrade {
			changed, upgraded = true, upgrade
		}
	}
	if upgrade != "" && !s.Upgrade {
		st.Upgrade = upgrade
		return st, nil
	}
	ch := make(chan string, 1)
	switch {
	case changed && st.Exists && st.Status != "inactive" && st.Status != "failed":
		_, err = conn.RestartUnitContext(ctx, name, "replace", ch)
	case !st.Running && st.Status != "activating":
		conn.ResetFailedUnitContext(ctx, name)
		_, err = conn.StartUnitContext(ctx, name, "replace", ch)
	default:
		return st, nil
	}
	if err != nil {
		return st, r.wrap("starting "+name, err)
	}
	if err := wait(ctx, ch, "starting "+name); err != nil {
		st, _ := r.State(ctx, s.Namespace, s.Dir)
		return st, err
	}
	return r.State(ctx, s.Namespace, s.Dir)
}

func (r *Runtime) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	c, ok := r.conn.Current()
	if !ok || !c.Connected() {
		return &runtime.Unavailable{Platform: "linux", Endpoint: r.endpoint(), Err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// State implements runtime.Runtime.
func (r *Runtime) State(ctx context.Context, ns, dir string) (runtime.State, error) {
	if err := r.owner(r.unitPath(ns), dir); runtime.IsForeign(err) {
		return runtime.State{Status: "foreign", Message: err.Error()}, err
	}
	conn, err := r.connect(ctx)
	if err != nil {
		return runtime.State{}, err
	}
	name := runtime.UnitName(ns)
	props, err := conn.GetUnitTypePropertiesContext(ctx, name, "Service")
	if err != nil {
		return runtime.State{}, r.wrap("reading "+name, err)
	}
	unit, err := conn.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return runtime.State{}, r.wrap("reading "+name, err)
	}
	st := runtime.State{}
	active, _ := unit["ActiveState"].(string)
	sub, _ := unit["SubState"].(string)
	load, _ := unit["LoadState"].(string)
	st.Exists = load == "loaded"
	st.Status = active
	st.Running = active == "active" && sub == "running"
	if n, ok := props["NRestarts"].(uint32); ok {
		st.Restarts = int(n)
	}
	if pid, ok := props["MainPID"].(uint32); ok {
		st.Pid = int(pid)
	}
	if code, ok := props["ExecMainStatus"].(int32); ok {
		st.ExitCode = int(code)
	}
	if us, ok := unit["ActiveEnterTimestamp"].(uint64); ok && us > 0 {
		st.Started = time.UnixMicro(int64(us))
	}
	if !st.Exists {
		st.Status = "absent"
		st.Message = "no router unit"
	} else if !st.Running {
		st.Message = fmt.Sprintf("router unit %s is %s/%s (exit code %d, %d restarts); see journalctl %s-u %s",
			name, active, sub, st.ExitCode, st.Restarts, map[Scope]string{User: "--user ", System: ""}[r.opts.Scope], name)
	}
	return st, nil
}

// Remove implements runtime.Runtime: stop, disable and delete the unit.
func (r *Runtime) Remove(ctx context.Context, ns, dir string) error {
	path := r.unitPath(ns)
	err := r.owner(path, dir)
	if errors.Is(err, os.ErrNotExist) || runtime.IsForeign(err) {
		return nil // nothing of this site's: a foreign unit is left alone
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	conn, err := r.connect(ctx)
	if err != nil {
		return err
	}
	name := runtime.UnitName(ns)
	ch := make(chan string, 1)
	if _, err := conn.StopUnitContext(ctx, name, "replace", ch); err != nil {
		return r.wrap("stopping "+name, err)
	}
	if err := wait(ctx, ch, "stopping "+name); err != nil {
		return err
	}
	if _, err := conn.DisableUnitFilesContext(ctx, []string{name}, false); err != nil {
		return r.wrap("disabling "+name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	conn.ResetFailedUnitContext(ctx, name)
	return r.wrap("reloading units", conn.ReloadContext(ctx))
}

// List implements runtime.Runtime: the units this package wrote.
func (r *Runtime) List(ctx context.Context) ([]runtime.Router, error) {
	files, err := filepath.Glob(filepath.Join(r.opts.UnitDir, "skupper-*.service"))
	if err != nil {
		return nil, err
	}
	var out []runtime.Router
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if dir, ours := unitDir(string(data)); ours {
			out = append(out, runtime.Router{Namespace: strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "skupper-"), ".service"), Dir: dir})
		}
	}
	return out, nil
}
