package hosttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// callTimeout bounds every command the harness runs (ip, nft, systemctl).
const callTimeout = 20 * time.Second

// netnsPath is where `ip netns add` mounts a named network namespace.
func netnsPath(name string) string { return "/run/netns/" + name }

// inNetns runs fn on an OS thread that is in the network namespace at
// path: sockets fn creates (listeners, dialled connections) belong to that
// namespace for their whole life, wherever they are used afterwards. The
// thread returns to its own namespace after; if it cannot, it stays locked
// and ends with the goroutine, so no other goroutine ever runs there.
func inNetns(path string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening this thread's network namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace %s: %w", path, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// the thread stays locked: it ends with this goroutine
		return errors.Join(ferr, fmt.Errorf("returning from network namespace %s: %w", path, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// listenIn listens on addr (an IP literal and port) inside the network
// namespace at path.
func listenIn(path, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNetns(path, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// dialIn connects to addr (an IP literal and port) from inside the
// network namespace at path.
func dialIn(ctx context.Context, path, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(path, func() error {
		var err error
		d := net.Dialer{}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// command runs a command with the harness's deadline and returns its
// combined output; the error names the command and carries its output.
func command(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return commandContext(ctx, nil, "", name, args...)
}

// commandContext runs a command with env added to this process's
// environment and stdin, until ctx ends.
func commandContext(ctx context.Context, env []string, stdin, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
