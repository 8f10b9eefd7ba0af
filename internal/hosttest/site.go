package hosttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/status"
)

// NSDir is namespace ns's directory in the host's data home.
func (h *Host) NSDir(ns string) string { return filepath.Join(namespace.Root(h.Home), ns) }

// Write puts a resource file into namespace ns's input as a user would:
// written aside, then renamed into place.
func (h *Host) Write(ns, file, content string) error {
	dir := filepath.Join(h.NSDir(ns), "input", "resources")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	tmp := filepath.Join(dir, "."+file+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, file)); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	return nil
}

// Remove takes a resource file out of namespace ns's input.
func (h *Host) Remove(ns, file string) error {
	if err := os.Remove(filepath.Join(h.NSDir(ns), "input", "resources", file)); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	return nil
}

// Status reads a resource's status in namespace ns, nil when there is
// none (yet).
func (h *Host) Status(ns, kind, name string) *status.Status {
	s, err := status.Read(filepath.Join(h.NSDir(ns), "runtime", "resources", status.FileName(kind, name)))
	if err != nil {
		return nil
	}
	return s
}

// LinkFile reads the link file namespace ns writes for RouterAccess
// access at host (runtime/links/link-<access>-<host>.yaml).
func (h *Host) LinkFile(ns, access, host string) ([]byte, error) {
	d, err := namespace.Open(h.Home, ns)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	data, err := os.ReadFile(d.LinkFile(access, host))
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return data, nil
}

// Run runs a site-controller command on the host's data home (token
// issue, token redeem, status: commands that only read and write files).
func (h *Host) Run(ctx context.Context, args ...string) (string, error) {
	return commandContext(ctx, h.env(), "", h.net.Bin, args...)
}
