package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/site"
)

// TestLinkGenerateRefusesInternalCAs: link generate prints the link file
// the site wrote, but never one whose client certificate an internal CA
// of the site signed (one an older version wrote, or one put there by
// hand): that certificate would manage the router.
func TestLinkGenerateRefusesInternalCAs(t *testing.T) {
	home := t.TempDir()
	dir, _ := namespace.Open(home, "east")
	fixture.WriteFile(t, filepath.Join(dir.InputResources(), "r.yaml"), "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: east}\n"+
		"---\napiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata: {name: x}\nspec:\n  bindHost: 127.0.0.1\n  roles: [{name: inter-router, port: 55991}]\n")
	if _, errOut, err := run(t, "render", "--data-home", home, "east"); err != nil {
		t.Fatalf("render: %v %s", err, errOut)
	}
	out, _, err := run(t, "link", "generate", "--data-home", home, "east")
	if err != nil || !strings.Contains(out, "kind: Link") {
		t.Fatalf("link generate: %v\n%s", err, out)
	}

	file := filepath.Join(dir.Path, "runtime", "links", "link-x-127.0.0.1.yaml")
	for _, ca := range []string{routerconfig.LocalCA, routerconfig.ServiceCA} {
		t.Run(ca, func(t *testing.T) {
			issuer, _, err := certs.EnsureCA(filepath.Join(dir.RuntimeIssuers(), ca), ca, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			client, err := issuer.Issue(certs.Leaf{CommonName: "client-x", Client: true}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			server, err := os.ReadFile(filepath.Join(dir.RuntimeCerts(), "x", certs.CAFile))
			if err != nil {
				t.Fatal(err)
			}
			forged := site.LinkYAML("link-x", "127.0.0.1", []site.AccessRole{{Role: "inter-router", Port: 55991}}, certs.Files{CA: server, Cert: client.Cert, Key: client.Key})
			fixture.WriteFile(t, file, string(forged))
			out, _, err := run(t, "link", "generate", "--data-home", home, "east")
			want := file + ": the client certificate of Secret link-x is signed by " + ca + ", " + map[string]string{
				routerconfig.LocalCA:   "the CA of the router's local management listener",
				routerconfig.ServiceCA: "the CA of the site's generated Listener certificates",
			}[ca] + ": it cannot leave the site (let the daemon or render write the link files again)"
			if err == nil || err.Error() != want {
				t.Errorf("link generate: %v\nwant: %s", err, want)
			}
			if out != "" {
				t.Errorf("printed:\n%s", out)
			}
		})
	}
}
