package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestDebianVersion(t *testing.T) {
	for _, tc := range []struct{ git, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-4-gabcdef0", "1.2.3+4+gabcdef0"},
		{"v1.2.3-rc.1", "1.2.3+rc.1"},
		{"v1.2.3-4-gabcdef0-dirty", "1.2.3+4+gabcdef0+dirty"},
		{"abcdef0", "0.0.0+gitabcdef0"},
		{"abcdef0-dirty", "0.0.0+gitabcdef0+dirty"},
		{"dev", "0.0.0+gitdev"},
		{"v1.0_beta/x", "1.0+beta+x"},
	} {
		if got := DebianVersion(tc.git); got != tc.want {
			t.Errorf("DebianVersion(%q) = %q, want %q", tc.git, got, tc.want)
		}
	}
}

// TestPackagedUnit: the package's units run /usr/bin/site-controller and
// say how to enable them, not how to copy them; a unit whose ExecStart
// is not the one contrib ships is refused rather than packaged wrong.
func TestPackagedUnit(t *testing.T) {
	for _, scope := range []string{"system", "user"} {
		data, err := os.ReadFile(filepath.Join("../../contrib/systemd", scope, "site-controller.service"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := PackagedUnit(string(data), scope)
		if err != nil {
			t.Fatalf("%s: %v", scope, err)
		}
		enable := map[string]string{"system": "#   systemctl enable --now site-controller", "user": "#   systemctl --user enable --now site-controller"}[scope]
		for _, want := range []string{"\nExecStart=/usr/bin/site-controller run ", "which neither enables nor starts it", enable, "\nType=notify\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s unit lacks %q:\n%s", scope, want, got)
			}
		}
		for _, gone := range []string{"/usr/local/bin", "%h/.local/bin", "# Install:", "cp site-controller.service"} {
			if strings.Contains(got, gone) {
				t.Errorf("%s unit still says %q:\n%s", scope, gone, got)
			}
		}
	}
	if _, err := PackagedUnit("[Service]\nExecStart=/opt/sc run\n", "system"); err == nil {
		t.Error("a unit with another ExecStart was packaged")
	}
}

// TestDebInstallsAndRemovesCleanly makes the release artifacts for this
// machine's architecture from `make docs` (the static binary, completions
// and man pages), then installs the .deb with dpkg into a scratch root
// (dpkg --root): every file where Debian wants it, the units running
// /usr/bin/site-controller (systemd-analyze verify), nothing started or
// enabled (the package has no maintainer scripts); dpkg -r removes every
// file, and dpkg -P leaves the data home alone. The artifacts are
// reproducible: made twice, the same bytes.
func TestDebInstallsAndRemovesCleanly(t *testing.T) {
	for _, tool := range []string{"make", "dpkg", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if os.Getuid() != 0 {
		t.Skip("dpkg --root installs files owned by root: needs root")
	}
	arch := goruntime.GOARCH
	dist := t.TempDir()
	const version = "v9.8.7-1-gabcdef0"
	mk := exec.Command("make", "-C", "../..", "--no-print-directory", "docs", "DIST="+dist, "VERSION="+version)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make docs: %v\n%s", err, out)
	}
	o := Options{Version: version, Root: "../..", Build: filepath.Join(dist, "build"), Docs: filepath.Join(dist, "build", "docs"),
		Out: filepath.Join(dist, "out"), Arches: []string{arch}, MTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	made, err := Make(o)
	if err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(o.Out, "site-controller_9.8.7+1+gabcdef0-1_"+arch+".deb")
	tgz := filepath.Join(o.Out, "site-controller-"+version+"-linux-"+arch+".tar.gz")
	if strings.Join(made, " ") != strings.Join([]string{tgz, pkg, filepath.Join(o.Out, "SHA256SUMS")}, " ") {
		t.Fatalf("made %v", made)
	}
	sums, _ := os.ReadFile(filepath.Join(o.Out, "SHA256SUMS"))
	check := exec.Command("sha256sum", "-c", "SHA256SUMS")
	check.Dir = o.Out
	if out, err := check.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != 2 {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
	for _, p := range made {
		st, _ := os.Stat(p)
		t.Logf("%s: %d bytes", filepath.Base(p), st.Size())
	}

	// the archive
	dir := "site-controller-" + version + "-linux-" + arch + "/"
	names := archiveNames(t, tgz)
	for _, want := range []string{"site-controller", "README.md", "contrib/systemd/system/site-controller.service",
		"contrib/systemd/user/site-controller.service", "completions/site-controller.bash", "completions/_site-controller",
		"completions/site-controller.fish", "man/man1/site-controller.1", "man/man1/site-controller-run.1"} {
		if !names[dir+want] {
			t.Errorf("the archive lacks %s%s", dir, want)
		}
	}

	// the package: no maintainer scripts, no dependencies
	ctrl, err := exec.Command("dpkg-deb", "--ctrl-tarfile", pkg).Output()
	if err != nil {
		t.Fatal(err)
	}
	var members []string
	tr := tar.NewReader(strings.NewReader(string(ctrl)))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Typeflag == tar.TypeReg {
			members = append(members, strings.TrimPrefix(h.Name, "./"))
		}
	}
	sort.Strings(members)
	if strings.Join(members, " ") != "control md5sums" {
		t.Errorf("control members %v, want control and md5sums only (no maintainer scripts: nothing is started or enabled)", members)
	}
	fields, _ := exec.Command("dpkg-deb", "-f", pkg).Output()
	for _, want := range []string{"Package: site-controller", "Version: 9.8.7+1+gabcdef0-1", "Architecture: " + arch, "Section: net"} {
		if !strings.Contains(string(fields), want+"\n") {
			t.Errorf("control lacks %q:\n%s", want, fields)
		}
	}
	if strings.Contains(string(fields), "Depends:") {
		t.Errorf("a static binary depends on nothing:\n%s", fields)
	}

	// installed into a scratch dpkg root
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		os.WriteFile(filepath.Join(root, f), nil, 0o644)
	}
	dpkg := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("dpkg", append([]string{"--root=" + root}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dpkg("-i", pkg)
	installed := installedFiles(t, root)
	for _, want := range []string{"/usr/bin/site-controller", "/usr/lib/systemd/system/site-controller.service",
		"/usr/lib/systemd/user/site-controller.service", "/usr/share/bash-completion/completions/site-controller",
		"/usr/share/zsh/vendor-completions/_site-controller", "/usr/share/fish/vendor_completions.d/site-controller.fish",
		"/usr/share/man/man1/site-controller.1.gz", "/usr/share/man/man1/site-controller-run.1.gz",
		"/usr/share/doc/site-controller/README.md.gz"} {
		if !installed[want] {
			t.Errorf("not installed: %s", want)
		}
	}
	for f := range installed {
		if !strings.HasPrefix(f, "/usr/") {
			t.Errorf("installed outside /usr: %s", f)
		}
	}
	out, err := exec.Command(filepath.Join(root, "usr/bin/site-controller"), "version").Output()
	if err != nil || string(out) != "site-controller "+version+"\n" {
		t.Errorf("the installed binary says %q %v", out, err)
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		for _, scope := range []string{"system", "user"} {
			unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd", scope, "site-controller.service"))
			if err != nil {
				t.Fatal(err)
			}
			// verified as installed, with ExecStart at the scratch root's binary
			tmp := filepath.Join(t.TempDir(), "site-controller.service")
			os.WriteFile(tmp, []byte(strings.ReplaceAll(string(unit), "/usr/bin/site-controller", filepath.Join(root, "usr/bin/site-controller"))), 0o644)
			runtimeDir := t.TempDir()
			cmd := exec.Command(analyze, "--"+scope, "verify", tmp)
			cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtimeDir)
			if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("systemd-analyze --%s verify of the installed unit: %v\n%s", scope, err, out)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(root, "etc")); err == nil {
		t.Error("installing wrote under /etc (an enabled unit?)")
	}

	// and into a clean Debian 12 root, as a user would install it
	t.Run("debian 12", func(t *testing.T) { installInDebian(t, pkg, version) })

	// removed, then purged: the data home stays
	dataFile := filepath.Join(root, "var/lib/skupper/namespaces/east/input/resources/site.yaml")
	os.MkdirAll(filepath.Dir(dataFile), 0o755)
	os.WriteFile(dataFile, []byte("kind: Site\n"), 0o644)
	dpkg("-r", "site-controller")
	if left := installedFiles(t, root); len(left) != 1 || !left["/var/lib/skupper/namespaces/east/input/resources/site.yaml"] {
		t.Errorf("after dpkg -r: %v", left)
	}
	dpkg("-i", pkg)
	dpkg("-P", "site-controller")
	if left := installedFiles(t, root); len(left) != 1 || !left["/var/lib/skupper/namespaces/east/input/resources/site.yaml"] {
		t.Errorf("after dpkg -P, the data home alone should be left: %v", left)
	}
	if st, _ := exec.Command("dpkg", "--root="+root, "-s", "site-controller").CombinedOutput(); !strings.Contains(string(st), "not installed") {
		t.Errorf("after dpkg -P: %s", st)
	}

	// reproducible
	o.Out = filepath.Join(dist, "again")
	if _, err := Make(o); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(o.Out, "SHA256SUMS")); string(again) != string(sums) {
		t.Errorf("made twice, different artifacts:\n%s\n%s", sums, again)
	}
}

// archiveNames lists a .tar.gz's entries.
func archiveNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
	}
	return names
}

// installedFiles lists the files under a scratch root, but dpkg's own.
func installedFiles(t *testing.T, root string) map[string]bool {
	t.Helper()
	files := map[string]bool{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel := "/" + strings.TrimPrefix(p, root+"/")
		if !strings.HasPrefix(rel, "/var/lib/dpkg/") {
			files[rel] = true
		}
		return nil
	})
	return files
}

// installInDebian installs the package with dpkg -i in a clean Debian 12
// root (the minbase root the router image's build keeps in
// /var/cache/skupper-router-image, unpacked afresh), chrooted: the binary
// runs (version, --help), bash finds its completion, the man pages are
// where man looks, and dpkg -P removes all of it but the data home.
func installInDebian(t *testing.T, pkg, version string) {
	tars, _ := filepath.Glob("/var/cache/skupper-router-image/rootfs-*-bookworm-*.tar")
	if len(tars) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("no Debian 12 root in /var/cache/skupper-router-image: scripts/with-engines.sh makes one with the router image")
		}
		t.Skip("no Debian 12 root in /var/cache/skupper-router-image (scripts/with-engines.sh makes one with the router image)")
	}
	if _, err := exec.LookPath("chroot"); err != nil {
		t.Skip("no chroot")
	}
	root := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	chroot := func(args ...string) string { t.Helper(); return run("chroot", append([]string{root}, args...)...) }
	run("tar", "-xf", tars[len(tars)-1], "-C", root)
	data, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp", "site-controller.deb"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if release := chroot("sh", "-c", ". /etc/os-release && echo $ID $VERSION_ID"); strings.TrimSpace(release) != "debian 12" {
		t.Fatalf("the root is %q, not Debian 12", release)
	}
	chroot("dpkg", "-i", "/tmp/site-controller.deb")
	if out := chroot("site-controller", "version"); !strings.HasPrefix(out, "site-controller "+version+"\n") {
		t.Errorf("site-controller version in Debian 12: %q", out)
	}
	if out := chroot("site-controller", "--help"); !strings.Contains(out, "Usage:") || !strings.Contains(out, "run ") {
		t.Errorf("site-controller --help in Debian 12:\n%s", out)
	}
	// bash-completion looks in /usr/share/bash-completion/completions by
	// command name; what it finds there makes the completion
	if out := chroot("bash", "-c", "source /usr/share/bash-completion/completions/site-controller && complete -p site-controller"); !strings.Contains(out, "site-controller") {
		t.Errorf("bash's completion of site-controller: %q", out)
	}
	// man looks in /usr/share/man/man1 (man-db's default path)
	for _, page := range []string{"site-controller.1.gz", "site-controller-run.1.gz"} {
		out := chroot("sh", "-c", "zcat /usr/share/man/man1/"+page+" | head -20")
		if !strings.Contains(out, ".TH ") {
			t.Errorf("%s is no man page:\n%s", page, out)
		}
	}
	dataFile := filepath.Join(root, "var/lib/skupper/namespaces/east/input/resources/site.yaml")
	os.MkdirAll(filepath.Dir(dataFile), 0o755)
	os.WriteFile(dataFile, []byte("kind: Site\n"), 0o644)
	chroot("dpkg", "-P", "site-controller")
	for _, gone := range []string{"usr/bin/site-controller", "usr/lib/systemd/system/site-controller.service",
		"usr/share/bash-completion/completions/site-controller", "usr/share/man/man1/site-controller.1.gz"} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("after dpkg -P, /%s is still there", gone)
		}
	}
	if _, err := os.Stat(dataFile); err != nil {
		t.Errorf("dpkg -P took the data home: %v", err)
	}
}
