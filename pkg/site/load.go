package site

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
)

// Reserve reads the stored identity of a namespace's site and the
// credentials Build may need, and reserves what the site holds: its site
// id and management port on first use (adopted from a router
// configuration this controller did not write, Skupper's own say; a new
// management port avoids the namespace's own Listener ports), and the
// ports of its Listeners and RouterAccesses in the data home's port
// registry (memo: the registry as this controller last wrote it). Nothing
// else is written.
func Reserve(dir namespace.Dir, ns *resources.Namespace, memo *namespace.PortMemo) (Input, error) {
	return load(dir, ns, memo, false)
}

// Peek is Reserve without writing anything: the site id and ports a first
// Reserve would reserve are worked out, not reserved (validate).
func Peek(dir namespace.Dir, ns *resources.Namespace) (Input, error) {
	return load(dir, ns, nil, true)
}

func load(dir namespace.Dir, ns *resources.Namespace, memo *namespace.PortMemo, readOnly bool) (Input, error) {
	in := Input{Dir: dir.Path, Namespace: ns}
	// read only when needed
	var old routerconfig.Config
	adopt := func() routerconfig.Config {
		if old == nil {
			if data, err := os.ReadFile(dir.RouterConfig()); err == nil {
				old, _ = routerconfig.Parse(data) // unreadable: start over
			}
		}
		return old
	}
	avoid := map[int]bool{}
	for _, l := range ns.Listeners {
		avoid[int(l.Spec.Port)] = true
	}
	adoptID := func() string { m, _ := adopt().Metadata(); return m.ID }
	adoptPort := func() int { p, _ := adopt().ManagementPort(); return p }
	var err error
	if readOnly {
		in.SiteID, err = dir.PeekSiteID()
		if err == nil {
			in.ManagementPort, err = dir.PeekManagementPort(adoptPort, routerconfig.DefaultManagementPort, avoid)
		}
	} else {
		in.SiteID, err = dir.SiteID(adoptID)
		if err == nil {
			in.ManagementPort, err = dir.ManagementPort(memo, adoptPort, routerconfig.DefaultManagementPort, avoid)
		}
	}
	if err != nil {
		return in, err
	}
	if in.OtherPorts, err = dir.ManagementPorts(memo); err != nil {
		return in, fmt.Errorf("reading the reserved management ports: %w", err)
	}
	if in.Ports, in.PortsChanged, err = dir.ClaimPorts(memo, PortClaims(ns), !readOnly); err != nil {
		return in, fmt.Errorf("reserving ports: %w", err)
	}
	if in.Issuers, err = loadIssuers(dir); err != nil {
		return in, err
	}
	in.UserCerts = map[string]UserCert{}
	names, err := subdirs(dir.InputCerts())
	if err != nil {
		return in, err
	}
	for _, name := range names {
		f, err := certs.Read(filepath.Join(dir.InputCerts(), name))
		if err != nil {
			// the file named from the namespace directory:
			// input/certs/x/ca.crt: not a regular file (a named pipe)
			err = fmt.Errorf("input/certs/%s/%w", name, err)
		}
		in.UserCerts[name] = UserCert{Files: f, Err: err}
	}
	in.Current = map[string]certs.Files{}
	if names, err = subdirs(dir.RuntimeCerts()); err != nil {
		return in, err
	}
	for _, name := range names {
		if f, err := certs.Read(filepath.Join(dir.RuntimeCerts(), name)); err == nil {
			in.Current[name] = f // unreadable: issued again
		}
	}
	return in, nil
}

// loadIssuers reads the site's CAs: input/issuers/<name> wins over
// runtime/issuers/<name>; one whose files are missing is left out (a
// generated one is created when needed).
func loadIssuers(dir namespace.Dir) (map[string]Issuer, error) {
	out := map[string]Issuer{}
	for _, src := range []struct {
		dir, rel string
		user     bool
	}{{dir.InputIssuers(), "input/issuers", true}, {dir.RuntimeIssuers(), "runtime/issuers", false}} {
		names, err := subdirs(src.dir)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if _, done := out[name]; done {
				continue
			}
			f, err := certs.Read(filepath.Join(src.dir, name))
			var ca *certs.CA
			if err == nil {
				ca, err = certs.ParseCA(f)
			}
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				err = fmt.Errorf("%s/%s/%w", src.rel, name, err)
			}
			out[name] = Issuer{CA: ca, Err: err, User: src.user}
		}
	}
	return out, nil
}

// subdirs lists the directories in dir (following symbolic links), none
// when dir is missing; hidden ones are skipped.
func subdirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && st.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
