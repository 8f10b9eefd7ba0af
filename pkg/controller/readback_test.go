package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	yaml3 "gopkg.in/yaml.v3"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/site"
	"github.com/site-controller/site-controller/pkg/status"
)

// readers are a YAML 1.2 reader (ours) and a YAML 1.1 one (Skupper's:
// sigs.k8s.io/yaml, over go-yaml v2).
var readers = map[string]func([]byte, any) error{
	"yaml.v3":          yaml3.Unmarshal,
	"sigs.k8s.io/yaml": func(b []byte, v any) error { return k8syaml.Unmarshal(b, v) },
}

// answerDocs reads an answer (a Secret, then Links) with a reader, as
// the Go types of Skupper have them: every field a string where ours is.
type answerDocs struct {
	secret struct {
		Metadata struct {
			Name string `json:"name" yaml:"name"`
		} `json:"metadata" yaml:"metadata"`
	}
	links []answerLink
}

func readBackAnswer(t *testing.T, reader string, data []byte) answerDocs {
	t.Helper()
	var out answerDocs
	parts := strings.Split(strings.TrimPrefix(string(data), "---\n"), "\n---\n")
	for i, p := range parts {
		var err error
		if i == 0 {
			err = readers[reader]([]byte(p), &out.secret)
		} else {
			var l answerLink
			err = readers[reader]([]byte(p), &l)
			out.links = append(out.links, l)
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v\n%s", reader, i, err, data)
		}
		// untyped, every value but the cost is a string
		var m map[string]any
		if err := readers[reader]([]byte(p), &m); err != nil {
			t.Fatal(err)
		}
		checkUntyped(t, reader, "", m)
	}
	return out
}

func checkUntyped(t *testing.T, reader, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			checkUntyped(t, reader, path+"."+k, x)
		}
	case []any:
		for i, x := range v {
			checkUntyped(t, reader, fmt.Sprintf("%s[%d]", path, i), x)
		}
	case string:
	default:
		if !strings.HasSuffix(path, ".cost") && path != ".metadata.creationTimestamp" {
			t.Errorf("%s read %s as %T %v", reader, path, v, v)
		}
	}
}

// TestAnswerReadsBack: what is kept of a grant server's answer
// (runtime/tokens/<name>.yaml) reads back, with a YAML 1.1 and a YAML 1.2
// reader, as the names and hosts the answer gave, even those YAML 1.1 reads
// as booleans, null, numbers or dates; what validation would refuse is
// written so too (the writer, alone).
func TestAnswerReadsBack(t *testing.T) {
	ca, _, err := certs.NewCA("ca", testNow)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.Issue(certs.Leaf{CommonName: "b", Client: true}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	roles := []site.AccessRole{{Role: "inter-router", Port: 55671}, {Role: "edge", Port: 45671}}
	for _, tc := range []struct{ name, host string }{
		{"link-a", "null"}, {"link-a", "yes"}, {"link-a", "no"}, {"link-a", "on"}, {"link-a", "off"}, {"link-a", "true"},
		{"link-a", "1e3"}, {"link-a", "0x1f"}, {"link-a", "012"}, {"link-a", "2026-12-02"}, {"link-a", "::1"},
		{"yes", "h"}, {"null", "h"}, {"on", "h"}, {"012", "h"}, {"1e3", "h"}, {"true", "h"},
	} {
		t.Run(tc.name+"@"+tc.host, func(t *testing.T) {
			kept, err := takeAnswer(site.LinkYAML(tc.name, tc.host, roles, f))
			if err != nil {
				t.Fatal(err)
			}
			for reader := range readers {
				got := readBackAnswer(t, reader, kept)
				if got.secret.Metadata.Name != tc.name || len(got.links) != 1 || got.links[0].Metadata.Name != tc.name || got.links[0].Spec.TLSCredentials != tc.name {
					t.Fatalf("%s: %+v\n%s", reader, got, kept)
				}
				for _, e := range got.links[0].Spec.Endpoints {
					if e.Host != tc.host {
						t.Errorf("%s: endpoint %+v, want host %q", reader, e, tc.host)
					}
				}
			}
		})
	}
	// the writer of what is kept, with hosts no validation lets through
	for _, host := range []string{"~", "0x1F", ":8080", "a: b", "#x", "", "-", "'q'", `"dq"`, "trailing ", "1_000", "y"} {
		l := answerLink{APIVersion: resources.APIVersion, Kind: resources.KindLink, Metadata: answerMeta{Name: host}}
		l.Spec.Endpoints = []answerEndpoint{{Name: "inter-router", Host: host, Port: "55671"}}
		l.Spec.TLSCredentials = host
		data, err := marshalYAML(l)
		if err != nil {
			t.Fatal(err)
		}
		for reader, unmarshal := range readers {
			var got answerLink
			if err := unmarshal(data, &got); err != nil {
				t.Fatalf("%s: %v\n%s", reader, err, data)
			}
			if !reflect.DeepEqual(got, l) {
				t.Errorf("%s read\n%+v\nwant\n%+v\nfrom\n%s", reader, got, l, data)
			}
		}
	}
}

// TestGrantAnswerReadsBack: AccessTokens named as YAML 1.1 reads booleans,
// null and numbers are redeemed at a real grant server: its answer, what
// the redeeming site keeps of it and the AccessGrant's status file read back
// as written with both readers.
func TestGrantAnswerReadsBack(t *testing.T) {
	h := newTokenHome(t)
	h.accepting(t, "accept")
	names := []string{"yes", "null", "on", "off", "012", "1e3", "true"}
	for _, name := range names {
		h.write(t, "accept", "grant-"+name+".yaml", "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: g"+name+"\nspec:\n  redemptionsAllowed: 2\n")
	}
	h.pass(t, "accept")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			g := fixture.StatusOf(h.home, "accept", resources.KindAccessGrant, "g"+name)
			if g == nil || g.Status != status.Ready {
				t.Fatalf("grant: %+v", g)
			}
			// the AccessGrant's status file, read as Skupper reads it
			data, err := os.ReadFile(filepath.Join(fixture.NSDir(h.home, "accept"), "runtime", "resources", status.FileName(resources.KindAccessGrant, "g"+name)))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Status status.Status `json:"status"`
			}
			if err := k8syaml.Unmarshal(data, &doc); err != nil || doc.Status.URL != g.URL || doc.Status.Code != g.Code || doc.Status.CA != g.CA {
				t.Errorf("sigs.k8s.io/yaml read the grant's status as %+v (%v)", doc.Status, err)
			}
			// the server's answer itself
			answer, err := grants.Redeem(context.Background(), g.URL, g.Code, g.CA, name, "site-b")
			if err != nil {
				t.Fatal(err)
			}
			for reader := range readers {
				got := readBackAnswer(t, reader, answer)
				if len(got.links) != 1 || got.links[0].Metadata.Name != name || got.links[0].Spec.TLSCredentials != name || got.secret.Metadata.Name != name {
					t.Errorf("%s read the answer as %+v\n%s", reader, got, answer)
				}
			}
			// what a redeeming site keeps of it
			ns := "r-" + name
			token := strings.Replace(accessTokenYAML(name, g.URL, g.Code, g.CA), "name: "+name+"\n", fmt.Sprintf("name: %q\n", name), 1)
			h.write(t, ns, "site.yaml", fixture.SiteYAML("r")+"---\n"+token)
			if st := h.redeem(t, ns, name); st.Status != status.Ready {
				t.Fatalf("token: %+v", st)
			}
			kept, err := os.ReadFile(filepath.Join(fixture.NSDir(h.home, ns), "runtime", "tokens", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			for reader := range readers {
				got := readBackAnswer(t, reader, kept)
				if len(got.links) != 1 || got.links[0].Metadata.Name != name || got.links[0].Spec.TLSCredentials != name || got.secret.Metadata.Name != name {
					t.Errorf("%s read the kept answer as %+v\n%s", reader, got, kept)
				}
			}
		})
	}
}
