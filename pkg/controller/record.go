package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/passrecord"
	"github.com/site-controller/site-controller/pkg/resources"
	"golang.org/x/sys/unix"
)

// recordFile is the render's pass record, under internal/.
const recordFile = "pass-record"

// Render runs the render command's pass over namespace name, unless the
// namespace's pass record says the last one stands: nothing it depended
// on changed since (every entry of the namespace directory, the data
// home's port registries, the binary, its options, the host's names) and
// the clock has not reached a change. Then nothing is read, decoded or
// written, and the result holds the recorded problems only (Changed is
// empty); skipped says so. A pass whose outcome depends on more than that
// (containers selected, AccessTokens, other namespaces, a recheck) is not
// recorded, nor one that found anything changed within
// passrecord.Window before it: the next unchanged pass is.
func (r *Reconciler) Render(ctx context.Context, name string) (res *Result, skipped bool, err error) {
	dir, err := namespace.Open(r.opts.DataHome, name)
	if err != nil {
		return nil, false, err
	}
	record := filepath.Join(dir.Internal(), recordFile)
	context := r.recordContext()
	skip := func(rel string) bool { return rel == "internal/"+recordFile }
	extra := registries(r.opts.DataHome)
	// the files' times are the real clock's; the outcome's, the pass's
	start := time.Now()
	// the tree is looked at only for a record that could stand
	if rec := passrecord.Load(record); rec.Holds(context, r.opts.Now()) {
		if now, ok := passrecord.Snapshot(dir.Path, skip, extra); ok && rec.Same(now) {
			return &Result{Problems: rec.Problems, RenderOnly: true}, true, nil
		}
	}
	res, err = r.Reconcile(ctx, name)
	if err != nil || res == nil || res.Gone {
		return res, false, err
	}
	// a pass that wrote anything is not settled: no need to look
	var after []passrecord.Entry
	ok := len(res.Changed) == 0 && res.Volatile == "" && res.Recheck == 0
	if ok {
		after, ok = passrecord.Snapshot(dir.Path, skip, extra)
	}
	if !ok || !passrecord.Settled(after, start.Add(-passrecord.Window)) {
		// a record from before would not match what is there now; an
		// old one is removed all the same, so that none outlives its pass
		return res, false, passrecord.Remove(record)
	}
	rec := &passrecord.Record{Context: context, Until: earliest(res.Until, res.RenewAt), Problems: res.Problems, Entries: after}
	return res, false, passrecord.Save(record, rec)
}

// recordContext is what a pass depends on besides its files and the
// clock: this binary (its stat), its version and options, the data home,
// the host's names and addresses (a RouterAccess's certificate and links
// name them).
func (r *Reconciler) recordContext() string {
	exe := ""
	if p, err := os.Executable(); err == nil {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil {
			exe = fmt.Sprintf("%s %d %d %d %d", p, st.Dev, st.Ino, st.Size, st.Mtim.Nano())
		}
	}
	return passrecord.Digest(exe, r.opts.Version, r.opts.Platform, r.opts.DataHome, strconv.FormatInt(r.opts.MaxFileSize, 10),
		strings.Join(r.opts.HostNames(), ","))
}

// registries are the data home's port registries (absolute: a record
// holds no relative path).
func registries(dataHome string) []string {
	home, err := filepath.Abs(dataHome)
	if err != nil {
		return nil
	}
	return namespace.RegistryFiles(home)
}

// until is when the clock alone changes what pass s says (a user
// credential's expiry warning, a grant expiring), and what else than its
// files it depended on ("" for nothing).
func until(s *siteState, ns *resources.Namespace, incomplete []string) (time.Time, string) {
	var at time.Time
	if s.Desired != nil {
		at = s.Desired.Until
	}
	for _, g := range s.Grants {
		if s.Now.Before(g.Expires) {
			at = earliest(at, g.Expires)
		}
	}
	switch {
	case len(s.selects) > 0:
		return at, "containers selected"
	case len(s.reads) > 0:
		return at, "other namespaces read"
	case len(ns.Tokens) > 0:
		return at, "AccessTokens redeemed"
	case len(incomplete) > 0:
		return at, "files not read whole"
	}
	return at, ""
}

// earliest is the earlier of two times, zero being never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}
