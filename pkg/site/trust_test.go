package site

import (
	"slices"
	"strings"
	"testing"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
)

// TestBuildRefusesInternalCAs: Build itself refuses the site's internal
// credentials where they would leave the site, whatever validation let
// through (the resources are changed after validation here): nothing is
// issued by them, no CA is made for a name that is none, and no link file
// is written for the RouterAccess.
func TestBuildRefusesInternalCAs(t *testing.T) {
	const resourcesYAML = "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: s}\n" +
		"---\napiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata: {name: a}\nspec:\n  bindHost: 127.0.0.1\n  roles: [{name: inter-router, port: 55991}]\n" +
		"---\napiVersion: skupper.io/v2alpha1\nkind: Certificate\nmetadata: {name: c}\nspec: {ca: skupper-site-ca, subject: c, client: true}\n"
	for _, tc := range []struct {
		name   string
		change func(ns *resources.Namespace)
		want   string
	}{{
		name:   "RouterAccess issuer skupper-local-ca",
		change: func(ns *resources.Namespace) { ns.RouterAccess[0].Spec.Issuer = "skupper-local-ca" },
		want:   "RouterAccess/a: spec.issuer: skupper-local-ca is the CA of the router's local management listener; it cannot sign credentials that leave the site",
	}, {
		name:   "RouterAccess issuer a leaf",
		change: func(ns *resources.Namespace) { ns.RouterAccess[0].Spec.Issuer = "skupper-local-client" },
		want:   `RouterAccess/a: spec.issuer: "skupper-local-client" is reserved: it is the controller's management client certificate, not a CA; name a CA (a signing Certificate, input/issuers/<name>, or skupper-site-ca)`,
	}, {
		name:   "RouterAccess serving the management listener's credential",
		change: func(ns *resources.Namespace) { ns.RouterAccess[0].Spec.TLSCredentials = "skupper-local-server" },
		want:   `RouterAccess/a: spec.tlsCredentials: "skupper-local-server" is reserved: it is the local management listener's server certificate, which the site keeps for itself; the router would present it to peers and trust its CA for them: choose another name`,
	}, {
		name:   "Certificate issued by the service CA",
		change: func(ns *resources.Namespace) { ns.Certificates[0].Spec.CA = "skupper-service-ca" },
		want:   "Certificate/c: spec.ca: skupper-service-ca is the CA of the site's generated Listener certificates; it cannot sign credentials that leave the site",
	}, {
		// not a bypass: a Site may be named so, and its linkAccess's
		// server credential is named after it
		name: "Site named after the management listener's credential",
		change: func(ns *resources.Namespace) {
			ns.Site.Metadata.Name, ns.Site.Spec.LinkAccess = "skupper-local-server", "default"
		},
		want: `Site/s: spec.linkAccess: "skupper-local-server" is reserved: it is the local management listener's server certificate, which the site keeps for itself; the router would present it to peers and trust its CA for them, as the server credential of the linkAccess, which is named after the Site: rename the Site, or give it a RouterAccess instead`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			docs, probs := resources.Decode("input/resources/r.yaml", []byte(resourcesYAML))
			ns := resources.Build("trust", docs, probs)
			if len(ns.Problems) > 0 {
				t.Fatal(ns.Problems)
			}
			tc.change(ns)
			in := Input{
				Namespace: ns, Platform: "podman", Version: "test", Now: testNow, Dir: "$NSDIR",
				SiteID: testSiteID, ManagementPort: 5671, HostNames: testHostNames, UserCerts: map[string]UserCert{},
				Ports: map[string]namespace.PortGrant{},
			}
			for _, c := range PortClaims(ns) {
				in.Ports[c.Key] = namespace.PortGrant{Port: max(c.Port, c.From)}
			}
			d, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range d.Problems {
				got = append(got, p.ID+": "+p.Field+": "+p.Message)
			}
			if !slices.Equal(got, []string{tc.want}) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.want)
			}
			for name := range d.NewIssuers {
				if _, reserved := resources.ReservedCredentials[name]; reserved && !strings.HasSuffix(name, "-ca") {
					t.Errorf("a CA was made named %s", name)
				}
			}
			internal := InternalCAs{}
			for name := range resources.InternalCAs {
				if f, ok := d.NewIssuers[name]; ok {
					cert, err := parseCert(f.Cert)
					if err != nil {
						t.Fatal(err)
					}
					internal[name] = cert
				}
			}
			for name, f := range d.Credentials {
				if strings.HasPrefix(name, "skupper-local-") {
					continue // the management credentials themselves
				}
				if signer := internal.Signer(f.Cert); signer != "" {
					t.Errorf("credential %s is signed by %s", name, signer)
				}
			}
			for name, data := range d.LinkFiles {
				if err := internal.RefuseLinkFile(data); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}
