package controller

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/site"
	"github.com/site-controller/site-controller/pkg/status"
)

// badCases maps each testdata/bad/*.bad.yaml file to the exact problems it
// must produce. Every file also holds a valid Site s and Listener ok (except
// where the case is about the Site), which must still be rendered.
var badCases = map[string][]string{
	"certificate.bad.yaml": {
		"input/resources/certificate.bad.yaml:19: Certificate/no-ca: spec.ca: required: the CA that issues it (a signing Certificate, input/issuers/<name>, or skupper-site-ca)",
		`input/resources/certificate.bad.yaml:28: Certificate/intermediate: spec.ca: no CA "no-ca": name a signing Certificate, a CA in input/issuers/no-ca, or skupper-site-ca`,
		`input/resources/certificate.bad.yaml:37: Certificate/unknown-ca: spec.ca: no CA "nosuch": name a signing Certificate, a CA in input/issuers/nosuch, or skupper-site-ca`,
		`input/resources/certificate.bad.yaml:44: Certificate/skupper-site-ca: metadata.name: "skupper-site-ca" is reserved: it is the site CA that issues link credentials, which the site generates for itself; choose another name`,
		"input/resources/certificate.bad.yaml:64: Certificate/loop-a: spec.ca: the signing Certificates loop-a → loop-b → loop-a sign each other: one of them must be a root (leave its spec.ca out)",
		"input/resources/certificate.bad.yaml:73: Certificate/loop-b: spec.ca: the signing Certificates loop-b → loop-a → loop-b sign each other: one of them must be a root (leave its spec.ca out)",
		"input/resources/certificate.bad.yaml:82: Certificate/under-loop: spec.ca: the signing Certificates loop-a → loop-b → loop-a sign each other: one of them must be a root (leave its spec.ca out)",
		"input/resources/certificate.bad.yaml:91: Certificate/management-intermediate: spec.ca: skupper-local-ca is the CA of the router's local management listener; it cannot sign credentials that leave the site",
	},
	"site-default-issuer.bad.yaml": {
		"input/resources/site-default-issuer.bad.yaml:11: Site/s: spec.defaultIssuer: skupper-local-ca is the CA of the router's local management listener; it cannot sign credentials that leave the site",
	},
	"site-link-access-credential.bad.yaml": {
		`input/resources/site-link-access-credential.bad.yaml:9: Site/skupper-local-server: spec.linkAccess: "skupper-local-server" is reserved: it is the local management listener's server certificate, which the site keeps for itself; the router would present it to peers and trust its CA for them, as the server credential of the linkAccess, which is named after the Site: rename the Site, or give it a RouterAccess instead`,
	},
	"router-access-issuer.bad.yaml": {
		"input/resources/router-access-issuer.bad.yaml:22: RouterAccess/local: spec.issuer: skupper-local-ca is the CA of the router's local management listener; it cannot sign credentials that leave the site",
		"input/resources/router-access-issuer.bad.yaml:32: RouterAccess/service: spec.issuer: skupper-service-ca is the CA of the site's generated Listener certificates; it cannot sign credentials that leave the site",
		`input/resources/router-access-issuer.bad.yaml:43: RouterAccess/leaf: spec.issuer: "skupper-local-client" is reserved: it is the controller's management client certificate, not a CA; name a CA (a signing Certificate, input/issuers/<name>, or skupper-site-ca)`,
	},
	"access-grant-issuer.bad.yaml": {
		"input/resources/access-grant-issuer.bad.yaml:32: AccessGrant/local: spec.issuer: skupper-local-ca is the CA of the router's local management listener; it cannot sign credentials that leave the site",
		"input/resources/access-grant-issuer.bad.yaml:39: AccessGrant/service: spec.issuer: skupper-service-ca is the CA of the site's generated Listener certificates; it cannot sign credentials that leave the site",
	},
	"certificate-ca.bad.yaml": {
		"input/resources/certificate-ca.bad.yaml:21: Certificate/admin: spec.ca: skupper-local-ca is the CA of the router's local management listener; it cannot sign credentials that leave the site",
		"input/resources/certificate-ca.bad.yaml:31: Certificate/impostor: spec.ca: skupper-service-ca is the CA of the site's generated Listener certificates; it cannot sign credentials that leave the site",
		`input/resources/certificate-ca.bad.yaml:41: Certificate/leaf: spec.ca: "skupper-local-server" is reserved: it is the local management listener's server certificate, not a CA; name a CA (a signing Certificate, input/issuers/<name>, or skupper-site-ca)`,
	},
	"router-access-tls-credentials.bad.yaml": {
		`input/resources/router-access-tls-credentials.bad.yaml:22: RouterAccess/mgmt: spec.tlsCredentials: "skupper-local-server" is reserved: it is the local management listener's server certificate, which the site keeps for itself; the router would present it to peers and trust its CA for them: choose another name`,
		`input/resources/router-access-tls-credentials.bad.yaml:30: RouterAccess/skupper-local-client: metadata.name: "skupper-local-client" is reserved: it is the controller's management client certificate, which the site keeps for itself; the router would present it to peers and trust its CA for them, as the server credential named after a RouterAccess without spec.tlsCredentials: choose another name, or set spec.tlsCredentials`,
	},
	"link-tls-credentials.bad.yaml": {
		`input/resources/link-tls-credentials.bad.yaml:20: Link/to-east: spec.tlsCredentials: "skupper-local-client" is reserved: it is the controller's management client certificate, which the site generates for itself; choose another name`,
	},
	"multikey.bad.yaml": {
		"input/resources/multikey.bad.yaml:22: MultiKeyListener/both: spec.strategy: give one of priority and weighted, not both",
		"input/resources/multikey.bad.yaml:32: MultiKeyListener/none: spec.strategy: required: priority (routing keys in order) or weighted (routing keys with weights)",
		"input/resources/multikey.bad.yaml:45: MultiKeyListener/weights: spec.strategy.weighted.routingKeys.a: weight must be 1 or more, got 0",
		`input/resources/multikey.bad.yaml:56: MultiKeyListener/twice: spec.strategy.priority.routingKeys[2]: "a" is listed twice`,
		"input/resources/multikey.bad.yaml:64: MultiKeyListener/overlap: spec.port: 0.0.0.0:1000 overlaps 127.0.0.1:1000 of Listener/ok (input/resources/multikey.bad.yaml:13)",
	},
	"access-grant.bad.yaml": {
		"input/resources/access-grant.bad.yaml:20: AccessGrant/grant: spec.redemptionsAllowed: must be 0 (meaning 1) or more, got -1",
		`input/resources/access-grant.bad.yaml:21: AccessGrant/grant: spec.expirationWindow: "soon" is not a positive duration such as 15m or 2h`,
		"input/resources/access-grant.bad.yaml:22: AccessGrant/grant: spec.code: too short to guard a link: use at least 8 characters, or leave it out to have one generated",
	},
	"access-token.bad.yaml": {
		"input/resources/access-token.bad.yaml:19: AccessToken/token: spec.code: required",
		`input/resources/access-token.bad.yaml:20: AccessToken/token: spec.url: "http://east.example.com:8081/abc" is not an https:// URL`,
		"input/resources/access-token.bad.yaml:21: AccessToken/token: spec.ca: not a PEM certificate",
	},
	"link-missing-secret.bad.yaml": {
		`input/resources/link-missing-secret.bad.yaml:20: Link/to-east: spec.tlsCredentials: Secret "link-east" not found: put the Secret in input/resources (a link file carries it) or its ca.crt, tls.crt and tls.key in input/certs/link-east/`,
	},
	"link-no-endpoint-for-role.bad.yaml": {
		"input/resources/link-no-endpoint-for-role.bad.yaml:21: Link/to-east: spec.endpoints: no inter-router endpoint (this is an interior site; the Link has edge)",
	},
	"link-to-itself.bad.yaml": {
		"input/resources/link-to-itself.bad.yaml:32: Link/to-myself: spec.endpoints[0]: 127.0.0.1:55991 is this site's own RouterAccess/access: a site cannot link to itself",
	},
	"link-without-secret.bad.yaml": {
		"input/resources/link-without-secret.bad.yaml:19: Link/to-east: spec.tlsCredentials: required: the name of the Secret (or input/certs/<name>/) with the client certificate, its key and the peer's CA",
	},
	"router-access-edge-site.bad.yaml": {
		"input/resources/router-access-edge-site.bad.yaml:22: RouterAccess/access: spec.roles: an edge site accepts no links; remove this RouterAccess or make the Site interior",
	},
	"router-access-same-port.bad.yaml": {
		"input/resources/router-access-same-port.bad.yaml:29: RouterAccess/second: spec.roles: port 55992 of role edge is already used by RouterAccess/first",
	},
	"attached-connector-binding.bad.yaml": {
		"input/resources/attached-connector-binding.bad.yaml:19: AttachedConnectorBinding/db: spec.routingKey: required",
		"input/resources/attached-connector-binding.bad.yaml:20: AttachedConnectorBinding/db: spec.connectorNamespace: names this namespace; it must name the namespace directory of the AttachedConnector",
		`input/resources/attached-connector-binding.bad.yaml:27: AttachedConnectorBinding/cache: spec.connectorNamespace: "Team_A" is not a lowercase RFC 1123 name: use a-z, 0-9 and '-', starting and ending with a letter or digit`,
		"input/resources/attached-connector-binding.bad.yaml:34: AttachedConnector/web: spec.selector: required",
		"input/resources/attached-connector-binding.bad.yaml:34: AttachedConnector/web: spec.siteNamespace: required",
		"input/resources/attached-connector-binding.bad.yaml:36: AttachedConnector/web: spec.tlsCredentials: not supported yet for an AttachedConnector on this platform; use a Connector with spec.selector in the site's namespace for TLS to the server",
		"input/resources/attached-connector-binding.bad.yaml:43: AttachedConnector/api: spec.siteNamespace: names this namespace; an AttachedConnector serves the site of another namespace directory (use a Connector with spec.selector here)",
		"input/resources/attached-connector-binding.bad.yaml:44: AttachedConnector/api: spec.selector: invalid label selector: the ( at character 8 is never closed: end the list of values with )",
		"input/resources/attached-connector-binding.bad.yaml:45: AttachedConnector/api: spec.port: must be between 1 and 65535, got 0",
	},
	"alias-bomb.bad.yaml": {
		"input/resources/alias-bomb.bad.yaml:15: document expands to more than 100000 nodes through its aliases; write it out without so many aliases",
	},
	"missing-kind.bad.yaml": {
		"input/resources/missing-kind.bad.yaml:15: kind: required; expected one of Site, Listener, Connector, MultiKeyListener, Link, RouterAccess, AccessGrant, AccessToken, Certificate, AttachedConnector, AttachedConnectorBinding, Secret",
		"input/resources/missing-kind.bad.yaml:21: kind: required; expected one of Site, Listener, Connector, MultiKeyListener, Link, RouterAccess, AccessGrant, AccessToken, Certificate, AttachedConnector, AttachedConnectorBinding, Secret",
	},
	"broken-second-file.bad.yaml": {
		"input/resources/broken-second-file.bad.yaml:15: invalid YAML: did not find expected ',' or ']'",
	},
	"broken-yaml.bad.yaml": {
		"input/resources/broken-yaml.bad.yaml:20: invalid YAML: did not find expected ',' or ']'",
	},
	"connector-selector-linux.bad.yaml": {
		"input/resources/connector-selector-linux.bad.yaml:24: Connector/backend: spec.selector: the linux platform has no containers to select; set spec.host to the server's address instead",
	},
	"connector-selector.bad.yaml": {
		"input/resources/connector-selector.bad.yaml:21: Connector/unclosed: spec.selector: invalid label selector: the ( at character 21 is never closed: end the list of values with )",
		`input/resources/connector-selector.bad.yaml:30: Connector/bad-key: spec.selector: invalid label selector: "-app=backend": key "-app": a label name is 1 to 63 characters, [A-Za-z0-9] at both ends and [-_.A-Za-z0-9] between`,
		"input/resources/connector-selector.bad.yaml:39: Connector/blank: spec.selector: empty: it would select every container; name the labels of the servers (app=backend)",
		"input/resources/connector-selector.bad.yaml:46: Connector/neither: spec.host: required: the server's host name or address (or spec.selector, to select containers on the docker and podman platforms)",
	},
	"duplicate-name.bad.yaml": {
		"input/resources/duplicate-name.bad.yaml:18: Listener/ok: metadata.name: Listener/ok is already defined at input/resources/duplicate-name.bad.yaml:6",
	},
	"edge-ha.bad.yaml": {
		"input/resources/edge-ha.bad.yaml:7: Site/s: spec.ha: an edge site cannot be HA; set spec.edge or spec.ha, not both",
	},
	"foreign-apiversion.bad.yaml": {
		`input/resources/foreign-apiversion.bad.yaml:15: Listener/old: apiVersion: unsupported apiVersion "skupper.io/v1" for Listener; expected skupper.io/v2alpha1`,
	},
	"invalid-host.bad.yaml": {
		`input/resources/invalid-host.bad.yaml:21: Listener/badhost: spec.host: "Not_A.Host!" is not an IP address or a lowercase hostname`,
	},
	"link-endpoint.bad.yaml": {
		"input/resources/link-endpoint.bad.yaml:20: Link/to-east: spec.cost: must be 1 or more, got 0",
		`input/resources/link-endpoint.bad.yaml:24: Link/to-east: spec.endpoints[0].port: must be a port between 1 and 65535, got "http"`,
	},
	"listener-same-address.bad.yaml": {
		"input/resources/listener-same-address.bad.yaml:31: Listener/same-b: spec.port: 127.0.0.1:3000 overlaps 127.0.0.1:3000 of Listener/same-a (input/resources/listener-same-address.bad.yaml:22)",
	},
	"listener-wildcard-overlap.bad.yaml": {
		"input/resources/listener-wildcard-overlap.bad.yaml:31: Listener/loopback: spec.port: 127.0.0.1:3000 overlaps 0.0.0.0:3000 of Listener/any (input/resources/listener-wildcard-overlap.bad.yaml:22)",
	},
	"missing-routing-key.bad.yaml": {
		"input/resources/missing-routing-key.bad.yaml:19: Listener/nokey: spec.routingKey: required",
	},
	"namespace-mismatch.bad.yaml": {
		`input/resources/namespace-mismatch.bad.yaml:19: Listener/elsewhere: metadata.namespace: "other" does not match the namespace directory "bad"; leave it empty or set it to "bad"`,
	},
	"no-site.bad.yaml": {
		"input/resources: no Site defined; a namespace needs exactly one Site",
	},
	"port-70000.bad.yaml": {
		"input/resources/port-70000.bad.yaml:22: Listener/big: spec.port: must be between 1 and 65535, got 70000",
	},
	"port-abc.bad.yaml": {
		`input/resources/port-abc.bad.yaml:22: Listener/word: spec.port: must be an integer, got "abc"`,
	},
	"port-negative.bad.yaml": {
		"input/resources/port-negative.bad.yaml:22: Listener/negative: spec.port: must be between 1 and 65535, got -1",
	},
	"port-zero.bad.yaml": {
		"input/resources/port-zero.bad.yaml:22: Listener/zero: spec.port: must be between 1 and 65535, got 0",
	},
	"reserved-credential.bad.yaml": {
		`input/resources/reserved-credential.bad.yaml:23: Listener/steal: spec.tlsCredentials: "skupper-local-server" is reserved: it is the local management listener's server certificate, which the site generates for itself; choose another name`,
		`input/resources/reserved-credential.bad.yaml:33: Connector/ca: spec.tlsCredentials: "skupper-site-ca" is reserved: it is the site CA that issues link credentials, which the site generates for itself; choose another name`,
	},
	"router-access-role.bad.yaml": {
		`input/resources/router-access-role.bad.yaml:22: RouterAccess/access: spec.roles[0].name: invalid role "normal"; valid roles are inter-router, edge`,
	},
	"two-sites.bad.yaml": {
		`input/resources/two-sites.bad.yaml:18: Site/t: metadata.name: only one Site per namespace; Site/s (input/resources/two-sites.bad.yaml:1) is the site of "bad"`,
	},
	"type-udp.bad.yaml": {
		`input/resources/type-udp.bad.yaml:23: Listener/dns: spec.type: unsupported type "udp"; only tcp is supported`,
	},
	"underscore-name.bad.yaml": {
		`input/resources/underscore-name.bad.yaml:18: Listener/back_end: metadata.name: "back_end" is not a lowercase RFC 1123 name: use a-z, 0-9 and '-', starting and ending with a letter or digit`,
	},
	"unknown-field.bad.yaml": {
		"input/resources/unknown-field.bad.yaml:23: Listener/extra: spec.routingkey: unknown field; did you mean routingKey?",
	},
	"unknown-kind.bad.yaml": {
		`input/resources/unknown-kind.bad.yaml:16: Listner/typo: kind: unknown kind "Listner"; did you mean Listener?`,
	},
	"uppercase-name.bad.yaml": {
		`input/resources/uppercase-name.bad.yaml:18: Listener/Backend: metadata.name: "Backend" is not a lowercase RFC 1123 name: use a-z, 0-9 and '-', starting and ending with a letter or digit`,
	},
}

// reconcileBad runs validate and a pass over namespace "bad" under home
// and fails the test unless the problems of each are exactly want.
func reconcileBad(t *testing.T, home string, want []string) *Result {
	t.Helper()
	dir, _ := namespace.Open(home, "bad")
	v, err := ValidateNamespace(dir, ValidateOptions{Platform: "podman", HostNames: func() []string { return testHostNames }})
	if err != nil {
		t.Fatal(err)
	}
	validated := v.Problems
	res, err := newTestReconciler(home).Reconcile(context.Background(), "bad")
	if err != nil {
		t.Fatal(err)
	}
	for what, problems := range map[string][]resources.Problem{"the pass": res.Problems, "validate": validated} {
		var got []string
		for _, p := range problems {
			got = append(got, p.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s found:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	return res
}

func TestBadInput(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.bad.yaml")
	if len(files) != len(badCases) {
		t.Errorf("%d fixture files, %d cases: every file needs its expected problems", len(files), len(badCases))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".bad.yaml"), func(t *testing.T) {
			want, ok := badCases[name]
			if !ok {
				t.Fatalf("no expected problems for %s", name)
			}
			home := t.TempDir()
			dir := filepath.Join(home, "namespaces", "bad", "input", "resources")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
			if p := fixturePlatform(data); p != "" {
				nsDir, _ := namespace.Open(home, "bad")
				if err := nsDir.SetPlatform(p); err != nil {
					t.Fatal(err)
				}
			}
			res := reconcileBad(t, home, want)

			if name == "edge-ha.bad.yaml" {
				// the Site itself is bad: nothing can be rendered, the
				// last good configuration stays (see TestLastGoodConfigStays)
				if res.Config != nil {
					t.Error("rendered a router config for an invalid Site")
				}
				return
			}
			if name == "no-site.bad.yaml" {
				if res.Config != nil {
					t.Error("rendered a router config without a Site")
				}
				st, err := status.Read(filepath.Join(home, "namespaces", "bad", "runtime", "resources", "Listener-ok.yaml"))
				if err != nil || st.Status != status.Pending || !strings.Contains(st.Message, "waiting for a Site") {
					t.Errorf("Listener/ok status without a Site: %+v, %v", st, err)
				}
				return
			}
			// the valid resources beside the bad one are rendered
			if res.Config == nil {
				t.Fatal("no router config rendered")
			}
			checkSchema(t, res.Config)
			// no link file carries a certificate of the site's internal
			// CAs (the management listener accepts what skupper-local-ca
			// signs)
			nsDir, _ := namespace.Open(home, "bad")
			internal, err := site.LoadInternalCAs(nsDir)
			if err != nil {
				t.Fatal(err)
			}
			linkFiles, _ := filepath.Glob(filepath.Join(nsDir.Path, "runtime", "links", "*"))
			for _, f := range linkFiles {
				if err := internal.RefuseLinkFile(mustRead(t, f)); err != nil {
					t.Errorf("%s: %v", filepath.Base(f), err)
				}
			}
			found := slices.ContainsFunc(res.Config, func(e routerconfig.Entity) bool {
				return e.Type == "tcpListener" && e.Name() == "listener/ok" && e.Attrs["port"] == "1000"
			})
			if !found {
				t.Error("tcpListener listener/ok missing from the config")
			}
			// each problem of a resource is in that resource's status
			for _, p := range res.Problems {
				if p.ID == "" || p.Warning {
					continue
				}
				kind, rname, _ := strings.Cut(p.ID, "/")
				st, err := status.Read(filepath.Join(home, "namespaces", "bad", "runtime", "resources", status.FileName(kind, rname)))
				if err != nil {
					t.Errorf("%s: no status file: %v", p.ID, err)
					continue
				}
				if strings.Contains(p.Message, "already defined") {
					// the first definition owns the status file and says
					// the second is ignored
					if !strings.Contains(st.Message, "another definition at input/resources/duplicate-name.bad.yaml:15 is ignored") {
						t.Errorf("%s status message %q does not report the duplicate", p.ID, st.Message)
					}
					continue
				}
				if !strings.Contains(st.Message, p.Short()) {
					t.Errorf("%s status message %q lacks %q", p.ID, st.Message, p.Short())
				}
				if st.Status != status.Error {
					t.Errorf("%s status is %s, want Error", p.ID, st.Status)
				}
			}
		})
	}
}

// TestLastGoodConfigStays breaks the Site of a rendered namespace: the
// router config stays as it was, the Site's status says why, and fixing
// the Site renders again.
func TestLastGoodConfigStays(t *testing.T) {
	home, dir := setupNamespace(t, "testdata/render/matched", "good")
	r := newTestReconciler(home)
	if _, err := r.Reconcile(context.Background(), "good"); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(dir.RouterConfig())
	if err != nil {
		t.Fatal(err)
	}
	site := dir.Join("input", "resources", "site.yaml")
	if err := os.WriteFile(site, []byte("apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: one\nspec:\n  edge: true\n  ha: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// the Site in resources.yaml is now a duplicate of a broken one: remove it
	data, _ := os.ReadFile(dir.Join("input", "resources", "resources.yaml"))
	_, rest, _ := strings.Cut(string(data), "---\n")
	if err := os.WriteFile(dir.Join("input", "resources", "resources.yaml"), []byte(rest), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := r.Reconcile(context.Background(), "good")
	if err != nil {
		t.Fatal(err)
	}
	if res.Config != nil || res.ConfigChanged {
		t.Error("an invalid Site was rendered")
	}
	kept, _ := os.ReadFile(dir.RouterConfig())
	if string(kept) != string(good) {
		t.Error("the last good router config was changed while the Site is invalid")
	}
	st, err := status.Read(dir.Join("runtime", "resources", "Site-one.yaml"))
	if err != nil || st.Status != status.Error || !strings.Contains(st.Message, "an edge site cannot be HA") {
		t.Errorf("Site status: %+v, %v", st, err)
	}
	if err := os.WriteFile(site, []byte("apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: one\nspec:\n  edge: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = r.Reconcile(context.Background(), "good")
	if err != nil {
		t.Fatal(err)
	}
	if !res.ConfigChanged || !strings.Contains(string(mustRead(t, dir.RouterConfig())), `"mode": "edge"`) {
		t.Error("fixing the Site did not render the edge router")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestGeneratedNameCollisions: resources whose names or ports meet what the
// site generates for itself are refused with the exact reason, and a
// generated credential shared by Listeners names every one's host.
func TestGeneratedNameCollisions(t *testing.T) {
	site := "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: s}\n"
	listener := func(name, host string, port int, creds string) string {
		return fmt.Sprintf("---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: %s}\nspec: {routingKey: k%s, host: %q, port: %d, tlsCredentials: %q}\n", name, name, host, port, creds)
	}
	userCreds := func(t *testing.T, home string, caOnly ...string) {
		ca, _, err := certs.EnsureCA(filepath.Join(t.TempDir(), "ca"), "user-ca", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"a", "a-profile"} {
			dir := filepath.Join(fixture.NSDir(home, "bad"), "input", "certs", name)
			if _, err := certs.EnsureLeaf(dir, ca, certs.Leaf{CommonName: "server", Hosts: []string{"server"}, Server: true}, time.Now()); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(caOnly, name) {
				os.Remove(filepath.Join(dir, certs.CertFile))
				os.Remove(filepath.Join(dir, certs.KeyFile))
			}
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, home string) string // returns the resources
		want  []string
		check func(t *testing.T, home string)
	}{{
		name: "listener on this site's management port",
		setup: func(t *testing.T, home string) string {
			fixture.WriteFile(t, filepath.Join(fixture.NSDir(home, "bad"), "internal", "management-port"), "45999\n")
			return site + listener("mgmt", "0.0.0.0", 45999, "mgmt-tls")
		},
		want: []string{"input/resources/r.yaml:8: Listener/mgmt: spec.port: port 45999 is this site's local management port (internal/management-port): choose another port"},
		check: func(t *testing.T, home string) {
			// left out, it gets no key either
			if _, err := os.Stat(filepath.Join(fixture.NSDir(home, "bad"), "runtime", "certs", "mgmt-tls")); !os.IsNotExist(err) {
				t.Errorf("a credential was issued for a Listener left out: %v", err)
			}
		},
	}, {
		name: "listener on another namespace's management port",
		setup: func(t *testing.T, home string) string {
			fixture.WriteFile(t, filepath.Join(fixture.NSDir(home, "other"), "internal", "management-port"), "45998\n")
			os.MkdirAll(filepath.Join(fixture.NSDir(home, "other"), "input"), 0o755)
			return site + listener("theirs", "127.0.0.1", 45998, "") + listener("elsewhere", "192.0.2.1", 45998, "")
		},
		want: []string{"input/resources/r.yaml:8: Listener/theirs: spec.port: port 45998 is the local management port of namespace other: choose another port"},
	}, {
		name: "ports another namespace holds",
		setup: func(t *testing.T, home string) string {
			os.MkdirAll(filepath.Join(fixture.NSDir(home, "other"), "input"), 0o755)
			fixture.WriteFile(t, filepath.Join(namespace.Root(home), ".ports"),
				"55990 * other RouterAccess/theirs/inter-router\n45990 127.0.0.1 other Listener/db\n")
			return site + listener("db", "0.0.0.0", 45990, "") +
				"---\napiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata: {name: mine}\nspec:\n  roles:\n  - {name: inter-router, port: 55990}\n"
		},
		want: []string{
			"input/resources/r.yaml:8: Listener/db: spec.port: port 45990 is held by namespace other (Listener/db)",
			"input/resources/r.yaml:15: RouterAccess/mine: spec.roles[0].port: port 55990 of role inter-router is held by namespace other (RouterAccess/theirs/inter-router)",
		},
		check: func(t *testing.T, home string) {
			// the holder keeps them; the loser is not recorded
			data, _ := os.ReadFile(filepath.Join(namespace.Root(home), ".ports"))
			if got := string(data); strings.Contains(got, " bad ") || !strings.Contains(got, "55990 * other") {
				t.Errorf("registry after the refused claims:\n%s", got)
			}
			if cfg := fixture.Config(home, "bad"); strings.Contains(cfg, "55990") || strings.Contains(cfg, "45990") {
				t.Errorf("a refused port reached the router configuration:\n%s", cfg)
			}
		},
	}, {
		name: "listener credential x-profile and connector x's CA-only profile",
		setup: func(t *testing.T, home string) string {
			userCreds(t, home, "a")
			return site + listener("l", "127.0.0.1", 45997, "a-profile") +
				"---\napiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata: {name: c}\nspec: {routingKey: k, host: 127.0.0.1, port: 45996, tlsCredentials: a}\n"
		},
		want: []string{`input/resources/r.yaml:13: Connector/c: spec.tlsCredentials: the router credential "a-profile" would hold both a copy of input/certs/a-profile (for Listener/l) and the ca.crt of input/certs/a (for this one); rename input/certs/a`},
	}, {
		name: "generated credential shared by two listeners",
		setup: func(t *testing.T, home string) string {
			return site + listener("one", "127.0.0.1", 45995, "shared") + listener("two", "db.example", 45994, "shared")
		},
		check: func(t *testing.T, home string) {
			data, err := os.ReadFile(filepath.Join(fixture.NSDir(home, "bad"), "runtime", "certs", "shared", certs.CertFile))
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(data)
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{"127.0.0.1", "db.example"} {
				if cert.VerifyHostname(h) != nil {
					t.Errorf("the shared certificate does not name %s: %v %v", h, cert.DNSNames, cert.IPAddresses)
				}
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			fixture.WriteFile(t, filepath.Join(fixture.NSDir(home, "bad"), "input", "resources", "r.yaml"), tc.setup(t, home))
			reconcileBad(t, home, tc.want)
			if tc.check != nil {
				tc.check(t, home)
			}
		})
	}
}
