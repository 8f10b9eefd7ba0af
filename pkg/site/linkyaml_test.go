package site

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	yaml3 "gopkg.in/yaml.v3"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/site-controller/site-controller/internal/yamltest"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/resources"
)

// skupperSecret and skupperLink are the parts of Kubernetes' Secret and
// Skupper's Link a peer reads from a link file, as their Go types have
// them (a Secret's data is bytes, base64 in the file).
type skupperSecret struct {
	APIVersion string `json:"apiVersion" yaml:"apiVersion"`
	Kind       string `json:"kind" yaml:"kind"`
	Metadata   struct {
		Name string `json:"name" yaml:"name"`
	} `json:"metadata" yaml:"metadata"`
	Type string            `json:"type" yaml:"type"`
	Data map[string][]byte `json:"data" yaml:"-"`
	// yaml.v3 has no base64: the text, decoded by the test
	Data64 map[string]string `json:"-" yaml:"data"`
}

type skupperLink struct {
	Kind     string `json:"kind" yaml:"kind"`
	Metadata struct {
		Name string `json:"name" yaml:"name"`
	} `json:"metadata" yaml:"metadata"`
	Spec struct {
		Endpoints []struct {
			Name string `json:"name" yaml:"name"`
			Host string `json:"host" yaml:"host"`
			Port string `json:"port" yaml:"port"`
		} `json:"endpoints" yaml:"endpoints"`
		TLSCredentials string `json:"tlsCredentials" yaml:"tlsCredentials"`
		Cost           int    `json:"cost" yaml:"cost"`
	} `json:"spec" yaml:"spec"`
}

// readLinkFile reads a link file (a Secret and a Link) with a YAML 1.2
// reader (gopkg.in/yaml.v3) and a YAML 1.1 one (sigs.k8s.io/yaml, as
// Skupper reads), each document also as an untyped map: every string
// must be a string in both.
func readLinkFile(t *testing.T, data []byte) map[string]struct {
	s skupperSecret
	l skupperLink
} {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(string(data), "---\n"), "\n---\n")
	if len(parts) != 2 {
		t.Fatalf("%d documents, want a Secret and a Link:\n%s", len(parts), data)
	}
	out := map[string]struct {
		s skupperSecret
		l skupperLink
	}{}
	for reader, unmarshal := range map[string]func([]byte, any) error{"yaml.v3": yaml3.Unmarshal, "sigs.k8s.io/yaml": func(b []byte, v any) error { return k8syaml.Unmarshal(b, v) }} {
		var got struct {
			s skupperSecret
			l skupperLink
		}
		if err := unmarshal([]byte(parts[0]), &got.s); err != nil {
			t.Fatalf("%s: the Secret: %v\n%s", reader, err, parts[0])
		}
		if err := unmarshal([]byte(parts[1]), &got.l); err != nil {
			t.Fatalf("%s: the Link: %v\n%s", reader, err, parts[1])
		}
		if got.s.Data == nil {
			got.s.Data = map[string][]byte{}
			for k, v := range got.s.Data64 {
				got.s.Data[k], _ = base64.StdEncoding.DecodeString(v)
			}
		}
		// untyped, no field may be read as a boolean, a number or null
		// where a string was written
		for _, p := range parts {
			var m map[string]any
			if err := unmarshal([]byte(p), &m); err != nil {
				t.Fatalf("%s: %v", reader, err)
			}
			yamltest.CheckUntyped(t, reader, "", m)
		}
		out[reader] = got
	}
	return out
}

// TestLinkYAMLReadsBack: the link file writer (link files, and the answers
// of the grant server) writes every host and name so that YAML 1.1 and 1.2
// readers get back exactly what was written, even those no validation
// would let through.
func TestLinkYAMLReadsBack(t *testing.T) {
	cred := certs.Files{CA: []byte("ca\n"), Cert: []byte("cert\n"), Key: []byte("key\n")}
	roles := []AccessRole{{Role: "inter-router", Port: 55671}, {Role: "edge", Port: 45671}}
	for _, tc := range []struct{ name, host string }{
		{"link-x", "null"}, {"link-x", "~"}, {"link-x", "yes"}, {"link-x", "no"}, {"link-x", "on"}, {"link-x", "off"},
		{"link-x", "true"}, {"link-x", "1e3"}, {"link-x", "0x1F"}, {"link-x", "012"}, {"link-x", "2026-12-02"},
		{"link-x", ":8080"}, {"link-x", "a: b"}, {"link-x", "#x"}, {"link-x", ""}, {"link-x", "-"}, {"link-x", "'q'"},
		{"link-x", `"dq"`}, {"link-x", "trailing "}, {"link-x", "::1"}, {"link-x", "127.0.0.1"}, {"link-x", "host.example.com"},
		// a redeemer names the Link of a grant's answer
		{"yes", "h"}, {"null", "h"}, {"on", "h"}, {"1e3", "h"}, {"012", "h"}, {"true", "h"},
	} {
		t.Run(tc.name+"@"+tc.host, func(t *testing.T) {
			data := LinkYAML(tc.name, tc.host, roles, cred)
			for reader, got := range readLinkFile(t, data) {
				if got.s.Metadata.Name != tc.name || got.l.Metadata.Name != tc.name || got.l.Spec.TLSCredentials != tc.name {
					t.Errorf("%s: names %q, %q, %q, want %q", reader, got.s.Metadata.Name, got.l.Metadata.Name, got.l.Spec.TLSCredentials, tc.name)
				}
				if len(got.l.Spec.Endpoints) != 2 {
					t.Fatalf("%s: endpoints %+v", reader, got.l.Spec.Endpoints)
				}
				for i, e := range got.l.Spec.Endpoints {
					if e.Host != tc.host || e.Port != fmt.Sprint(roles[i].Port) || e.Name != roles[i].Role {
						t.Errorf("%s: endpoint %+v, want host %q", reader, e, tc.host)
					}
				}
				if !bytes.Equal(got.s.Data[certs.CAFile], cred.CA) || !bytes.Equal(got.s.Data[certs.KeyFile], cred.Key) {
					t.Errorf("%s: data %q", reader, got.s.Data)
				}
			}
			if !bytes.Equal(data, LinkYAML(tc.name, tc.host, roles, cred)) {
				t.Error("written twice, not the same bytes")
			}
		})
	}
}

// TestRouterAccessLinkFilesReadBack: a RouterAccess whose certificate names
// hosts that YAML 1.1 reads as booleans, null, numbers or dates gets link
// files naming exactly those hosts, for Skupper's reader and ours.
func TestRouterAccessLinkFilesReadBack(t *testing.T) {
	sans := []string{"null", "yes", "no", "on", "off", "true", "1e3", "0x1f", "012", "2026-12-02"}
	var quoted []string
	for _, s := range sans {
		quoted = append(quoted, fmt.Sprintf("%q", s))
	}
	src := "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s\n---\n" +
		"apiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: ra\nspec:\n  bindHost: 127.0.0.1\n" +
		"  roles:\n  - name: inter-router\n  - name: edge\n  subjectAlternativeNames: [" + strings.Join(quoted, ", ") + "]\n"
	docs, probs := resources.Decode("input/resources/site.yaml", []byte(src))
	ns := resources.Build("ns", docs, probs)
	if len(ns.Problems) > 0 {
		t.Fatalf("validation refused the hosts: %v", ns.Problems)
	}
	in := Input{Namespace: ns, Platform: "podman", Version: "test", Now: testNow, Dir: "$NSDIR", SiteID: testSiteID, ManagementPort: 5671,
		UserCerts: map[string]UserCert{}, HostNames: testHostNames}
	in.Ports = testPorts(ns)
	d, err := Build(in)
	if err != nil || len(d.Problems) > 0 {
		t.Fatalf("%v %v", err, d.Problems)
	}
	for _, host := range sans {
		data, ok := d.LinkFiles["link-ra-"+host+".yaml"]
		if !ok {
			t.Errorf("no link file for %s", host)
			continue
		}
		for reader, got := range readLinkFile(t, data) {
			for _, e := range got.l.Spec.Endpoints {
				if e.Host != host {
					t.Errorf("%s: link-ra-%s.yaml: endpoint %s host %q", reader, host, e.Name, e.Host)
				}
			}
			if got.l.Metadata.Name != "link-ra" || got.s.Metadata.Name != "link-ra" {
				t.Errorf("%s: names %q %q", reader, got.l.Metadata.Name, got.s.Metadata.Name)
			}
		}
		// and ours reads it as the Link to that host
		docs, probs := resources.Decode("input/resources/link.yaml", data)
		peer := resources.Build("peer", append(docs, siteDoc(t)...), probs)
		if len(peer.Problems) > 0 || len(peer.Links) != 1 || peer.Links[0].Spec.Endpoints[0].Host != host {
			t.Errorf("link-ra-%s.yaml as input: %v %+v", host, peer.Problems, peer.Links)
		}
	}
}
