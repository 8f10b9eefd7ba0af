package tokens

import (
	"reflect"
	"testing"

	"github.com/site-controller/site-controller/internal/yamltest"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/site"
)

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
			kept, err := TakeAnswer(site.LinkYAML(tc.name, tc.host, roles, f))
			if err != nil {
				t.Fatal(err)
			}
			for reader := range yamltest.Readers {
				got := yamltest.ReadBackAnswer(t, reader, kept)
				if got.Secret.Metadata.Name != tc.name || len(got.Links) != 1 || got.Links[0].Metadata.Name != tc.name || got.Links[0].Spec.TLSCredentials != tc.name {
					t.Fatalf("%s: %+v\n%s", reader, got, kept)
				}
				for _, e := range got.Links[0].Spec.Endpoints {
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
		for reader, unmarshal := range yamltest.Readers {
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
