package routerconfig

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Change is one management operation that brings a running router to a
// desired configuration.
type Change struct {
	Op    string // CREATE, UPDATE or DELETE
	Type  string // configuration entity type, e.g. tcpListener
	Name  string
	Attrs map[string]any // CREATE: all attributes; UPDATE: the changed ones
}

// LiveTypes are the entity types changed in a running router, in the
// order they are created.
var LiveTypes = []string{"sslProfile", "listener", "connector", "tcpListener", "listenerAddress", "tcpConnector"}

// live tells whether e is changed in a running router: an entity of a live
// type, but not the local management listener (or its profile's paths):
// the controller reaches the router through it.
func live(e Entity) bool {
	return slices.Contains(LiveTypes, e.Type) && !(e.Type == "listener" && e.Name() == LocalListenerName)
}

// owned lists, per live type, the attributes this controller sets; a
// difference in any of them changes the entity. Unset means the value in
// unset (the router's default), or no value.
var owned = map[string][]string{
	"sslProfile":      {"caCertFile", "certFile", "privateKeyFile"},
	"tcpListener":     {"host", "port", "address", "observer", "sslProfile", "multiAddressStrategy", "authenticatePeer"},
	"listenerAddress": {"address", "value", "listener"},
	"tcpConnector":    {"host", "port", "address", "sslProfile", "verifyHostname"},
	"listener":        {"host", "port", "role", "sslProfile", "saslMechanisms", "authenticatePeer"},
	"connector":       {"host", "port", "role", "cost", "sslProfile"},
}

var unset = map[string]map[string]any{
	"tcpListener":  {"observer": "auto", "multiAddressStrategy": "none", "authenticatePeer": false},
	"tcpConnector": {"verifyHostname": true},
	"listener":     {"authenticatePeer": false},
	"connector":    {"cost": 1},
}

// updatable lists the attributes the router changes in place (UPDATE);
// a difference in any other owned attribute re-creates the entity.
var updatable = map[string]map[string]bool{
	"sslProfile":  {"caCertFile": true, "certFile": true, "privateKeyFile": true},
	"tcpListener": {"observer": true},
}

// Live returns the entities of the live types, by type and name.
func (c Config) Live() map[string]map[string]Entity {
	out := map[string]map[string]Entity{}
	for _, t := range LiveTypes {
		out[t] = map[string]Entity{}
	}
	for _, e := range c {
		if m, ok := out[e.Type]; ok && live(e) {
			m[e.Name()] = e
		}
	}
	return out
}

// Diff returns the changes that turn the live entities of actual into
// those of desired. Unchanged entities are left alone; an entity is
// updated in place when only updatable attributes differ, and re-created
// otherwise. Order: profiles created or updated first, then listeners and
// connectors deleted, then created, then profiles deleted, so that no
// entity refers to a profile that is not there.
func Diff(desired, actual Config) []Change {
	return DiffLive(desired.Live(), actual.Live())
}

// DiffLive is Diff of live entities by type and name, as Live returns
// them. Its cost is one comparison per entity; only the changes are
// sorted (by name within each kind of change), so that the result is the
// same whatever the maps' order.
func DiffLive(want, have map[string]map[string]Entity) []Change {
	var profilesUp, tcpAdd, profilesDel []Change
	dels := map[string][]Change{}
	byName := func(a, b Change) int { return strings.Compare(a.Name, b.Name) }
	for _, t := range LiveTypes {
		var up, add, recreate, remove []Change
		for name, w := range want[t] {
			h, exists := have[t][name]
			var changed []string
			if exists {
				changed = differences(t, w.Attrs, h.Attrs)
				if len(changed) == 0 {
					continue
				}
			}
			if exists && allUpdatable(t, changed) {
				attrs := map[string]any{}
				for _, k := range changed {
					attrs[k] = valueOrUnset(t, k, w.Attrs)
				}
				up = append(up, Change{"UPDATE", t, name, attrs})
				continue
			}
			create := Change{"CREATE", t, name, withoutName(w.Attrs)}
			if t == "sslProfile" {
				up = append(up, create) // a profile is never re-created: all its attributes update
				continue
			}
			if exists {
				recreate = append(recreate, Change{"DELETE", t, name, nil})
			}
			add = append(add, create)
		}
		for name := range have[t] {
			if _, ok := want[t][name]; !ok {
				remove = append(remove, Change{"DELETE", t, name, nil})
			}
		}
		for _, l := range [][]Change{up, add, recreate, remove} {
			slices.SortFunc(l, byName)
		}
		profilesUp = append(profilesUp, up...)
		tcpAdd = append(tcpAdd, add...)
		if t == "sslProfile" {
			profilesDel = append(profilesDel, remove...)
		} else if len(recreate)+len(remove) > 0 {
			dels[t] = slices.Concat(recreate, remove)
		}
	}
	// a multi-address tcpListener re-created takes its addresses along
	recreated := map[string]bool{}
	for _, c := range dels["tcpListener"] {
		if _, ok := want["tcpListener"][c.Name]; ok {
			recreated[c.Name] = true
		}
	}
	if len(recreated) > 0 {
		for _, name := range sortedKeys(want["listenerAddress"]) {
			w := want["listenerAddress"][name]
			l, _ := w.Attrs["listener"].(string)
			if !recreated[l] || slices.ContainsFunc(tcpAdd, func(c Change) bool { return c.Type == "listenerAddress" && c.Name == name }) {
				continue
			}
			if _, ok := have["listenerAddress"][name]; ok {
				dels["listenerAddress"] = append(dels["listenerAddress"], Change{"DELETE", "listenerAddress", name, nil})
			}
			tcpAdd = append(tcpAdd, Change{"CREATE", "listenerAddress", name, withoutName(w.Attrs)})
		}
	}
	// deleted users first: a listenerAddress before its tcpListener
	var tcpDel []Change
	for i := len(LiveTypes) - 1; i >= 0; i-- {
		tcpDel = append(tcpDel, dels[LiveTypes[i]]...)
	}
	return slices.Concat(profilesUp, tcpDel, tcpAdd, profilesDel)
}

func withoutName(attrs map[string]any) map[string]any {
	out := make(map[string]any, len(attrs))
	for k, v := range attrs {
		switch {
		case k == "name":
		case k == "port":
			out[k] = canonical(v) // a string in the router's schema
		default:
			out[k] = v
		}
	}
	return out
}

func allUpdatable(t string, attrs []string) bool {
	for _, a := range attrs {
		if !updatable[t][a] {
			return false
		}
	}
	return true
}

func valueOrUnset(t, k string, attrs map[string]any) any {
	if v, ok := attrs[k]; ok {
		return v
	}
	if v, ok := unset[t][k]; ok {
		return v
	}
	return ""
}

// ownedAttr is an owned attribute with its unset value, looked up once.
type ownedAttr struct {
	name  string
	unset any // "" when the attribute has none
}

// ownedAttrs are owned and unset together, by type: differences runs for
// every entity of a site on every pass.
var ownedAttrs = func() map[string][]ownedAttr {
	out := map[string][]ownedAttr{}
	for t, attrs := range owned {
		for _, k := range attrs {
			out[t] = append(out[t], ownedAttr{k, valueOrUnset(t, k, nil)})
		}
	}
	return out
}()

// differences lists the owned attributes whose values differ.
func differences(t string, want, have map[string]any) []string {
	var out []string
	for _, a := range ownedAttrs[t] {
		w, ok := want[a.name]
		if !ok {
			w = a.unset
		}
		h, ok := have[a.name]
		if !ok {
			h = a.unset
		}
		if !same(w, h) {
			out = append(out, a.name)
		}
	}
	return out
}

// same compares attribute values across their JSON, AMQP and Go forms:
// numbers whatever their type, and nil as "".
func same(a, b any) bool {
	// the common cases without allocating
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return x == y
		}
	case bool:
		if y, ok := b.(bool); ok {
			return x == y
		}
	case int64:
		if y, ok := b.(int64); ok {
			return x == y
		}
	}
	return canonical(a) == canonical(b)
}

func canonical(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	data, _ := json.Marshal(v)
	return string(data)
}

// Expand replaces ${NAME} in string attributes by vars[NAME], as the
// router image's launch script does with environment variables before the
// router reads its file: what is sent over management must already be
// expanded.
func (c Config) Expand(vars map[string]string) Config {
	out := make(Config, len(c))
	for i, e := range c {
		if !hasVariable(e) {
			out[i] = e // nothing to expand: shared, not copied
			continue
		}
		attrs := make(map[string]any, len(e.Attrs))
		for k, v := range e.Attrs {
			if s, ok := v.(string); ok && strings.Contains(s, "${") {
				for name, val := range vars {
					s = strings.ReplaceAll(s, "${"+name+"}", val)
				}
				v = s
			}
			attrs[k] = v
		}
		out[i] = Entity{e.Type, attrs}
	}
	return out
}

func hasVariable(e Entity) bool {
	for _, v := range e.Attrs {
		if s, ok := v.(string); ok && strings.Contains(s, "${") {
			return true
		}
	}
	return false
}

// RestartKey is what a running router cannot take live: everything but the
// live types. When it changes, the router must restart.
func (c Config) RestartKey() string {
	var rest Config
	for _, e := range c {
		if !live(e) || e.Name() == LocalServer {
			rest = append(rest, e)
		}
	}
	data, _ := rest.Marshal()
	return string(data)
}
