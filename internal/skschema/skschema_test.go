package skschema

import (
	"strings"
	"testing"

	"github.com/site-controller/site-controller/pkg/routerconfig"
)

func TestCheckCatchesDepartures(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg := routerconfig.Config{
		{Type: "router", Attrs: map[string]any{"id": "a", "mode": "interior", "helloMaxAgeSeconds": 3}},
		{Type: "address", Attrs: map[string]any{"prefix": "mc", "distribution": "multicast"}},
		{Type: "tcpListener", Attrs: map[string]any{"name": "x", "port": "80", "observer": "auto"}},
		// departures
		{Type: "tcpListnr", Attrs: map[string]any{"name": "typo"}},
		{Type: "tcpListener", Attrs: map[string]any{"name": "y", "prot": "80"}},
		{Type: "router", Attrs: map[string]any{"mode": "core"}},
		{Type: "listener", Attrs: map[string]any{"name": "z", "authenticatePeer": "yes", "cost": "1"}},
	}
	var got []string
	for _, e := range s.Check(cfg) {
		got = append(got, e.Error())
	}
	want := []string{
		`entity 3: unknown entity type "tcpListnr"`,
		`tcpListener "y": unknown attribute "prot"`,
		`router "": attribute mode: core is not one of [standalone interior edge]`,
		`listener "z": attribute authenticatePeer: yes (string) is not a boolean`,
		`listener "z": attribute cost: 1 (string) is not an integer`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("missing error %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}
