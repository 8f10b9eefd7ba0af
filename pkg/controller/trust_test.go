package controller

import (
	"context"
	"fmt"
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

// trustSite is a Site with a Listener whose credential the service CA
// issues, so that a first pass makes both internal CAs.
const trustSite = "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: s}\n" +
	"---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: ok}\nspec: {routingKey: ok, host: 127.0.0.1, port: 1000, tlsCredentials: ok-tls}\n"

// internalSite makes namespace bad under a new data home and runs a pass,
// which generates the site's internal CAs and management credentials.
func internalSite(t *testing.T) (string, namespace.Dir) {
	t.Helper()
	home := t.TempDir()
	dir, _ := namespace.Open(home, "bad")
	fixture.WriteFile(t, filepath.Join(dir.InputResources(), "r.yaml"), trustSite)
	if _, err := newTestReconciler(home).Reconcile(context.Background(), "bad"); err != nil {
		t.Fatal(err)
	}
	return home, dir
}

// copyFiles copies the files names from directory from to directory to.
func copyFiles(t *testing.T, from, to string, names ...string) {
	t.Helper()
	for _, n := range names {
		fixture.WriteFile(t, filepath.Join(to, n), string(mustRead(t, filepath.Join(from, n))))
	}
}

// TestInternalCAsNeverLeave: a copy of an internal CA under another name
// (its key) cannot sign what leaves the site, and no credential from the
// input can make the router trust the management CA or present what it
// signed: each is refused with the exact reason, and no link file the site
// writes carries a certificate of an internal CA.
func TestInternalCAsNeverLeave(t *testing.T) {
	const access = "---\napiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata: {name: a}\nspec:\n  bindHost: 127.0.0.1\n  roles: [{name: inter-router, port: 55991}]\n"
	const link = "---\napiVersion: skupper.io/v2alpha1\nkind: Link\nmetadata: {name: to-east}\nspec:\n  endpoints: [{name: inter-router, host: east.example, port: \"55671\"}]\n  tlsCredentials: %s\n"
	localCA := func(d namespace.Dir) string { return filepath.Join(d.RuntimeIssuers(), routerconfig.LocalCA) }
	local := func(d namespace.Dir, name string) string { return filepath.Join(d.RuntimeCerts(), name) }
	otherCA := func(t *testing.T) (*certs.CA, certs.Files) {
		ca, f, err := certs.NewCA("other", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return ca, f
	}
	for _, tc := range []struct {
		name string
		// setup writes input beside trustSite and returns the resources
		setup func(t *testing.T, d namespace.Dir) string
		want  []string
	}{{
		name: "a CA of the user's own may issue",
		setup: func(t *testing.T, d namespace.Dir) string {
			_, f := otherCA(t)
			fixture.WriteFile(t, filepath.Join(d.InputIssuers(), "team-ca", certs.CertFile), string(f.Cert))
			fixture.WriteFile(t, filepath.Join(d.InputIssuers(), "team-ca", certs.KeyFile), string(f.Key))
			return strings.Replace(access, "  bindHost", "  issuer: team-ca\n  bindHost", 1)
		},
	}, {
		name: "RouterAccess issued by a copy of the management CA",
		setup: func(t *testing.T, d namespace.Dir) string {
			copyFiles(t, localCA(d), filepath.Join(d.InputIssuers(), "team-ca"), certs.CertFile, certs.KeyFile)
			return strings.Replace(access, "  bindHost", "  issuer: team-ca\n  bindHost", 1)
		},
		want: []string{"input/resources/r.yaml:14: RouterAccess/a: spec.issuer: team-ca has the key of skupper-local-ca, the CA of the router's local management listener; it cannot sign credentials that leave the site"},
	}, {
		name: "Site's default issuer a copy of the service CA",
		setup: func(t *testing.T, d namespace.Dir) string {
			copyFiles(t, filepath.Join(d.RuntimeIssuers(), routerconfig.ServiceCA), filepath.Join(d.InputIssuers(), "team-ca"), certs.CertFile, certs.KeyFile)
			return "---\napiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: s}\nspec: {linkAccess: default, defaultIssuer: team-ca}\n"
		},
		want: []string{"input/resources/r.yaml:13: Site/s: spec.defaultIssuer: team-ca has the key of skupper-service-ca, the CA of the site's generated Listener certificates; it cannot sign credentials that leave the site"},
	}, {
		name: "Certificate issued by a copy of the management CA",
		setup: func(t *testing.T, d namespace.Dir) string {
			copyFiles(t, localCA(d), filepath.Join(d.InputIssuers(), "team-ca"), certs.CertFile, certs.KeyFile)
			return "---\napiVersion: skupper.io/v2alpha1\nkind: Certificate\nmetadata: {name: admin}\nspec: {ca: team-ca, subject: admin, client: true}\n"
		},
		want: []string{"input/resources/r.yaml:13: Certificate/admin: spec.ca: team-ca has the key of skupper-local-ca, the CA of the router's local management listener; it cannot sign credentials that leave the site"},
	}, {
		name: "Link with the controller's management credential",
		setup: func(t *testing.T, d namespace.Dir) string {
			copyFiles(t, local(d, routerconfig.LocalClient), filepath.Join(d.InputCerts(), "mgmt"), certs.CAFile, certs.CertFile, certs.KeyFile)
			return fmt.Sprintf(link, "mgmt")
		},
		want: []string{"input/resources/r.yaml:15: Link/to-east: spec.tlsCredentials: input/certs/mgmt: its ca.crt holds skupper-local-ca, the CA of the router's local management listener: the router would accept what that CA signs from whoever connects"},
	}, {
		name: "Link Secret with a certificate the management CA signed",
		setup: func(t *testing.T, d namespace.Dir) string {
			_, other := otherCA(t)
			client := local(d, routerconfig.LocalClient)
			indent := func(b []byte) string {
				return "    " + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n    ") + "\n"
			}
			return fmt.Sprintf(link, "peer") + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: peer}\nstringData:\n" +
				"  ca.crt: |\n" + indent(other.Cert) +
				"  tls.crt: |\n" + indent(mustRead(t, filepath.Join(client, certs.CertFile))) +
				"  tls.key: |\n" + indent(mustRead(t, filepath.Join(client, certs.KeyFile)))
		},
		want: []string{"input/resources/r.yaml:15: Link/to-east: spec.tlsCredentials: Secret peer: its tls.crt is signed by skupper-local-ca, the CA of the router's local management listener: it cannot leave the site"},
	}, {
		name: "RouterAccess serving the management listener's credential",
		setup: func(t *testing.T, d namespace.Dir) string {
			copyFiles(t, local(d, routerconfig.LocalServer), filepath.Join(d.InputCerts(), "srv"), certs.CAFile, certs.CertFile, certs.KeyFile)
			return strings.Replace(access, "  bindHost", "  tlsCredentials: srv\n  bindHost", 1)
		},
		want: []string{"input/resources/r.yaml:14: RouterAccess/a: spec.tlsCredentials: input/certs/srv: its ca.crt holds skupper-local-ca, the CA of the router's local management listener: the router would accept what that CA signs from whoever connects"},
	}, {
		name: "Connector presenting the controller's client certificate",
		setup: func(t *testing.T, d namespace.Dir) string {
			copyFiles(t, local(d, routerconfig.LocalClient), filepath.Join(d.InputCerts(), "cc"), certs.CAFile, certs.CertFile, certs.KeyFile)
			return "---\napiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata: {name: c}\nspec: {routingKey: c, host: 127.0.0.1, port: 5671, tlsCredentials: cc, useClientCert: true}\n"
		},
		want: []string{"input/resources/r.yaml:13: Connector/c: spec.tlsCredentials: input/certs/cc: its ca.crt holds skupper-local-ca, the CA of the router's local management listener: the router would accept what that CA signs from whoever connects"},
	}, {
		name: "Listener presenting a certificate the management CA signed",
		setup: func(t *testing.T, d namespace.Dir) string {
			copyFiles(t, local(d, routerconfig.LocalServer), filepath.Join(d.InputCerts(), "ls"), certs.CertFile, certs.KeyFile)
			return "---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: l}\nspec: {routingKey: l, host: 127.0.0.1, port: 1001, tlsCredentials: ls}\n"
		},
		want: []string{"input/resources/r.yaml:13: Listener/l: spec.tlsCredentials: input/certs/ls: its tls.crt is signed by skupper-local-ca, the CA of the router's local management listener: it cannot leave the site"},
	}, {
		name: "MultiKeyListener verifying its clients with the management CA",
		setup: func(t *testing.T, d namespace.Dir) string {
			ca, _ := otherCA(t)
			f, err := ca.Issue(certs.Leaf{CommonName: "mk", Hosts: []string{"127.0.0.1"}, Server: true}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			fixture.WriteFile(t, filepath.Join(d.InputCerts(), "mk", certs.CertFile), string(f.Cert))
			fixture.WriteFile(t, filepath.Join(d.InputCerts(), "mk", certs.KeyFile), string(f.Key))
			copyFiles(t, localCA(d), filepath.Join(d.InputCerts(), "mk"), certs.CAFile)
			return "---\napiVersion: skupper.io/v2alpha1\nkind: MultiKeyListener\nmetadata: {name: m}\nspec:\n  host: 127.0.0.1\n  port: 1002\n  tlsCredentials: mk\n  requireClientCert: true\n  strategy: {priority: {routingKeys: [a]}}\n"
		},
		want: []string{"input/resources/r.yaml:16: MultiKeyListener/m: spec.tlsCredentials: input/certs/mk: its ca.crt holds skupper-local-ca, the CA of the router's local management listener: the router would accept what that CA signs from whoever connects"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			home, dir := internalSite(t)
			resources := tc.setup(t, dir)
			if strings.Contains(resources, "kind: Site\n") {
				fixture.WriteFile(t, filepath.Join(dir.InputResources(), "r.yaml"), strings.Replace(trustSite, "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: s}\n", "# the Site is below\n#\n#\n", 1)+resources)
			} else {
				fixture.WriteFile(t, filepath.Join(dir.InputResources(), "r.yaml"), trustSite+resources)
			}
			res := reconcileBad(t, home, tc.want)
			if res.Config == nil {
				t.Fatal("nothing rendered")
			}
			internal, err := site.LoadInternalCAs(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(internal) != 2 {
				t.Fatalf("internal CAs %v", internal)
			}
			files, _ := filepath.Glob(filepath.Join(dir.Path, "runtime", "links", "*"))
			for _, f := range files {
				if err := internal.RefuseLinkFile(mustRead(t, f)); err != nil {
					t.Errorf("%s: %v", filepath.Base(f), err)
				}
			}
			if tc.want == nil && len(files) == 0 {
				t.Error("no link file written for the RouterAccess a CA of the user's own issues")
			}
		})
	}
}

// TestIssueLinkRefusesInternalCAs: a grant's answer is never signed by an
// internal CA, by name or by key, even for a RouterAccess no validation
// looked at.
func TestIssueLinkRefusesInternalCAs(t *testing.T) {
	_, dir := internalSite(t)
	copyFiles(t, filepath.Join(dir.RuntimeIssuers(), routerconfig.LocalCA), filepath.Join(dir.InputIssuers(), "team-ca"), certs.CertFile, certs.KeyFile)
	if _, _, err := certs.EnsureCA(filepath.Join(dir.RuntimeIssuers(), site.SiteCA), site.SiteCA, testNow); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ issuer, want string }{
		{routerconfig.LocalCA, "skupper-local-ca is the CA of the router's local management listener; it cannot sign credentials that leave the site"},
		{routerconfig.ServiceCA, "skupper-service-ca is the CA of the site's generated Listener certificates; it cannot sign credentials that leave the site"},
		{"team-ca", "team-ca has the key of skupper-local-ca, the CA of the router's local management listener; it cannot sign credentials that leave the site"},
		{site.SiteCA, ""},
	} {
		t.Run(tc.issuer, func(t *testing.T) {
			a := &site.Access{Name: "a", Issuer: tc.issuer, Hosts: []string{"127.0.0.1"}, Roles: []site.AccessRole{{Role: "inter-router", Port: 55991}}}
			answer, err := issueLink(dir, a, "127.0.0.1", "l", "peer", testNow)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want == "":
				internal, err := site.LoadInternalCAs(dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := internal.RefuseLinkFile(answer); err != nil {
					t.Error(err)
				}
			case err == nil || err.Error() != tc.want:
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
