package status

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/site-controller/site-controller/pkg/namespace"
)

// trickyStrings read as something other than themselves when written
// plain, by a YAML 1.1 reader (Skupper's CLI reads status files with
// sigs.k8s.io/yaml) or a YAML 1.2 one.
var trickyStrings = []string{
	"null", "~", "yes", "no", "on", "off", "true", "1e3", "0x1F", "012", "2026-12-02", ":8080", "a: b", "#x",
	"", "-", "'q'", `"dq"`, "trailing ", "190:20:30", "1_000", "y", "two\nlines", "nel\u0085x", "ls\u2028x",
	"del\x7fx", "c1\u0080x", "bom\ufeffx", "<b> & </b>", "é", "::1",
}

// TestStatusFilesReadBack: every string of a status file — the status
// block, and a resource echoed from its parsed tree (a JSON input) — reads
// back as written with gopkg.in/yaml.v3 and sigs.k8s.io/yaml.
func TestStatusFilesReadBack(t *testing.T) {
	for _, s := range trickyStrings {
		t.Run(s, func(t *testing.T) {
			yes, n := true, 1
			st := Status{
				Status: s, Message: s,
				Conditions:           []Condition{{Type: s, Status: s, Reason: s, Message: s, ObservedGeneration: 1}},
				HasMatchingConnector: &yes, SitesInNetwork: &n,
				RemoteSiteID: s, RemoteSiteName: s, URL: s, Code: s, CA: s, ExpirationTime: s, Redemptions: &n,
				Endpoints:    []Endpoint{{Name: s, Host: s, Port: s, Group: s}},
				SelectedPods: []SelectedPod{{Name: s, IP: s, ID: s}},
				Network: []SiteRecord{{ID: s, Name: s, Namespace: s, Platform: s, Version: s,
					Links:    []LinkRecord{{Name: s, RemoteSiteID: s, RemoteSiteName: s, Operational: true}},
					Services: []ServiceRecord{{RoutingKey: s, Connectors: []string{s}, Listeners: []string{s}}}}},
			}
			// a resource read from JSON is echoed from its tree
			var doc yaml.Node
			spec := map[string]any{"apiVersion": "skupper.io/v2alpha1", "kind": "Connector", "metadata": map[string]any{"name": "c"},
				"spec": map[string]any{"host": s, "routingKey": s, "selector": s}}
			if err := doc.Encode(spec); err != nil {
				t.Fatal(err)
			}
			dir := namespace.Dir{Name: "ns", Path: t.TempDir()}
			if err := os.Mkdir(filepath.Join(dir.Path, "input"), 0o755); err != nil { // a namespace directory
				t.Fatal(err)
			}
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			w := Writer{Dir: dir, Now: func() time.Time { return now }}
			if _, err := w.Write([]Entry{{Kind: "Connector", Name: "c", Node: &doc, Status: st}}); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(dir.RuntimeResources(), FileName("Connector", "c")))
			if err != nil {
				t.Fatal(err)
			}
			want := st
			want.Conditions = []Condition{st.Conditions[0]}
			want.Conditions[0].LastTransitionTime = now.Format(time.RFC3339)
			type file struct {
				Spec struct {
					Host       string `json:"host" yaml:"host"`
					RoutingKey string `json:"routingKey" yaml:"routingKey"`
					Selector   string `json:"selector" yaml:"selector"`
				} `json:"spec" yaml:"spec"`
				Status Status `json:"status" yaml:"status"`
			}
			for reader, unmarshal := range map[string]func([]byte, any) error{"yaml.v3": yaml.Unmarshal, "sigs.k8s.io/yaml": func(b []byte, v any) error { return k8syaml.Unmarshal(b, v) }} {
				var got file
				if err := unmarshal(data, &got); err != nil {
					t.Fatalf("%s: %v\n%s", reader, err, data)
				}
				if !reflect.DeepEqual(got.Status, want) {
					t.Errorf("%s read the status back as\n%+v\nwant\n%+v\nfrom\n%s", reader, got.Status, want, data)
				}
				if got.Spec.Host != s || got.Spec.RoutingKey != s || got.Spec.Selector != s {
					t.Errorf("%s read the echoed spec as %+v\nfrom\n%s", reader, got.Spec, data)
				}
				// untyped too: a boolean read into a string field is
				// "true" again; it must be a string
				var m map[string]any
				if err := unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				if h := m["spec"].(map[string]any)["host"]; h != any(s) {
					t.Errorf("%s read spec.host as %T %v", reader, h, h)
				}
				if msg := m["status"].(map[string]any)["message"]; s != "" && msg != any(s) {
					t.Errorf("%s read status.message as %T %v", reader, msg, msg)
				}
			}
			// and the transition times are found again by the fast reader
			if times := readTransitions(data); times[s+"="+s] != now.Format(time.RFC3339) {
				t.Errorf("readTransitions: %v", times)
			}
		})
	}
}

// BenchmarkAppendStatus is the status block of a typical Connector, as
// every status file write builds it.
func BenchmarkAppendStatus(b *testing.B) {
	yes := true
	st := Status{Status: Ready, Message: "OK", HasMatchingListener: &yes, Conditions: []Condition{
		{Type: Configured, Status: "True", Reason: "Configured", Message: "configured on the router as connector/backend@127.0.0.1", LastTransitionTime: "2026-01-02T03:04:05Z"},
		{Type: Matched, Status: "True", Reason: "Matched", Message: "a listener for routing key backend exists in the network", LastTransitionTime: "2026-01-02T03:04:05Z"},
		{Type: ReadyCond, Status: "True", Reason: "Ready", Message: "OK", LastTransitionTime: "2026-01-02T03:04:05Z"},
	}}
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		appendStatus(&buf, st)
	}
}
