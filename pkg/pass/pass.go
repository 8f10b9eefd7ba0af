// Package pass holds what one reconcile pass over a namespace read,
// worked out and did, as a value (Pass), and works out from it, and from
// the site's network as last seen, the status of every resource
// (Statuses).
//
// It is pure: it reads no file, asks no router and keeps nothing; running
// a pass is package controller's.
package pass

import (
	"time"

	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/netview"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/site"
	"github.com/site-controller/site-controller/pkg/status"
	"github.com/site-controller/site-controller/pkg/tokens"
)

// Pass is one reconcile pass over a namespace, as a value.
type Pass struct {
	Namespace *resources.Namespace
	Dir       namespace.Dir
	Now       time.Time
	Result    *Result
	// Problems are those found while preparing the site
	Problems []resources.Problem
	// Desired is the site worked out by this pass; nil without a Site.
	Desired *site.Desired
	// Grants and Tokens are what the AccessGrants' and AccessTokens'
	// statuses show, by name.
	Grants map[string]Grant
	Tokens map[string]tokens.View
	// View is the site's network as last observed (nil without an
	// observer).
	View *netview.View
	// Incomplete names files that could not be used whole and whose last
	// good content is unknown: the pass is no evidence that anything in
	// them is gone.
	Incomplete []string
	// Selections are, by Connector name, what the selectors of Connectors
	// without a host selected; Bindings what the AttachedConnectorBindings
	// bind, and Attached what the AttachedConnectors are bound to, by name.
	Selections map[string]Selection
	Bindings   map[string]Binding
	Attached   map[string]AttachedView
	// Memo keeps statuses from the namespace's last pass (nil: none).
	Memo *Memo
}

// Result tells what one pass did.
type Result struct {
	// Gone is true when the namespace directory (or its input/) no longer
	// exists: nothing was read or written.
	Gone      bool
	Namespace *resources.Namespace
	Platform  string
	SiteID    string
	// Config is the rendered router configuration; nil without a Site.
	Config routerconfig.Config
	// ConfigChanged is true when runtime/router/skrouterd.json changed.
	ConfigChanged bool
	// Changed lists the files written or removed, relative to the
	// namespace directory, sorted.
	Changed []string
	// Problems holds validation problems and problems found while
	// preparing resources (missing credentials), sorted.
	Problems []resources.Problem

	// RenderOnly is true when no runtime runs this namespace's router
	// (platform none, or the render command).
	RenderOnly bool
	// Router is the state of the router after the pass; nil when
	// rendering only.
	Router *runtime.State
	// RouterErr is why the runtime could not do what the pass asked; the
	// daemon retries with backoff.
	RouterErr error
	// Recheck asks for another pass after this long, to follow a router
	// that is starting or failing.
	Recheck time.Duration
	// Live is the running router's state after a live apply; nil when
	// not managed live (no runtime, Live off, or not reachable).
	Live *live.Live
	// LiveErr is why the router could not be reached or changed live.
	LiveErr error
	// Restarted says why this pass restarted the router, if it did.
	Restarted string
	// Upgrading is the change ("image A → B") the router restarted for,
	// until it serves again; UpgradePending says why a router that runs
	// another image than the runtime's was not restarted yet.
	Upgrading, UpgradePending string
	// RenewAt is when the first certificate the site generated is due
	// to be renewed: a pass then issues it again (zero: none).
	RenewAt time.Time
	// Until is when the clock alone changes the pass's outcome (a
	// certificate due, a user credential's expiry warning, a grant
	// expiring; zero: never); Volatile says what else than its files and
	// the clock it depends on ("": nothing), which a render must not
	// take as unchanged (passrecord).
	Until    time.Time
	Volatile string
	// Phases is how long the pass took over each of its steps.
	Phases Phases
	// Patched is set when the pass patched the one before it, told which
	// files changed (only their resources, and those of their routing
	// keys, were looked at); Removed and Added are the documents of
	// those files before and now.
	Patched        bool
	Removed, Added []*resources.Document
}

// Phases are the steps of a pass, timed: reading the input (files,
// resources, selected containers), working out and writing the site,
// making the runtime and the router run it, writing the statuses.
type Phases struct {
	Read, Render, Apply, Status time.Duration
}

// Selection is what a selector selected on a site's platform.
type Selection struct {
	Targets []routerconfig.Target
	Pods    []status.SelectedPod
	// None says why nothing is selected ("" when something is)
	None string
	// Left says which matching containers were left out, and why
	Left string
	// Problem is set when the selector cannot select on the platform at
	// all (linux): an error of the resource
	Problem string
}

// Binding is what a site's AttachedConnectorBinding binds.
type Binding struct {
	// Bound is the attached connector rendered; nil when the two sides
	// do not agree
	Bound *routerconfig.Attached
	Sel   Selection
	// Why says why it is not bound
	Why string
}

// AttachedView is what an AttachedConnector's status says: whether the
// site it names binds it, and what it selects there.
type AttachedView struct {
	// Site is the namespace of the site, RoutingKey the binding's
	Site, RoutingKey string
	Sel              Selection
	Why              string
}

// Grant is what an AccessGrant's status shows.
type Grant struct {
	ID, Code    string
	Expires     time.Time
	Redemptions int
	Allowed     int
	URL, CA     string
	// Problem is why it cannot be redeemed (no grant server, no link
	// access); empty when it is served
	Problem string
}
