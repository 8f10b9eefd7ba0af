package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestShippedUnitsVerify runs systemd-analyze verify on the shipped unit
// files (with ExecStart pointed at this test binary, which exists): exit
// status 0 and no output at all.
func TestShippedUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, placeholder, scope string }{
		{"../../contrib/systemd/system/site-controller.service", "/usr/local/bin/site-controller", "--system"},
		{"../../contrib/systemd/user/site-controller.service", "%h/.local/bin/site-controller", "--user"},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "Type=notify") || !strings.Contains(string(data), tc.placeholder) {
				t.Fatalf("%s: not a Type=notify unit running %s", tc.file, tc.placeholder)
			}
			dir := t.TempDir()
			unit := filepath.Join(dir, "site-controller.service")
			if err := os.WriteFile(unit, bytes.ReplaceAll(data, []byte(tc.placeholder), []byte(self)), 0o644); err != nil {
				t.Fatal(err)
			}
			runtimeDir := filepath.Join(dir, "run")
			os.Mkdir(runtimeDir, 0o700)
			cmd := exec.Command(analyze, tc.scope, "verify", unit)
			cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtimeDir)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil || out.Len() > 0 {
				t.Errorf("systemd-analyze %s verify %s: %v\n%s", tc.scope, tc.file, err, out.String())
			}
		})
	}
}

// TestShippedSystemUnitSandbox: systemd's own assessment of the shipped
// system unit's sandbox (systemd-analyze security, offline) rates it OK.
func TestShippedSystemUnitSandbox(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=30", "../../contrib/systemd/system/site-controller.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for site-controller.service: (\d+\.\d) (\w+)`).FindSubmatch(out)
	if m == nil || string(m[2]) != "OK" {
		t.Errorf("exposure %q, want OK:\n%s", m, out)
	} else {
		t.Logf("exposure %s %s", m[1], m[2])
	}
}
