package controller

import (
	"cmp"
	"slices"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/site"
)

// What a pass finds of a Connector's selector on a platform that has no
// containers to select (the linux platform): the Connector's error.
const (
	noContainersOnLinux = "the linux platform has no containers to select"
	useHostInstead      = "; set spec.host to the server's address instead"
)

// ValidateOptions tell ValidateNamespace what the daemon would know.
type ValidateOptions struct {
	// Platform is the platform of a namespace without
	// internal/platform.yaml, as the daemon's --platform: podman, docker,
	// linux or none. Empty (or auto) when it is not known: the checks
	// that depend on the platform are skipped for such a namespace.
	Platform string
	// HostNames returns the host's names and addresses (default
	// site.HostNames).
	HostNames func() []string
}

// Validation is what ValidateNamespace found in one namespace.
type Validation struct {
	Problems []resources.Problem
	// Platform is the platform the namespace was checked for: its
	// internal/platform.yaml, else the option; empty when unknown.
	Platform string
	// Recorded is true when the platform is the namespace's own
	// (internal/platform.yaml).
	Recorded bool
}

// ValidateNamespace runs every check of a pass that needs no engine over a
// namespace's files as they are (no last good copies), for the platform
// the namespace would run on, writing nothing and starting nothing: no
// problem here means the pass will find none before the runtime.
func ValidateNamespace(dir namespace.Dir, opts ValidateOptions) (*Validation, error) {
	recorded, err := dir.Platform()
	if err != nil {
		return nil, err
	}
	v := &Validation{Platform: cmp.Or(recorded, opts.Platform), Recorded: recorded != ""}
	if v.Platform == "auto" {
		v.Platform = ""
	}
	ns, err := dir.Load()
	if err != nil {
		return nil, err
	}
	v.Problems = slices.Clone(ns.Problems)
	if ns.Site != nil {
		in, err := site.Peek(dir, ns)
		if err != nil {
			return nil, err
		}
		in.Platform, in.Version, in.Now = layout(v.Platform), "validate", time.Now()
		hostNames := opts.HostNames
		if hostNames == nil {
			hostNames = site.HostNames
		}
		in.HostNames = hostNames()
		in.SelectorProblems = selectorProblems(ns, v.Platform)
		d, err := site.Build(in)
		if err != nil {
			return nil, err
		}
		v.Problems = append(v.Problems, d.Problems...)
	}
	resources.SortProblems(v.Problems)
	return v, nil
}

// selectorProblems are, by Connector name, why a Connector's selector
// cannot select on platform at all, as a pass finds it: on linux, every
// Connector with a selector and no host.
func selectorProblems(ns *resources.Namespace, platform string) map[string]string {
	out := map[string]string{}
	if platform != "linux" {
		return out
	}
	for _, c := range ns.Connectors {
		if c.Spec.Host == "" && c.Spec.Selector != "" {
			out[c.Metadata.Name] = noContainersOnLinux + useHostInstead
		}
	}
	return out
}
