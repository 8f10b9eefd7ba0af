package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Options say what to package and where.
type Options struct {
	// Version is the release's version as git describe gives it.
	Version string
	// Root is the repository; Build holds linux-<arch>/site-controller;
	// Docs holds completions/ and man/ (the binary's own output); Out
	// receives the artifacts.
	Root, Build, Docs, Out string
	Arches                 []string
	// MTime is every file's time in the archives and packages (the
	// commit's time, for reproducible artifacts); zero: now.
	MTime time.Time
	// Maintainer is the package's Maintainer field.
	Maintainer string
}

// Name is the program and package name.
const Name = "site-controller"

// file is one file of a release: its content and mode, and where it goes
// in the archive and in the package ("" for none).
type file struct {
	data            []byte
	mode            os.FileMode
	archive, debDst string
}

// Make writes, for each architecture, <Name>-<version>-linux-<arch>.tar.gz
// and <Name>_<debian version>_<arch>.deb into o.Out, then SHA256SUMS over
// all of them. It returns the paths written.
func Make(o Options) ([]string, error) {
	if o.Version == "" {
		return nil, errors.New("no -version")
	}
	if o.MTime.IsZero() {
		o.MTime = time.Now().UTC().Truncate(time.Second)
	}
	if o.Maintainer == "" {
		o.Maintainer = "site-controller maintainers <site-controller@users.noreply.github.com>"
	}
	common, err := commonFiles(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("making %s: %w", o.Out, err)
	}
	var made []string
	for _, arch := range o.Arches {
		bin := filepath.Join(o.Build, "linux-"+arch, Name)
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("reading the %s binary: %w", arch, err)
		}
		if err := checkStatic(bin, arch); err != nil {
			return nil, err
		}
		all := append([]file{{data: data, mode: 0o755, archive: Name, debDst: "/usr/bin/" + Name}}, common...)
		tgz := filepath.Join(o.Out, fmt.Sprintf("%s-%s-linux-%s.tar.gz", Name, o.Version, arch))
		if err := writeArchive(tgz, fmt.Sprintf("%s-%s-linux-%s", Name, o.Version, arch), all, o.MTime); err != nil {
			return nil, err
		}
		pkg := filepath.Join(o.Out, fmt.Sprintf("%s_%s-1_%s.deb", Name, DebianVersion(o.Version), arch))
		if err := writeDeb(pkg, arch, o, all); err != nil {
			return nil, err
		}
		made = append(made, tgz, pkg)
	}
	sums, err := writeSums(filepath.Join(o.Out, "SHA256SUMS"), made)
	if err != nil {
		return nil, err
	}
	return append(made, sums), nil
}

// commonFiles are the files every architecture ships: README, LICENSE
// (when there is one), the systemd units (as in contrib/ for the archive;
// running /usr/bin/site-controller in the package), the completions and
// the man pages (gzipped in the package).
func commonFiles(o Options) ([]file, error) {
	read := func(path string) ([]byte, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		return data, nil
	}
	var out []file
	readme, err := read(filepath.Join(o.Root, "README.md"))
	if err != nil {
		return nil, err
	}
	out = append(out, file{data: readme, mode: 0o644, archive: "README.md", debDst: "/usr/share/doc/" + Name + "/README.md.gz"})
	for _, name := range []string{"LICENSE", "LICENSE.md", "COPYING"} {
		if data, err := os.ReadFile(filepath.Join(o.Root, name)); err == nil {
			out = append(out, file{data: data, mode: 0o644, archive: name, debDst: "/usr/share/doc/" + Name + "/copyright"})
			break
		}
	}
	for _, scope := range []string{"system", "user"} {
		rel := filepath.Join("contrib", "systemd", scope, Name+".service")
		unit, err := read(filepath.Join(o.Root, rel))
		if err != nil {
			return nil, err
		}
		out = append(out, file{data: unit, mode: 0o644, archive: rel})
		packaged, err := PackagedUnit(string(unit), scope)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		out = append(out, file{data: []byte(packaged), mode: 0o644, debDst: "/usr/lib/systemd/" + scope + "/" + Name + ".service"})
	}
	for _, c := range []struct{ name, dst string }{
		{Name + ".bash", "/usr/share/bash-completion/completions/" + Name},
		{"_" + Name, "/usr/share/zsh/vendor-completions/_" + Name},
		{Name + ".fish", "/usr/share/fish/vendor_completions.d/" + Name + ".fish"},
	} {
		data, err := read(filepath.Join(o.Docs, "completions", c.name))
		if err != nil {
			return nil, err
		}
		out = append(out, file{data: data, mode: 0o644, archive: "completions/" + c.name, debDst: c.dst})
	}
	pages, err := filepath.Glob(filepath.Join(o.Docs, "man", "*.1"))
	if err != nil || len(pages) == 0 {
		return nil, fmt.Errorf("no man pages in %s/man (site-controller man DIR writes them): %v", o.Docs, err)
	}
	sort.Strings(pages)
	for _, p := range pages {
		data, err := read(p)
		if err != nil {
			return nil, err
		}
		base := filepath.Base(p)
		out = append(out, file{data: data, mode: 0o644, archive: "man/man1/" + base, debDst: "/usr/share/man/man1/" + base + ".gz"})
	}
	return out, nil
}

// installNote replaces a contrib unit's "# Install: cp …" comment in the
// package, which installs the unit and enables nothing.
var installNote = map[string]string{
	"system": "# Installed by the site-controller package, which neither enables nor starts it:\n#   systemctl enable --now site-controller",
	"user":   "# Installed by the site-controller package, which neither enables nor starts it:\n#   systemctl --user enable --now site-controller",
}

// execStart matches the unit's ExecStart binary as contrib ships it (for
// a copy into /usr/local/bin, or ~/.local/bin for the user unit).
var execStart = regexp.MustCompile(`(?m)^ExecStart=(/usr/local/bin|%h/\.local/bin)/site-controller `)

// PackagedUnit is a contrib unit as the package installs it: ExecStart
// runs /usr/bin/site-controller, and its comment tells how to enable it
// instead of how to copy it.
func PackagedUnit(unit, scope string) (string, error) {
	if len(execStart.FindAllStringIndex(unit, -1)) != 1 {
		return "", fmt.Errorf("no single ExecStart=/usr/local/bin/site-controller or %%h/.local/bin/site-controller line to point at /usr/bin")
	}
	unit = execStart.ReplaceAllString(unit, "ExecStart=/usr/bin/site-controller ")
	var lines []string
	skipping := false
	for _, line := range strings.Split(unit, "\n") {
		switch {
		case strings.HasPrefix(line, "# Install:"):
			lines = append(lines, installNote[scope])
			skipping = true
		case skipping && strings.HasPrefix(line, "#   "):
		default:
			skipping = false
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n"), nil
}

// DebianVersion turns git describe's version into a Debian upstream
// version: no leading v, starting with a digit, no hyphen (the package's
// revision follows one): v1.2.3 → 1.2.3, v1.2.3-4-gabc → 1.2.3+4+gabc,
// abc1234-dirty (no tag yet) → 0.0.0+gitabc1234+dirty.
func DebianVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	v = strings.ReplaceAll(v, "-", "+")
	if v == "" || v[0] < '0' || v[0] > '9' {
		v = "0.0.0+git" + v
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', strings.ContainsRune(".+~", r):
			return r
		}
		return '+'
	}, v)
}

// checkStatic makes sure bin is a static Linux executable for arch.
func checkStatic(bin, arch string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("%s: not a Linux executable: %w", bin, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		return fmt.Errorf("%s: built for %s, not %s", bin, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked (build it with CGO_ENABLED=0)", bin)
		}
	}
	return nil
}

// writeArchive writes the files under dir/ into a gzipped tar at path,
// in a stable order, owned by root, all with time mtime.
func writeArchive(path, dir string, all []file, mtime time.Time) error {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	gz.ModTime = mtime
	tw := tar.NewWriter(gz)
	var entries []file
	for _, f := range all {
		if f.archive != "" {
			entries = append(entries, f)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].archive < entries[j].archive })
	dirs := map[string]bool{}
	for _, f := range entries {
		name := dir + "/" + f.archive
		for d := filepath.Dir(name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var dirList []string
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	hdr := func(name string, mode os.FileMode, size int64, typ byte) *tar.Header {
		return &tar.Header{Name: name, Mode: int64(mode), Size: size, Typeflag: typ, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatPAX}
	}
	for _, d := range dirList {
		if err := tw.WriteHeader(hdr(d+"/", 0o755, 0, tar.TypeDir)); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	for _, f := range entries {
		if err := tw.WriteHeader(hdr(dir+"/"+f.archive, f.mode, int64(len(f.data)), tar.TypeReg)); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return writeFile(path, buf.Bytes())
}

// gzipped compresses data as Debian wants man pages and documentation:
// best compression, no name and no time in the header.
func gzipped(data []byte) []byte {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	gz.Write(data)
	gz.Close()
	return buf.Bytes()
}

// writeDeb makes the Debian package with nfpm. It has no maintainer
// scripts: installing it starts and enables nothing, and removing it
// leaves no file of its own behind (the data home, /var/lib/skupper, is
// the daemon's, never the package's: dpkg --purge leaves it alone).
func writeDeb(path, arch string, o Options, all []file) error {
	stage, err := os.MkdirTemp("", "site-controller-deb-")
	if err != nil {
		return fmt.Errorf("staging the package: %w", err)
	}
	defer os.RemoveAll(stage)
	var contents files.Contents
	for i, f := range all {
		if f.debDst == "" {
			continue
		}
		data := f.data
		if strings.HasSuffix(f.debDst, ".gz") {
			data = gzipped(data)
		}
		src := filepath.Join(stage, fmt.Sprintf("%03d-%s", i, filepath.Base(f.debDst)))
		if err := os.WriteFile(src, data, 0o644); err != nil {
			return fmt.Errorf("staging %s: %w", f.debDst, err)
		}
		contents = append(contents, &files.Content{
			Source: src, Destination: f.debDst, Type: files.TypeFile,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: f.mode, MTime: o.MTime},
		})
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          Name,
		Arch:          arch,
		Platform:      "linux",
		Version:       DebianVersion(o.Version),
		VersionSchema: "none",
		Release:       "1",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    o.Maintainer,
		Homepage:      "https://github.com/site-controller/site-controller",
		Description: "Run Skupper v2 sites on Docker, Podman or Linux hosts\n" +
			"A daemon that turns directories of Skupper v2 resources (Site, Listener,\n" +
			"Connector, Link, ...) into running skupper-router sites on Docker, Podman or\n" +
			"systemd, without Kubernetes, and writes each resource's status back as files.\n" +
			"The package installs the systemd units and enables none of them.",
		MTime:           o.MTime,
		DisableGlobbing: true,
		Overridables:    nfpm.Overridables{Contents: contents, Deb: nfpm.Deb{Compression: "gzip"}},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return fmt.Errorf("package contents: %w", err)
	}
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return fmt.Errorf("making %s: %w", path, err)
	}
	return writeFile(path, buf.Bytes())
}

// writeSums writes SHA256SUMS (sha256sum's format, names relative to its
// directory) over paths.
func writeSums(path string, paths []string) (string, error) {
	var b strings.Builder
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("summing %s: %w", p, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("summing %s: %w", p, err)
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), filepath.Base(p))
	}
	return path, writeFile(path, []byte(b.String()))
}

// writeFile writes data to path through a temporary file.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
