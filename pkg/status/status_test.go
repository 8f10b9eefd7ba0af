package status

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"gopkg.in/yaml.v3"
)

// TestCompleteCatchesEveryCut: a status file cut anywhere, at a line
// boundary included (where it is still valid YAML), is not Complete.
func TestCompleteCatchesEveryCut(t *testing.T) {
	dir := namespace.Dir{Name: "ns", Path: t.TempDir()}
	w := Writer{Dir: dir, Now: time.Now}
	yes := true
	entry := Entry{Kind: "Listener", Name: "l",
		Raw:    []byte("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: l\n"),
		Status: Status{Status: Ready, Message: "ok", HasMatchingConnector: &yes, Conditions: []Condition{{Type: Configured, Status: "True", Reason: "Ready"}}}}
	if _, err := w.Write([]Entry{entry}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir.RuntimeResources(), FileName("Listener", "l")))
	if err != nil {
		t.Fatal(err)
	}
	if !Complete(data) {
		t.Fatalf("a whole status file is not Complete:\n%s", data)
	}
	if _, err := Read(filepath.Join(dir.RuntimeResources(), FileName("Listener", "l"))); err != nil {
		t.Errorf("the trailer breaks reading: %v", err)
	}
	for i := range len(data) {
		if Complete(data[:i]) {
			t.Errorf("cut after %d of %d bytes and still Complete", i, len(data))
		}
	}
}

// TestStatusRoundTrip: the hand-written status block is YAML that reads
// back into the very Status written, every field filled.
func TestStatusRoundTrip(t *testing.T) {
	yes, n := true, 2
	want := Status{
		Status: Ready, Message: `OK: "quoted" \ and: colons`,
		Conditions:           []Condition{{Type: ReadyCond, Status: "True", Reason: "Ready", Message: "OK", LastTransitionTime: "2026-01-02T03:04:05Z", ObservedGeneration: 3}},
		HasMatchingConnector: &yes, HasMatchingListener: &yes, HasDestination: &yes, SitesInNetwork: &n,
		RemoteSiteID: "id-b", RemoteSiteName: "b",
		URL: "https://h:8081/abc", Code: "c0de", CA: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		ExpirationTime: "2026-01-02T03:04:05Z", Redemptions: &n, Redeemed: &yes,
		Endpoints: []Endpoint{{Name: "inter-router", Host: "::1", Port: "55671"}, {Name: "edge", Host: "h", Port: "45671", Group: "g"}},
		Network: []SiteRecord{
			{ID: "id-a", Name: "a", Namespace: "ns-a", Platform: "linux", Version: "v1",
				Links:    []LinkRecord{{Name: "link-b", RemoteSiteID: "id-b", RemoteSiteName: "b", Operational: true}},
				Services: []ServiceRecord{{RoutingKey: "backend", Connectors: []string{"connector/x@h"}, Listeners: []string{"listener/y"}}}},
			{ID: "id-b", Name: "b"},
		},
	}
	var b bytes.Buffer
	appendStatus(&b, want)
	var got struct {
		Status Status `yaml:"status"`
	}
	if err := yaml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, b.String())
	}
	if !reflect.DeepEqual(got.Status, want) {
		t.Errorf("read back\n%+v\nwant\n%+v\nfrom\n%s", got.Status, want, b.String())
	}
}
