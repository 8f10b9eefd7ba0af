package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/namespace"
)

// TestValidatePlatform: validate checks a namespace for the platform it
// runs on (its internal/platform.yaml, else --platform) and reports what
// a pass there reports (render's own words); with auto, which it does not
// resolve (it starts nothing), the checks of a platform are skipped and it
// says so once. It writes nothing.
func TestValidatePlatform(t *testing.T) {
	home := t.TempDir()
	dir, _ := namespace.Open(home, "lin")
	file := filepath.Join(dir.InputResources(), "r.yaml")
	fixture.WriteFile(t, file, "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: lin}\n"+
		"---\napiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata: {name: backend}\nspec:\n  routingKey: backend\n  selector: app=backend\n  port: 8080\n")
	other, _ := namespace.Open(home, "plain")
	fixture.WriteFile(t, filepath.Join(other.InputResources(), "r.yaml"), "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: plain}\n")
	want := file + ":10: Connector/backend: spec.selector: the linux platform has no containers to select; set spec.host to the server's address instead\n"
	before := testfs.Fingerprint(t, filepath.Join(home, "namespaces"))

	for _, tc := range []struct {
		args           []string
		out, errOut    string
		problems, fail bool
	}{
		{args: nil, errOut: "platform auto: validate asks no engine, so the checks of a platform (a Connector's selector on linux) were skipped for lin, plain, which have no internal/platform.yaml; give --platform to check them\n"},
		{args: []string{"lin"}, errOut: "platform auto: validate asks no engine, so the checks of a platform (a Connector's selector on linux) were skipped for lin, which has no internal/platform.yaml; give --platform to check them\n"},
		{args: []string{"--platform", "linux"}, out: want, problems: true},
		{args: []string{"--platform", "podman"}},
		{args: []string{"--platform", "none"}},
		{args: []string{"--platform", "mainframe"}, fail: true},
	} {
		out, errOut, err := run(t, append([]string{"validate", "--data-home", home}, tc.args...)...)
		switch {
		case tc.fail:
			if err == nil || errors.Is(err, errProblems) {
				t.Errorf("%v: %v, want a usage error", tc.args, err)
			}
			continue
		case tc.problems != errors.Is(err, errProblems), !tc.problems && err != nil:
			t.Errorf("%v: exit %v", tc.args, err)
		}
		if out != tc.out || errOut != tc.errOut {
			t.Errorf("%v: printed\n%q\n%q\nwant\n%q\n%q", tc.args, out, errOut, tc.out, tc.errOut)
		}
	}
	if after := testfs.Fingerprint(t, filepath.Join(home, "namespaces")); after != before {
		t.Errorf("validate wrote:\n%s\n---\n%s", before, after)
	}

	// the namespace's own platform wins over --platform, and needs no note
	if err := os.MkdirAll(dir.Internal(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := dir.SetPlatform("linux"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"auto", "podman"} {
		out, errOut, err := run(t, "validate", "--data-home", home, "--platform", p, "lin")
		if !errors.Is(err, errProblems) || out != want || errOut != "" {
			t.Errorf("recorded linux, --platform %s: %v\n%q\n%q", p, err, out, errOut)
		}
	}
	// and a pass there says the same
	_, errOut, err := run(t, "render", "--data-home", home, "lin")
	if !errors.Is(err, errProblems) || errOut != want {
		t.Errorf("render of the linux namespace: %v\n%q\nwant\n%q", err, errOut, want)
	}
	if strings.Contains(errOut, "platform auto") {
		t.Error("render noted the platform")
	}
}
