package daemon

import (
	"maps"

	"github.com/site-controller/site-controller/pkg/console"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/status"
)

// tally is what the daemon keeps of a namespace's last pass for its
// metrics, its status line and the console: the resources counted by kind
// and status, and where each is defined. A patched pass changes it by
// what it changed (the pass before's tally is left as it was: the console
// may be reading it).
type tally struct {
	counts  map[[2]string]int // by kind and status
	summary nsSummary
	origins *origins
}

func tallyOf(res *controller.Result) *tally {
	t := &tally{counts: map[[2]string]int{}, origins: &origins{base: make(map[string]console.Origin, len(res.Namespace.Docs))}}
	for _, doc := range res.Namespace.Docs {
		st := status.Ready
		if resources.HasErrors(res.Namespace.ProblemsOf(doc)) {
			st = status.Error
			t.summary.errors++
		}
		t.summary.resources++
		t.counts[[2]string{doc.Kind, st}]++
		t.origins.base[doc.Kind+"/"+doc.Name] = console.Origin{File: doc.File, Line: doc.Line}
	}
	return t
}

// patched is the tally after a patched pass: its documents removed and
// added (none of them with a problem: a patch takes no other).
func (t *tally) patched(res *controller.Result) *tally {
	next := &tally{counts: maps.Clone(t.counts), summary: t.summary}
	delta := map[string]*console.Origin{}
	for _, doc := range res.Removed {
		next.counts[[2]string{doc.Kind, status.Ready}]--
		next.summary.resources--
		delta[doc.Kind+"/"+doc.Name] = nil
	}
	for _, doc := range res.Added {
		next.counts[[2]string{doc.Kind, status.Ready}]++
		next.summary.resources++
		delta[doc.Kind+"/"+doc.Name] = &console.Origin{File: doc.File, Line: doc.Line}
	}
	next.origins = t.origins.with(delta)
	return next
}

// origins is where each resource of a namespace is defined, by
// "Kind/name": those of the last full pass, and the changes of the
// patches since (nil: gone). Each pass makes a new one and never changes
// an older one; the changes are folded into a new base once they are
// many, so that a patch costs what it changed, on average.
type origins struct {
	base  map[string]console.Origin
	delta map[string]*console.Origin
}

// foldAt is how many changes an origins holds before they are folded in.
const foldAt = 512

func (o *origins) with(changes map[string]*console.Origin) *origins {
	delta := maps.Clone(o.delta)
	if delta == nil {
		delta = map[string]*console.Origin{}
	}
	maps.Copy(delta, changes)
	if len(delta) < foldAt {
		return &origins{base: o.base, delta: delta}
	}
	base := maps.Clone(o.base)
	for id, v := range delta {
		if v == nil {
			delete(base, id)
		} else {
			base[id] = *v
		}
	}
	return &origins{base: base}
}

func (o *origins) lookup(id string) (console.Origin, bool) {
	if v, ok := o.delta[id]; ok {
		if v == nil {
			return console.Origin{}, false
		}
		return *v, true
	}
	v, ok := o.base[id]
	return v, ok
}
