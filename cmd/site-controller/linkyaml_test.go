package main

import (
	"path/filepath"
	"strings"
	"testing"

	yaml3 "gopkg.in/yaml.v3"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/pkg/namespace"
)

// TestLinkGenerateHostsReadBack: `link generate --host H` for hosts YAML
// 1.1 reads as a boolean, null, a number or a date prints a link file
// whose Link goes to exactly H for Skupper's reader (sigs.k8s.io/yaml) and
// a YAML 1.2 one.
func TestLinkGenerateHostsReadBack(t *testing.T) {
	home := t.TempDir()
	dir, _ := namespace.Open(home, "east")
	hosts := []string{"yes", "null", "on", "012", "1e3", "2026-12-02"}
	fixture.WriteFile(t, filepath.Join(dir.InputResources(), "r.yaml"), "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: east}\n"+
		"---\napiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata: {name: x}\nspec:\n  bindHost: 127.0.0.1\n  roles: [{name: inter-router, port: 55991}]\n"+
		"  subjectAlternativeNames: [\""+strings.Join(hosts, `", "`)+"\"]\n")
	if _, errOut, err := run(t, "render", "--data-home", home, "east"); err != nil {
		t.Fatalf("render: %v %s", err, errOut)
	}
	for _, host := range hosts {
		out, _, err := run(t, "link", "generate", "--data-home", home, "--host", host, "east")
		if err != nil {
			t.Fatalf("link generate --host %s: %v", host, err)
		}
		_, link, ok := strings.Cut(out, "\n---\n")
		if !ok {
			t.Fatalf("no Link:\n%s", out)
		}
		for reader, unmarshal := range map[string]func([]byte, any) error{"yaml.v3": yaml3.Unmarshal, "sigs.k8s.io/yaml": func(b []byte, v any) error { return k8syaml.Unmarshal(b, v) }} {
			var l map[string]any
			if err := unmarshal([]byte(link), &l); err != nil {
				t.Fatalf("%s: %v\n%s", reader, err, link)
			}
			eps, _ := l["spec"].(map[string]any)["endpoints"].([]any)
			if len(eps) != 1 || eps[0].(map[string]any)["host"] != any(host) {
				t.Errorf("%s: --host %s: endpoints %v", reader, host, eps)
			}
		}
	}
}
