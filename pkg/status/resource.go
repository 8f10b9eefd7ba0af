package status

import (
	"path/filepath"
	"strings"

	"github.com/site-controller/site-controller/pkg/namespace"
)

// Resource is one resource's status as read back from its status file:
// what `site-controller status -o json` prints and the console's API
// serves (the same type, so that the two cannot drift apart).
type Resource struct {
	Namespace string `json:"namespace" yaml:"namespace"`
	Kind      string `json:"kind" yaml:"kind"`
	Name      string `json:"name" yaml:"name"`
	// File and Line are where the resource is defined (relative to the
	// namespace directory), when the reader knows: the daemon's last pass
	// does, a status file does not.
	File   string `json:"file,omitempty" yaml:"file,omitempty"`
	Line   int    `json:"line,omitempty" yaml:"line,omitempty"`
	Status `json:"status" yaml:"status"`
	// Error says why the status file could not be read.
	Error string `json:"error,omitempty" yaml:"error,omitempty"`
}

// Problem tells whether the resource needs a look: its status file could
// not be read, or its status is not Ready.
func (r *Resource) Problem() bool {
	return r.Error != "" || r.Status.Status != Ready
}

// ReadResources reads the status files of a namespace, sorted by file
// name (kind, then name).
func ReadResources(dir namespace.Dir) ([]Resource, error) {
	files, err := filepath.Glob(filepath.Join(dir.RuntimeResources(), "*.yaml"))
	if err != nil {
		return nil, err
	}
	out := make([]Resource, 0, len(files))
	for _, f := range files {
		kind, name, _ := strings.Cut(strings.TrimSuffix(filepath.Base(f), ".yaml"), "-")
		r := Resource{Namespace: dir.Name, Kind: kind, Name: name}
		if st, err := Read(f); err != nil {
			r.Error = err.Error()
		} else {
			r.Status = *st
		}
		out = append(out, r)
	}
	return out, nil
}
