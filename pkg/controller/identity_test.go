package controller

import (
	"slices"
	"strings"
	"testing"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/netview"
	"github.com/site-controller/site-controller/pkg/pass"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
)

// TestIdentity: what a pass publishes of its site in the CONTROLLER
// source — the site id the router uses as parent, the Site's name, the
// namespace, platform and controller version, and a PROCESS per
// container the Connectors' selectors picked (the records themselves are
// checked through a linked router in netview's TestPublishedController).
func TestIdentity(t *testing.T) {
	r := New(Options{DataHome: t.TempDir(), Version: "1.2.3"})
	site := &resources.Site{}
	site.Metadata.Name = "west"
	s := &siteState{Pass: &pass.Pass{
		Namespace: &resources.Namespace{Site: site},
		Dir:       namespace.Dir{Name: "team-west"},
		Result:    &pass.Result{SiteID: "0a0a0a0a-5555-4666-8777-888888888888"},
		Selections: map[string]pass.Selection{
			"backend": {Targets: []routerconfig.Target{{Name: "backend-1", ID: "c1", Host: "10.88.0.7"}, {Name: "backend-2", ID: "c2", Host: "10.88.0.8"}}},
			"db":      {Targets: []routerconfig.Target{{Name: "db-1", ID: "c3", Host: "10.88.0.9"}}},
			"none":    {None: "no running container matches app=none"},
		},
	}}
	id := r.identity(s, "podman")
	want := netview.Identity{SiteID: "0a0a0a0a-5555-4666-8777-888888888888", Name: "west", Namespace: "team-west", Platform: "podman", Version: "1.2.3"}
	got := id
	got.Processes = nil
	if got.SiteID != want.SiteID || got.Name != want.Name || got.Namespace != want.Namespace || got.Platform != want.Platform || got.Version != want.Version {
		t.Errorf("identity %+v, want %+v", got, want)
	}
	slices.SortFunc(id.Processes, func(a, b netview.Process) int { return strings.Compare(a.ID, b.ID) })
	wantProcs := []netview.Process{{ID: "c1", Name: "backend-1", Host: "10.88.0.7"}, {ID: "c2", Name: "backend-2", Host: "10.88.0.8"}, {ID: "c3", Name: "db-1", Host: "10.88.0.9"}}
	if !slices.Equal(id.Processes, wantProcs) {
		t.Errorf("processes %+v, want %+v", id.Processes, wantProcs)
	}
}
