package status

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"gopkg.in/yaml.v3"
)

// TestCompleteCatchesEveryCut: a status file cut anywhere, at a line
// boundary included (where it is still valid YAML), is not Complete.
func TestCompleteCatchesEveryCut(t *testing.T) {
	dir := namespaceDir(t)
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

// TestStatusEqual checks the hand-written comparison against
// reflect.DeepEqual, field by field: a field it forgot would make a
// changed status look unchanged, and its file never be written.
func TestStatusEqual(t *testing.T) {
	yes, no, one, two := true, false, 1, 2
	base := func() Status {
		return Status{Status: Ready, Message: "m", Conditions: []Condition{{Type: Configured, Status: "True"}},
			HasMatchingConnector: &yes, HasMatchingListener: &yes, HasDestination: &yes, SitesInNetwork: &one,
			Network: []SiteRecord{{ID: "a", Links: []LinkRecord{{Name: "l"}}}}, Endpoints: []Endpoint{{Name: "e"}},
			RemoteSiteID: "r", RemoteSiteName: "n", URL: "u", Code: "c", CA: "ca", ExpirationTime: "x",
			Redemptions: &one, Redeemed: &yes, SelectedPods: []SelectedPod{{Name: "b", IP: "10.0.0.2", ID: "abc"}}}
	}
	// every field of Status changed on its own
	changes := map[string]func(*Status){
		"Status": func(s *Status) { s.Status = Error }, "Message": func(s *Status) { s.Message = "" },
		"Conditions":           func(s *Status) { s.Conditions[0].Reason = "r" },
		"HasMatchingConnector": func(s *Status) { s.HasMatchingConnector = &no },
		"HasMatchingListener":  func(s *Status) { s.HasMatchingListener = nil },
		"HasDestination":       func(s *Status) { s.HasDestination = &no },
		"SitesInNetwork":       func(s *Status) { s.SitesInNetwork = &two },
		"Network":              func(s *Status) { s.Network[0].Links[0].Operational = true },
		"Endpoints":            func(s *Status) { s.Endpoints[0].Port = "1" },
		"RemoteSiteID":         func(s *Status) { s.RemoteSiteID = "" }, "RemoteSiteName": func(s *Status) { s.RemoteSiteName = "" },
		"URL": func(s *Status) { s.URL = "" }, "Code": func(s *Status) { s.Code = "" }, "CA": func(s *Status) { s.CA = "" },
		"ExpirationTime": func(s *Status) { s.ExpirationTime = "" },
		"Redemptions":    func(s *Status) { s.Redemptions = &two }, "Redeemed": func(s *Status) { s.Redeemed = &no },
		"SelectedPods": func(s *Status) { s.SelectedPods[0].IP = "10.0.0.3" },
	}
	if n := reflect.TypeOf(Status{}).NumField(); n != len(changes) {
		t.Fatalf("Status has %d fields, the test changes %d: add the new ones here and to equal", n, len(changes))
	}
	for field, change := range changes {
		a, b := base(), base()
		if !a.equal(&b) {
			t.Fatalf("%s: equal statuses compare unequal", field)
		}
		change(&b)
		if a.equal(&b) || reflect.DeepEqual(a, b) != a.equal(&b) {
			t.Errorf("%s: a change is not seen", field)
		}
	}
}

// TestSafeName checks the hand-written name check against the regular
// expression it replaced.
func TestSafeName(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	for _, s := range []string{"", "a", "A9", "my-listener", "a.b_c-d", "-a", ".a", "_a", "a/b", "a b", "é", "a\x00", "9", "a-", "Z.", "a..b", "a:b"} {
		if got, want := safeName(s), re.MatchString(s); got != want {
			t.Errorf("safeName(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestPrivateStatusMode: the status file of a Private entry (one that
// holds a code) is 0600, others 0644, in a runtime/resources made 0700; a
// Private file left 0644 (by an older version) is made 0600 even when its
// content is the same.
func TestPrivateStatusMode(t *testing.T) {
	dir := namespaceDir(t)
	entry := func(kind string, private bool) Entry {
		return Entry{Kind: kind, Name: "x", Private: private, Raw: []byte("kind: " + kind + "\nmetadata:\n  name: x\n"),
			Status: Status{Status: Ready, Code: "c0de"}}
	}
	grant := filepath.Join(dir.RuntimeResources(), FileName("AccessGrant", "x"))
	for _, tc := range []struct {
		what  string
		setup func()
	}{
		{what: "new files"},
		{what: "a private file left 0644", setup: func() { os.Chmod(grant, 0o644) }},
	} {
		if tc.setup != nil {
			tc.setup()
		}
		w := Writer{Dir: dir, Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
		if _, err := w.Write([]Entry{entry("AccessGrant", true), entry("Listener", false)}); err != nil {
			t.Fatal(err)
		}
		for file, want := range map[string]os.FileMode{
			dir.RuntimeResources(): 0o700 | os.ModeDir,
			grant:                  0o600,
			filepath.Join(dir.RuntimeResources(), FileName("Listener", "x")): 0o644,
		} {
			if fi, err := os.Stat(file); err != nil || fi.Mode() != want {
				t.Errorf("%s: %s is %v, want %v (%v)", tc.what, filepath.Base(file), fi.Mode(), want, err)
			}
		}
	}
}

// namespaceDir is a namespace directory, with the input/ every one has
// (nothing is written into one without).
func namespaceDir(t *testing.T) namespace.Dir {
	t.Helper()
	dir := namespace.Dir{Name: "ns", Path: t.TempDir()}
	if err := os.Mkdir(dir.Input(), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
