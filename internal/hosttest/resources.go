package hosttest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// NS is the namespace every simulated host runs its site in: hosts are
// separate machines, so each may use the same name (as each machine's
// `default` namespace would).
const NS = "default"

// SiteSpec is a site's resources: a Site, a RouterAccess bound to every
// address when Access is set (named <site>-access), Connectors to
// 127.0.0.1 and Listeners on 127.0.0.1, by routing key.
type SiteSpec struct {
	Name       string
	Access     bool
	Settings   map[string]string // the Site's spec.settings
	Connectors map[string]int    // routing key → port of the server on 127.0.0.1
	Listeners  map[string]int    // routing key → port on 127.0.0.1
}

// AccessName is the RouterAccess a SiteSpec with Access has.
func AccessName(site string) string { return site + "-access" }

// LinkName is the Link a link file for site's RouterAccess holds.
func LinkName(site string) string { return "link-" + AccessName(site) }

// YAML is the spec as one resource file.
func (s SiteSpec) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: %s\n", s.Name)
	if len(s.Settings) > 0 {
		b.WriteString("spec:\n  settings:\n")
		for _, k := range slices.Sorted(maps.Keys(s.Settings)) {
			fmt.Fprintf(&b, "    %s: %q\n", k, s.Settings[k])
		}
	}
	if s.Access {
		fmt.Fprintf(&b, "---\napiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: %s\nspec:\n  roles:\n  - name: inter-router\n  - name: edge\n", AccessName(s.Name))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Connectors)) {
		fmt.Fprintf(&b, "---\napiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: %s\nspec:\n  routingKey: %s\n  host: 127.0.0.1\n  port: %d\n", k, k, s.Connectors[k])
	}
	for _, k := range slices.Sorted(maps.Keys(s.Listeners)) {
		fmt.Fprintf(&b, "---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: %s\nspec:\n  routingKey: %s\n  host: 127.0.0.1\n  port: %d\n", k, k, s.Listeners[k])
	}
	return b.String()
}
