package namespace

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Files under internal/ that the controller keeps for a namespace.
const (
	siteIDFile         = "site-id"
	managementPortFile = "management-port"
	platformFile       = "platform.yaml"
)

// SiteID returns the namespace's persistent site id. When none is stored
// yet it takes what adopt returns (for example the id found in a router
// configuration written by Skupper) or, when that is empty, a new random
// UUID, and stores it durably.
func (d Dir) SiteID(adopt func() string) (string, error) {
	path := filepath.Join(d.Internal(), siteIDFile)
	data, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(data)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("reading site id: %w", err)
	}
	id := adopt()
	if id == "" {
		id = newUUID()
	}
	if _, err := d.Files().WriteFile(path, []byte(id+"\n"), 0o644, 0o700, true); err != nil {
		return "", fmt.Errorf("storing site id: %w", err)
	}
	return id, nil
}

// PeekSiteID returns the stored site id, "" when there is none yet.
func (d Dir) PeekSiteID() (string, error) {
	data, err := os.ReadFile(filepath.Join(d.Internal(), siteIDFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading site id: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Platform returns the platform recorded in internal/platform.yaml, or ""
// when the namespace has none.
func (d Dir) Platform() (string, error) {
	data, err := os.ReadFile(filepath.Join(d.Internal(), platformFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading platform: %w", err)
	}
	var v struct {
		Platform string `yaml:"platform"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return "", fmt.Errorf("reading %s: %w", filepath.Join(d.Internal(), platformFile), err)
	}
	switch v.Platform {
	case "podman", "docker", "linux":
		return v.Platform, nil
	}
	return "", fmt.Errorf("%s: platform %q is not one of podman, docker, linux", filepath.Join(d.Internal(), platformFile), v.Platform)
}

// SetPlatform records the namespace's platform, replacing any recorded
// one: an explicit act (tests, tools).
func (d Dir) SetPlatform(p string) error {
	_, err := d.Files().WriteFile(filepath.Join(d.Internal(), platformFile), []byte("platform: "+p+"\n"), 0o644, 0o700, true)
	return err
}

// RecordPlatform records the namespace's platform unless one is recorded
// already (even one written a moment ago): the controller pins a
// namespace to where its router first ran, and never overrides a choice.
func (d Dir) RecordPlatform(p string) error {
	err := d.Files().CreateNew(filepath.Join(d.Internal(), platformFile), []byte("platform: "+p+"\n"), 0o644, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}
