package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	k8syaml "sigs.k8s.io/yaml"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/yamltest"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/status"
)

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
			for reader := range yamltest.Readers {
				got := yamltest.ReadBackAnswer(t, reader, answer)
				if len(got.Links) != 1 || got.Links[0].Metadata.Name != name || got.Links[0].Spec.TLSCredentials != name || got.Secret.Metadata.Name != name {
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
			for reader := range yamltest.Readers {
				got := yamltest.ReadBackAnswer(t, reader, kept)
				if len(got.Links) != 1 || got.Links[0].Metadata.Name != name || got.Links[0].Spec.TLSCredentials != name || got.Secret.Metadata.Name != name {
					t.Errorf("%s read the kept answer as %+v\n%s", reader, got, kept)
				}
			}
		})
	}
}
