package pass

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// TestMemo: statuses taken from the memo are the ones worked out anew, pass
// after pass, as what they follow from changes one thing at a time (a
// listener's router state, a connector gone, the router unreachable, the
// router stopped, a new document); and unchanged ones are taken from it.
func TestMemo(t *testing.T) {
	yaml := "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s\n"
	for i := range 4 {
		yaml += fmt.Sprintf("---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: l%d\nspec:\n  routingKey: k%d\n  host: 127.0.0.1\n  port: %d\n", i, i, 9000+i)
		yaml += fmt.Sprintf("---\napiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: c%d\nspec:\n  routingKey: k%d\n  host: 10.0.0.%d\n  port: 80\n", i, i, i+1)
	}
	docs, probs := resources.Decode("input/resources/all.yaml", []byte(yaml))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	ns := resources.Build("ns", docs, nil)
	if len(ns.Problems) > 0 {
		t.Fatal(ns.Problems)
	}
	// the router as it is before each step
	entities := func(up map[string]bool, without string) map[string]map[string]routerconfig.Entity {
		out := map[string]map[string]routerconfig.Entity{"tcpListener": {}, "tcpConnector": {}}
		for _, l := range ns.Listeners {
			st := "down"
			if up[l.Metadata.Name] {
				st = "up"
			}
			out["tcpListener"][routerconfig.ListenerName(l)] = routerconfig.Entity{Type: "tcpListener", Attrs: map[string]any{"address": l.Spec.RoutingKey, "operStatus": st}}
		}
		for _, c := range ns.Connectors {
			if c.Metadata.Name != without {
				out["tcpConnector"][routerconfig.ConnectorName(c)] = routerconfig.Entity{Type: "tcpConnector", Attrs: map[string]any{"address": c.Spec.RoutingKey}}
			}
		}
		return out
	}
	running := &runtime.State{Exists: true, Running: true, Status: "running", Started: time.Now().Add(-time.Hour)}
	steps := []struct {
		name string
		res  func() Result
		docs []*resources.Document
		// hits is how many statuses come from the memo at least
		hits int
	}{
		{"first", func() Result {
			return Result{Router: running, Live: &live.Live{Entities: entities(map[string]bool{"l0": true}, "")}}
		}, nil, 0},
		{"same", func() Result {
			return Result{Router: running, Live: &live.Live{Entities: entities(map[string]bool{"l0": true}, "")}}
		}, nil, 8},
		{"l1 up", func() Result {
			return Result{Router: running, Live: &live.Live{Entities: entities(map[string]bool{"l0": true, "l1": true}, "")}}
		}, nil, 7},
		{"c2 not in the router", func() Result {
			return Result{Router: running, Live: &live.Live{Entities: entities(map[string]bool{"l0": true, "l1": true}, "c2")}}
		}, nil, 7},
		{"unreachable", func() Result { return Result{Router: running, LiveErr: errors.New("refused")} }, nil, 0},
		{"unreachable again", func() Result { return Result{Router: running, LiveErr: errors.New("refused")} }, nil, 8},
		{"stopped", func() Result { return Result{Router: &runtime.State{Exists: true, Status: "exited"}} }, nil, 0},
		{"back", func() Result { return Result{Router: running, Live: &live.Live{Entities: entities(nil, "")}} }, nil, 0},
		{"a document read again", func() Result { return Result{Router: running, Live: &live.Live{Entities: entities(nil, "")}} }, redecode(yaml, docs, 1), 7},
	}
	memo := &Memo{}
	current := ns
	for _, step := range steps {
		if step.docs != nil {
			current = resources.Build("ns", step.docs, nil)
		}
		res := step.res()
		now := time.Now()
		withMemo := (&Pass{Namespace: current, Now: now, Result: &res, Memo: memo}).Statuses()
		fresh := (&Pass{Namespace: current, Now: now, Result: &res}).Statuses()
		hits := 0
		for i := range withMemo {
			if withMemo[i].Known {
				hits++
			}
			got, want := withMemo[i], fresh[i]
			got.Known = false
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s/%s from the memo:\n%+v\nworked out anew:\n%+v", step.name, got.Kind, got.Name, got.Status, want.Status)
			}
		}
		if hits < step.hits {
			t.Errorf("%s: %d statuses from the memo, want at least %d", step.name, hits, step.hits)
		}
	}
}

// redecode returns docs with document i decoded again from yaml: a new
// document of the same content, as when its file is read again.
func redecode(yaml string, docs []*resources.Document, i int) []*resources.Document {
	again, _ := resources.Decode("input/resources/all.yaml", []byte(yaml))
	out := slices.Clone(docs)
	out[i] = again[i]
	return out
}
