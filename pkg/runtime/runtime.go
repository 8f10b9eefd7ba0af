// Package runtime is what the three router runtimes (docker, podman,
// systemd) share: the Runtime interface the controller drives, the site
// description it hands them, the container specification both container
// engines use, and platform detection.
//
// Nothing here starts anything; the subpackages talk to the engines.
package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultImage is the router image containers run unless
// SKUPPER_ROUTER_IMAGE (or the --router-image flag) names another.
const DefaultImage = "quay.io/skupper/skupper-router:3.5.1"

// Labels every router container carries (Skupper's, plus ours).
const (
	LabelApplication = "application"
	LabelSiteID      = "skupper.io/site-id"
	LabelComponent   = "skupper.io/v2-component"
	LabelNamespace   = "site-controller.io/namespace"
	LabelSpecHash    = "site-controller.io/spec-hash"
	LabelSiteDir     = "site-controller.io/site-dir"
)

// Site is one namespace's router as the controller wants it.
type Site struct {
	Namespace string
	SiteID    string
	// Dir is the namespace directory on the host.
	Dir string
	// Hash identifies the router's whole input (configuration and
	// credentials): when it changes, the router must restart to see it.
	Hash string
	// LowPorts: the router listens on a port below 1024, and needs the
	// capability to bind one (it has no other).
	LowPorts bool
	// Upgrade lets Ensure restart a router whose only difference is the
	// router it runs (another image, or another skrouterd): without it
	// such a router is left running and State.Upgrade says what waits.
	Upgrade bool
}

// CheckPaths refuses a site whose directory is not an absolute, clean
// path. Engines take a relative bind source for a volume name (Docker
// refuses "examples/namespaces/…" as one), systemd refuses relative paths
// in a unit, and the router resolves its configuration's paths against a
// working directory of its own: every path handed to them must be
// absolute. The commands make --data-home absolute; this is the safety
// net under them.
func (s Site) CheckPaths() error {
	return CheckAbsolute("site "+s.Namespace+" directory", s.Dir)
}

// CheckAbsolute refuses a path that is not absolute and clean, naming
// what it is.
func CheckAbsolute(what, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s %q is not an absolute path: engines, units and routers are only given absolute paths (pass --data-home as one)", what, path)
	}
	if filepath.Clean(path) != path {
		return fmt.Errorf("%s %q is not a clean path (it should be %q)", what, path, filepath.Clean(path))
	}
	return nil
}

// ConfigPath is the router configuration on the host.
func (s Site) ConfigPath() string { return filepath.Join(s.Dir, "runtime", "router", "skrouterd.json") }

// State is what a runtime reports about a site's router.
type State struct {
	Exists  bool
	Running bool
	// Status is the engine's word for it: running, restarting, exited,
	// created, active, activating, failed, …
	Status   string
	Restarts int
	ExitCode int
	Pid      int // the router's process on the host, when running
	Started  time.Time
	// Message explains a router that is not running, for the Site status.
	Message string
	// Upgrade, when the router runs another router than the runtime would
	// start now, says which: "image A → B", "skrouterd A → B" (Ensure
	// left it, as Site.Upgrade was not set; or it restarted it for that,
	// Upgraded)
	Upgrade  string
	Upgraded bool
}

// Runtime runs site routers on one platform.
type Runtime interface {
	// Platform is podman, docker or linux.
	Platform() string
	// Ensure makes the site's router run with the given input: created
	// when missing, restarted (recreated) when its hash differs, started
	// when stopped, left alone otherwise. It reports the resulting state.
	Ensure(ctx context.Context, s Site) (State, error)
	// Remove stops and removes the router of namespace ns created for the
	// namespace directory dir, if any. A router of that name created for
	// another directory, or by someone else, is left alone (nil).
	Remove(ctx context.Context, ns, dir string) error
	// State reports the router of namespace ns created for directory dir;
	// a router of that name that is not one is a *Foreign error.
	State(ctx context.Context, ns, dir string) (State, error)
	// List returns the routers on this runtime.
	List(ctx context.Context) ([]Router, error)
	// RouterUser is the user a site's router runs as (lowPorts: it binds
	// a port below 1024), who must own the files it reads: its keys are
	// 0600 and it has no capability to read another's.
	RouterUser(lowPorts bool) (uid, gid int)
}

// Router is a router found on a runtime.
type Router struct {
	Namespace string
	// Dir is the namespace directory the router was created for; "" for
	// routers this controller did not create (Skupper's own).
	Dir string
}

// Unavailable wraps errors that mean the engine itself cannot be reached
// (socket missing, daemon down): the controller retries with backoff.
type Unavailable struct {
	Platform, Endpoint string
	Err                error
}

func (e *Unavailable) Error() string {
	hint := map[string]string{
		"docker": "start it (systemctl start docker) or point CONTAINER_ENDPOINT at a running engine",
		"podman": "start it (systemctl start podman.socket, or systemctl --user start podman.socket when rootless) or point CONTAINER_ENDPOINT at a running engine",
		"linux":  "check that the systemd manager is running and reachable over D-Bus",
	}[e.Platform]
	return fmt.Sprintf("%s at %s is not reachable: %v; %s", e.Platform, e.Endpoint, e.Err, hint)
}

func (e *Unavailable) Unwrap() error { return e.Err }

// Foreign is a container or unit with the name a site's router would have
// that this controller did not create for that site's directory: Skupper's
// own, another data home's, or anyone's. It is never removed or replaced.
type Foreign struct {
	// Name is the container or unit; Owner what its labels say it belongs
	// to ("" when they say nothing).
	Name, Owner string
	// Remedy is the command that would free the name.
	Remedy string
}

func (e *Foreign) Error() string {
	owner := "it carries no " + LabelSiteDir + " label (Skupper's own router, or someone else's)"
	if e.Owner != "" {
		owner = "it belongs to the site in " + e.Owner
	}
	return fmt.Sprintf("%s exists and was not created by site-controller for this site: %s; it is left alone: "+
		"remove it (%s) or rename this namespace", e.Name, owner, e.Remedy)
}

// IsForeign tells whether err is a *Foreign.
func IsForeign(err error) bool {
	var f *Foreign
	return errors.As(err, &f)
}

// IsUnavailable tells whether err says the engine cannot be reached.
func IsUnavailable(err error) bool {
	var u *Unavailable
	return errors.As(err, &u)
}

// ContainerName is the router container of a namespace.
func ContainerName(ns string) string { return ns + "-skupper-router" }

// UnitName is the systemd unit of a namespace.
func UnitName(ns string) string { return "skupper-" + ns + ".service" }

// Container is the engine-neutral specification of a router container.
type Container struct {
	Name   string
	Image  string
	Env    map[string]string
	Binds  []Bind
	Labels map[string]string
	// User is "uid:gid"; KeepID asks rootless podman to map the host user
	// to the same uid inside (userns keep-id).
	User   string
	KeepID bool
	// NoFile is the router's open files limit (soft and hard; 0: the
	// engine's default). Not part of the spec hash: a router made before
	// keeps running until it is recreated for another reason.
	NoFile uint64
	// The router's confinement: every capability dropped but those in
	// CapAdd, no new privileges (setuid), a read-only root file system
	// with a tmpfs at each of Tmpfs (the image's launch script writes the
	// expanded configuration to /tmp).
	CapAdd          []string
	NoNewPrivileges bool
	ReadOnlyRoot    bool
	Tmpfs           []string
}

// RouterUID and RouterGID are the user a router container runs as when
// root drives the engine: the router image's own unprivileged user, never
// root. The files the router reads (runtime/certs, runtime/router) are
// given to it; runtime/ above them stays root's and 0700, so that no
// process of that uid on the host can reach them, while the engine binds
// them into the container by path.
const (
	RouterUID = 10000
	RouterGID = 10000
)

// ContainerUser is the user a router container runs as, and so the owner
// of the files it reads: for a rootless engine (keep-id) and for an engine
// a user other than root drives, that user; for root, RouterUID — except
// on Docker for a router that binds a port below 1024: Docker grants an
// added capability to root only, so that router runs as root, with no
// capability but that one.
func ContainerUser(engine string, ownerUID, ownerGID int, rootless, lowPorts bool) (uid, gid int) {
	switch {
	case rootless || ownerUID != 0:
		return ownerUID, ownerGID
	case engine == "docker" && lowPorts:
		return 0, 0
	}
	return RouterUID, RouterGID
}

// maxNoFile caps the default open files limit of routers at the kernel's
// usual fs.nr_open.
const maxNoFile = 1 << 20

// DefaultNoFile is the open files limit routers get: this process's hard
// limit (a router's engine or service manager on the same host grants at
// least as much as a process it runs), at most 1048576. A router needs one
// per listening socket and connection; systemd's default soft limit, 1024,
// would cap a site at about a thousand Listeners.
func DefaultNoFile() uint64 {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return min(lim.Max, maxNoFile)
}

// OpenFilesLimit reads the open files limit (soft, hard) of process pid
// from /proc; "unlimited" is math.MaxUint64.
func OpenFilesLimit(pid int) (soft, hard uint64, err error) {
	path := fmt.Sprintf("/proc/%d/limits", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "Max open files")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) < 2 {
			break
		}
		var limits [2]uint64
		for i, f := range fields[:2] {
			if f == "unlimited" {
				limits[i] = math.MaxUint64
			} else if limits[i], err = strconv.ParseUint(f, 10, 64); err != nil {
				return 0, 0, fmt.Errorf("reading %s: %q: %w", path, line, err)
			}
		}
		return limits[0], limits[1], nil
	}
	return 0, 0, fmt.Errorf("reading %s: no open files limit", path)
}

// Bind is a host directory mounted into the container.
type Bind struct {
	Host, Container string
	// SELinux relabelling (":z") and read-only.
	Relabel, ReadOnly bool
}

// String is the bind in engine syntax: host:container[:opts].
func (b Bind) String() string {
	var opts []string
	if b.ReadOnly {
		opts = append(opts, "ro")
	}
	if b.Relabel {
		opts = append(opts, "z")
	}
	s := b.Host + ":" + b.Container
	if len(opts) > 0 {
		s += ":" + strings.Join(opts, ",")
	}
	return s
}

// ContainerOptions are the engine facts a container spec depends on.
type ContainerOptions struct {
	Image    string
	Rootless bool // rootless podman: keep-id with the host uid
	UID, GID int  // the user the router runs as, who owns its files
	// NoFile is the open files limit (0: none set, the engine's default)
	NoFile uint64
}

// RouterContainer is the container of a site's router, as Skupper lays
// it out: the router image's launch script reads QDROUTERD_CONF and
// expands ${SSL_PROFILE_BASE_PATH} in credential paths. It is confined:
// its configuration and credentials are bound read-only (a router cannot
// change what the controller wrote, nor plant anything there), every
// capability is dropped (NET_BIND_SERVICE is kept for a port below 1024),
// no new privileges, a read-only root with a tmpfs at /tmp.
func RouterContainer(s Site, o ContainerOptions) Container {
	var caps []string
	if s.LowPorts {
		caps = []string{"NET_BIND_SERVICE"}
	}
	c := Container{
		Name:  ContainerName(s.Namespace),
		Image: o.Image,
		Env: map[string]string{
			"QDROUTERD_CONF":        "/etc/skupper-router/config/skrouterd.json",
			"QDROUTERD_CONF_TYPE":   "json",
			"SKUPPER_SITE_ID":       s.SiteID,
			"SSL_PROFILE_BASE_PATH": "/etc/skupper-router",
		},
		Binds: []Bind{
			{Host: filepath.Join(s.Dir, "runtime", "router"), Container: "/etc/skupper-router/config", Relabel: true, ReadOnly: true},
			{Host: filepath.Join(s.Dir, "runtime", "certs"), Container: "/etc/skupper-router/runtime/certs", Relabel: true, ReadOnly: true},
		},
		Labels: map[string]string{
			LabelApplication: "skupper-v2",
			LabelSiteID:      s.SiteID,
			LabelComponent:   "router",
			LabelNamespace:   s.Namespace,
			LabelSiteDir:     s.Dir,
			LabelSpecHash:    "",
		},
		User:            fmt.Sprintf("%d:%d", o.UID, o.GID),
		KeepID:          o.Rootless,
		NoFile:          o.NoFile,
		CapAdd:          caps,
		NoNewPrivileges: true,
		ReadOnlyRoot:    true,
		Tmpfs:           []string{"/tmp"},
	}
	c.Labels[LabelSpecHash] = c.hash(s.Hash)
	return c
}

// CheckPaths refuses a container whose bind sources are not absolute,
// clean paths: an engine would take a relative one for a volume name.
func (c Container) CheckPaths() error {
	for _, b := range c.Binds {
		if err := CheckAbsolute(c.Name+" bind source", b.Host); err != nil {
			return err
		}
	}
	return nil
}

// hash identifies the container specification together with the site's
// input, so that any change to either recreates the container.
func (c Container) hash(input string) string {
	// the image is not in it: another router image is an upgrade, which
	// the controller paces (Site.Upgrade)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%t\x00%s\x00", c.Name, c.User, c.KeepID, input)
	fmt.Fprintf(h, "confined cap-add=%s nnp=%t ro=%t tmpfs=%s\x00", strings.Join(c.CapAdd, ","), c.NoNewPrivileges, c.ReadOnlyRoot, strings.Join(c.Tmpfs, ","))
	for _, k := range sortedKeys(c.Env) {
		fmt.Fprintf(h, "env %s=%s\x00", k, c.Env[k])
	}
	for _, b := range c.Binds {
		fmt.Fprintf(h, "bind %s\x00", b)
	}
	for _, k := range sortedKeys(c.Labels) {
		if k != LabelSpecHash {
			fmt.Fprintf(h, "label %s=%s\x00", k, c.Labels[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// EnvList is the environment as KEY=value strings, sorted.
func (c Container) EnvList() []string {
	var out []string
	for _, k := range sortedKeys(c.Env) {
		out = append(out, k+"="+c.Env[k])
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// InputHash hashes what a router reads: its configuration and every
// credential file under runtime/certs.
func InputHash(dir string) (string, error) {
	h := sha256.New()
	paths := []string{filepath.Join(dir, "runtime", "router", "skrouterd.json")}
	filepath.WalkDir(filepath.Join(dir, "runtime", "certs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths[1:])
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("hashing router input: %w", err)
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00", rel)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("hashing router input: %w", err)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// PullPolicy says when to pull the router image.
type PullPolicy string

const (
	PullMissing PullPolicy = "missing"
	PullAlways  PullPolicy = "always"
	PullNever   PullPolicy = "never"
)

// ParsePullPolicy checks a --pull value.
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case PullMissing, PullAlways, PullNever:
		return p, nil
	}
	return "", fmt.Errorf("pull policy must be missing, always or never, got %q", s)
}

// ShortImage names an image by its reference and the start of its id
// ("quay.io/skupper/skupper-router:3.5.1 (5fe916d27dea)").
func ShortImage(ref, id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	if id == "" {
		return ref
	}
	return ref + " (" + id + ")"
}
