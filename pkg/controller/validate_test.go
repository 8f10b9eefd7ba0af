package controller

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
)

// fixturePlatform is the platform the namespace of a bad fixture runs on
// (its internal/platform.yaml): a "# platform: P" line among the
// comments that open it, else "".
func fixturePlatform(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			break
		}
		if p, ok := strings.CutPrefix(line, "# platform: "); ok {
			return strings.TrimSpace(p)
		}
	}
	return ""
}

// validateExcluded are the bad fixtures TestValidateMatchesPass leaves
// out, each with the reason: problems only a running router or engine
// finds (none of the fixtures has one yet).
var validateExcluded = map[string]string{}

// TestValidateMatchesPass: every bad fixture gives the same problems, in
// the same words, through validate (ValidateNamespace, what the command
// runs) as through a daemon pass (Reconcile, no runtime) on the same
// platform: each platform a namespace can run on, given as the daemon's
// --platform (and validate's), or the namespace's own
// internal/platform.yaml (the fixture's "# platform:"), which wins over
// both.
func TestValidateMatchesPass(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		name := filepath.Base(f)
		data := mustRead(t, f)
		recorded := fixturePlatform(data)
		options := []string{"none", "podman", "linux"}
		if recorded != "" {
			options = []string{"none", "podman"} // the recorded one wins
		}
		for _, option := range options {
			t.Run(strings.TrimSuffix(name, ".bad.yaml")+"/"+option, func(t *testing.T) {
				if why, ok := validateExcluded[name]; ok {
					t.Skip(why)
				}
				home := t.TempDir()
				dir, _ := namespace.Open(home, "bad")
				if err := os.MkdirAll(dir.InputResources(), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir.InputResources(), name), data, 0o644); err != nil {
					t.Fatal(err)
				}
				if recorded != "" {
					if err := dir.SetPlatform(recorded); err != nil {
						t.Fatal(err)
					}
				}
				hostNames := func() []string { return testHostNames }
				v, err := ValidateNamespace(dir, ValidateOptions{Platform: option, HostNames: hostNames})
				if err != nil {
					t.Fatal(err)
				}
				if want := cmp.Or(recorded, option); v.Platform != want || v.Recorded != (recorded != "") {
					t.Errorf("validated for %q (recorded %v), want %q", v.Platform, v.Recorded, want)
				}
				r := New(Options{DataHome: home, Platform: option, Version: "test", Now: func() time.Time { return testNow }, HostNames: hostNames})
				defer r.Close()
				res, err := r.Reconcile(context.Background(), "bad")
				if err != nil {
					t.Fatal(err)
				}
				if res.Platform != v.Platform {
					t.Errorf("the pass ran on %s, validate checked %s", res.Platform, v.Platform)
				}
				validated, passed := problemLines(v.Problems), problemLines(res.Problems)
				if !slices.Equal(validated, passed) {
					t.Errorf("validate found:\n%s\nthe pass found:\n%s", strings.Join(validated, "\n"), strings.Join(passed, "\n"))
				}
				if len(passed) == 0 {
					t.Error("the fixture has no problem")
				}
			})
		}
	}
}

func problemLines(ps []resources.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// TestValidateUnknownPlatform: with no platform known (validate's auto:
// it starts nothing and asks no engine), the checks of a platform are
// skipped; the namespace's internal/platform.yaml is its platform all the
// same.
func TestValidateUnknownPlatform(t *testing.T) {
	home := t.TempDir()
	dir, _ := namespace.Open(home, "ns")
	data := mustRead(t, "testdata/bad/connector-selector-linux.bad.yaml")
	if err := os.MkdirAll(dir.InputResources(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir.InputResources(), "r.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, option := range []string{"", "auto"} {
		v, err := ValidateNamespace(dir, ValidateOptions{Platform: option})
		if err != nil || v.Platform != "" || v.Recorded || len(v.Problems) != 0 {
			t.Errorf("platform %q: %+v %v", option, v, err)
		}
	}
	if err := dir.SetPlatform("linux"); err != nil {
		t.Fatal(err)
	}
	v, err := ValidateNamespace(dir, ValidateOptions{Platform: "auto"})
	if err != nil || v.Platform != "linux" || !v.Recorded || len(v.Problems) != 1 || !strings.Contains(v.Problems[0].Message, noContainersOnLinux+useHostInstead) {
		t.Errorf("recorded linux: %+v %v", v, err)
	}
	// what validate reads, it leaves as it was
	if err := os.WriteFile(filepath.Join(dir.Internal(), "platform.yaml"), []byte("platform: mainframe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ValidateNamespace(dir, ValidateOptions{}); err == nil || !strings.Contains(err.Error(), `platform "mainframe" is not one of podman, docker, linux`) {
		t.Errorf("a broken platform.yaml: %v", err)
	}
}
