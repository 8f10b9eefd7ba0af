// Package dump writes `site-controller debug dump`: one .tar.gz with what
// it takes to look into a host's sites from elsewhere — versions (the
// controller's, the engines', each router's), every namespace's input and
// statuses, its router configuration, what its running router says over
// management (the entities skstat shows), the router's container or unit
// and its last log lines, the daemon's metrics, and host facts.
//
// It carries no credential: key files are listed, never read; link files
// are listed; resource files are redacted (a Secret's data, every code,
// password or key becomes "<redacted>"); and every file of the archive
// passes ScrubKeys, which cuts out any private key block that got through.
package dump

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/site-controller/site-controller/pkg/namespace"
)

// Options say what to collect.
type Options struct {
	// DataHome is the absolute data home; Namespaces the namespaces to
	// collect (all when empty).
	DataHome   string
	Namespaces []string
	// Version is the controller's.
	Version string
	// HTTP is the running daemon's --http address, for /metrics ("":
	// looked for in the command line of a daemon of DataHome).
	HTTP string
	// Endpoints are the engine sockets to try, per platform (docker,
	// podman), in order: the first that answers as that engine is used.
	Endpoints map[string][]string
	// SystemdScope is "system" or "user": the manager of linux-platform
	// routers.
	SystemdScope string
	// RouterBinary is skrouterd for the linux platform ("" when absent).
	RouterBinary string
	// CallTimeout bounds each external call (engine, router, systemd,
	// journal, HTTP); 0: 10 seconds.
	CallTimeout time.Duration
	// Now is when the dump is made.
	Now time.Time
}

// Summary is what the dump found, written as summary.yaml.
type Summary struct {
	Controller struct {
		Version string `yaml:"version"`
		Go      string `yaml:"go"`
		OS      string `yaml:"os"`
	} `yaml:"controller"`
	Collected  time.Time               `yaml:"collected"`
	DataHome   string                  `yaml:"dataHome"`
	Daemon     *Daemon                 `yaml:"daemon,omitempty"`
	Engines    map[string]EngineInfo   `yaml:"engines,omitempty"`
	Namespaces map[string]*NamespaceOf `yaml:"namespaces"`
	// Problems are the things the dump could not collect, and why.
	Problems []string `yaml:"problems,omitempty"`
}

// EngineInfo is a container engine, or the linux platform's systemd and
// skrouterd.
type EngineInfo struct {
	Endpoint   string `yaml:"endpoint,omitempty"`
	Version    string `yaml:"version,omitempty"`
	APIVersion string `yaml:"apiVersion,omitempty"`
	Router     string `yaml:"router,omitempty"` // skrouterd --version (linux)
}

// NamespaceOf is what the dump says of one namespace.
type NamespaceOf struct {
	Platform string `yaml:"platform,omitempty"`
	SiteID   string `yaml:"siteId,omitempty"`
	// Router is the router's own word over management: its version, id
	// and mode; empty when it did not answer.
	RouterVersion string `yaml:"routerVersion,omitempty"`
	RouterID      string `yaml:"routerId,omitempty"`
	RouterMode    string `yaml:"routerMode,omitempty"`
	// Entities counts what management returned, per type.
	Entities map[string]int `yaml:"entities,omitempty"`
}

// Write collects the dump and writes it, gzipped, to w. Problems in
// collecting one part are written down in the summary and the rest goes
// on; an error is returned only when the archive itself cannot be
// written.
func Write(ctx context.Context, w io.Writer, o Options) (*Summary, error) {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if !filepath.IsAbs(o.DataHome) {
		return nil, fmt.Errorf("data home %q is not an absolute path", o.DataHome)
	}
	gz := gzip.NewWriter(w)
	a := &archive{tw: tar.NewWriter(gz), prefix: "site-controller-dump-" + o.Now.UTC().Format("20060102-150405"), now: o.Now}
	s := &Summary{Collected: o.Now.UTC(), DataHome: o.DataHome, Namespaces: map[string]*NamespaceOf{}, Engines: map[string]EngineInfo{}}
	s.Controller.Version, s.Controller.Go, s.Controller.OS = o.Version, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH
	a.summary = s

	a.add("README.txt", []byte(readme))
	collectHost(a)
	collectDaemon(ctx, a, o)
	var engines engineSet
	engines.found, engines.missing = connectEngines(ctx, a, o)

	names := o.Namespaces
	if len(names) == 0 {
		all, err := namespace.List(o.DataHome)
		if err != nil {
			a.problem("listing namespaces", err)
		}
		names = all
	}
	for _, name := range names {
		dir, err := namespace.Open(o.DataHome, name)
		if err != nil {
			a.problem("namespace "+name, err)
			continue
		}
		collectNamespace(ctx, a, o, dir, engines)
	}

	data, err := yaml.Marshal(s)
	if err != nil {
		return s, fmt.Errorf("writing the summary: %w", err)
	}
	a.add("summary.yaml", data)
	if a.err != nil {
		return s, a.err
	}
	if err := a.tw.Close(); err != nil {
		return s, fmt.Errorf("writing the archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return s, fmt.Errorf("writing the archive: %w", err)
	}
	return s, nil
}

const readme = `site-controller debug dump

summary.yaml             versions (controller, engines, routers), what was collected, and what could not be
host/                    kernel, OS, limits (open files, inotify)
daemon/                  the running daemon's command line, limits and /metrics, when one was found
engines/                 each container engine's /version
namespaces/<ns>/
  files.txt              every file of the namespace directory: mode, size, time (no content)
  certificates.txt       every certificate: subject, issuer, validity, names; key files are never read
  input/resources/...    the input, redacted
  runtime/resources/...  the statuses, redacted
  runtime/router/skrouterd.json
  runtime/tokens/...     what grant servers answered, redacted
  internal/...           the controller's state, redacted
  router/entities/*.json what the running router says over management (skstat -g -c -l -n -a -m and more)
  router/container.json  docker or podman inspect of the router container
  router/unit.txt        systemctl show and cat of the router's unit (linux)
  router/log.txt         its last 1000 log lines (the container's, or the unit's journal)

No credential is in it: a Secret's data, every code (AccessGrant, AccessToken), password and key is
"<redacted>", link files are only listed, and any private key block is cut out.
`

// archive writes the dump's entries under one directory.
type archive struct {
	tw      *tar.Writer
	prefix  string
	now     time.Time
	summary *Summary
	err     error
}

// maxFile is the most of one file the dump carries.
const maxFile = 4 << 20

// add writes one file of the dump; ScrubKeys has the last word on it.
func (a *archive) add(name string, data []byte) {
	if a.err != nil {
		return
	}
	if len(data) > maxFile {
		data = append(data[:maxFile:maxFile], []byte("\n<cut: the rest was longer than the dump takes>\n")...)
	}
	data = ScrubKeys(data)
	hdr := &tar.Header{Name: a.prefix + "/" + name, Mode: 0o644, Size: int64(len(data)), ModTime: a.now, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(hdr); err != nil {
		a.err = fmt.Errorf("writing the archive: %w", err)
		return
	}
	if _, err := a.tw.Write(data); err != nil {
		a.err = fmt.Errorf("writing the archive: %w", err)
	}
}

// addJSON writes v as indented JSON.
func (a *archive) addJSON(name string, v any) {
	data, err := marshalJSON(v)
	if err != nil {
		a.problem(name, err)
		return
	}
	a.add(name, data)
}

// problem records what could not be collected.
func (a *archive) problem(what string, err error) {
	a.summary.Problems = append(a.summary.Problems, what+": "+err.Error())
}

// collectNamespace adds one namespace: its files (listed), certificates
// (described), input, statuses, configuration and state (redacted), and
// its router.
func collectNamespace(ctx context.Context, a *archive, o Options, dir namespace.Dir, engines engineSet) {
	ns := &NamespaceOf{}
	a.summary.Namespaces[dir.Name] = ns
	base := "namespaces/" + dir.Name + "/"
	if st, err := os.Stat(dir.Path); err != nil || !st.IsDir() {
		a.problem("namespace "+dir.Name, fmt.Errorf("no directory %s", dir.Path))
		return
	}
	ns.Platform, _ = dir.Platform()
	ns.SiteID, _ = dir.PeekSiteID()

	var listing, certInfo strings.Builder
	err := filepath.WalkDir(dir.Path, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&listing, "%s: %v\n", path, err)
			return nil
		}
		rel, _ := filepath.Rel(dir.Path, path)
		info, err := d.Info()
		if err != nil {
			return nil
		}
		fmt.Fprintf(&listing, "%s %10d %s %s\n", info.Mode(), info.Size(), info.ModTime().UTC().Format(time.RFC3339), rel)
		if d.IsDir() || !info.Mode().IsRegular() {
			return nil
		}
		switch contentOf(rel) {
		case "yaml":
			if data, ok := readSmall(a, path, info); ok {
				a.add(base+rel, RedactYAML(data))
			}
		case "json":
			if data, ok := readSmall(a, path, info); ok {
				a.add(base+rel, RedactJSON(data))
			}
		case "certificate":
			if data, ok := readSmall(a, path, info); ok {
				describeCertificates(&certInfo, rel, data)
			}
		}
		return nil
	})
	if err != nil {
		a.problem("listing "+dir.Path, err)
	}
	a.add(base+"files.txt", []byte(listing.String()))
	a.add(base+"certificates.txt", []byte(certInfo.String()))
	collectRouter(ctx, a, o, dir, ns, engines)
}

// contentOf says what the dump takes of a namespace file (rel to the
// namespace directory): "yaml" or "json" (redacted), "certificate"
// (described), or "" (listed only: keys, link files, anything else).
func contentOf(rel string) string {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	ext := strings.ToLower(filepath.Ext(rel))
	base := parts[len(parts)-1]
	switch {
	case len(parts) >= 2 && parts[0] == "runtime" && parts[1] == "links":
		return "" // link files: a client key for another site
	case strings.HasSuffix(base, ".crt"):
		return "certificate"
	case strings.HasSuffix(base, ".key") || strings.HasPrefix(base, "."):
		return ""
	case len(parts) >= 2 && parts[0] == "input" && parts[1] == "resources",
		len(parts) >= 2 && parts[0] == "runtime" && (parts[1] == "resources" || parts[1] == "tokens" || parts[1] == "router"),
		parts[0] == "internal":
		switch ext {
		case ".yaml", ".yml":
			return "yaml"
		case ".json":
			return "json"
		case "":
			// site-id, management-port; not the stores of stats and sums
			// (status-digest, pass-record)
			if parts[0] == "internal" && (base == "site-id" || base == "management-port") {
				return "yaml"
			}
		}
	}
	return ""
}

// readSmall reads a file the dump carries, up to maxFile.
func readSmall(a *archive, path string, info fs.FileInfo) ([]byte, bool) {
	if info.Size() > maxFile {
		a.problem("reading "+path, fmt.Errorf("%d bytes, more than the dump takes", info.Size()))
		return nil, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		a.problem("reading "+path, err)
		return nil, false
	}
	return data, true
}

// describeCertificates writes what each certificate in a PEM file says:
// never a key.
func describeCertificates(b *strings.Builder, rel string, data []byte) {
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			fmt.Fprintf(b, "%s: a %q block, not shown\n", rel, strings.ReplaceAll(block.Type, "PRIVATE KEY", "private key"))
			continue
		}
		n++
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			fmt.Fprintf(b, "%s #%d: does not parse: %v\n", rel, n, err)
			continue
		}
		var ips []string
		for _, ip := range c.IPAddresses {
			ips = append(ips, ip.String())
		}
		fmt.Fprintf(b, "%s #%d: subject %q issuer %q serial %s not before %s not after %s CA %t DNS %v IP %v\n", rel, n,
			c.Subject.String(), c.Issuer.String(), c.SerialNumber.Text(16), c.NotBefore.UTC().Format(time.RFC3339),
			c.NotAfter.UTC().Format(time.RFC3339), c.IsCA, c.DNSNames, ips)
	}
	if n == 0 {
		fmt.Fprintf(b, "%s: no certificate\n", rel)
	}
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// withTimeout runs f with the call deadline.
func withTimeout(ctx context.Context, o Options, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
	defer cancel()
	return f(ctx)
}

// trimLines keeps the last n lines of text.
func trimLines(text []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimRight(text, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return append(bytes.Join(lines, []byte("\n")), '\n')
}
