// Package status writes the status of every resource of a namespace to
// runtime/resources/<Kind>-<name>.yaml: the resource as read plus the
// .status the controller computed, in the shape Skupper's CLI reads.
//
// A status file is rewritten only when its content changes, and a
// condition's lastTransitionTime moves only when the condition changes. It
// never writes outside runtime/resources.
package status

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/site-controller/site-controller/pkg/namespace"
)

// Values of Status.Status.
const (
	Pending = "Pending"
	Ready   = "Ready"
	Error   = "Error"
)

// Condition types.
const (
	Configured = "Configured"
	Running    = "Running"
	Matched    = "Matched"
	ReadyCond  = "Ready"
)

// Status is the .status block of a resource.
type Status struct {
	Status               string      `yaml:"status"`
	Message              string      `yaml:"message,omitempty"`
	Conditions           []Condition `yaml:"conditions,omitempty"`
	HasMatchingConnector *bool       `yaml:"hasMatchingConnector,omitempty"`
	HasMatchingListener  *bool       `yaml:"hasMatchingListener,omitempty"`
	SitesInNetwork       *int        `yaml:"sitesInNetwork,omitempty"`
}

// Condition is one Kubernetes-style condition.
type Condition struct {
	Type               string `yaml:"type"`
	Status             string `yaml:"status"` // True, False, Unknown
	Reason             string `yaml:"reason"`
	Message            string `yaml:"message"`
	LastTransitionTime string `yaml:"lastTransitionTime"`
	ObservedGeneration int64  `yaml:"observedGeneration"`
}

// Condition returns the condition of type t, or nil.
func (s *Status) Condition(t string) *Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// Entry is one status file to write.
type Entry struct {
	Kind, Name string
	// Node is the resource document as read; its status field is replaced.
	// When nil, Object is marshalled instead (generated resources).
	Node   *yaml.Node
	Object any
	Status Status
}

// FileName is <Kind>-<name>.yaml.
func FileName(kind, name string) string { return kind + "-" + name + ".yaml" }

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Writable tells whether kind and name make a safe file name.
func Writable(kind, name string) bool {
	return safeName.MatchString(kind) && safeName.MatchString(name) && len(kind)+len(name) < 240
}

// Writer writes the status files of one namespace.
type Writer struct {
	Dir namespace.Dir
	Now func() time.Time
}

// Write writes every entry, keeping lastTransitionTime of conditions that
// did not change, and removes status files of resources that are gone. It
// returns the paths it changed, relative to the namespace directory.
func (w Writer) Write(entries []Entry) ([]string, error) {
	dir := w.Dir.RuntimeResources()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	now := w.Now().UTC().Format(time.RFC3339)
	keep := map[string]bool{}
	var changed []string
	var errs []error
	for _, e := range entries {
		if !Writable(e.Kind, e.Name) {
			continue
		}
		name := FileName(e.Kind, e.Name)
		if keep[name] {
			continue // a duplicate definition; the first one owns the file
		}
		keep[name] = true
		path := filepath.Join(dir, name)
		old := readStatus(path)
		for i := range e.Status.Conditions {
			c := &e.Status.Conditions[i]
			c.LastTransitionTime = now
			if old != nil {
				if o := old.Condition(c.Type); o != nil && o.Status == c.Status && o.LastTransitionTime != "" {
					c.LastTransitionTime = o.LastTransitionTime
				}
			}
		}
		data, err := marshal(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("status of %s/%s: %w", e.Kind, e.Name, err))
			continue
		}
		c, err := namespace.WriteFile(path, data, 0o644, 0o755, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c {
			changed = append(changed, filepath.Join("runtime", "resources", name))
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing %s: %w", dir, err))
	}
	for _, f := range files {
		if f.IsDir() || keep[f.Name()] || !strings.HasSuffix(f.Name(), ".yaml") || strings.HasPrefix(f.Name(), ".") {
			continue
		}
		if err := os.Remove(filepath.Join(dir, f.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing stale status: %w", err))
			continue
		}
		changed = append(changed, filepath.Join("runtime", "resources", f.Name()))
	}
	return changed, errors.Join(errs...)
}

// Read returns the status stored in a status file.
func Read(path string) (*Status, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Status Status `yaml:"status"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &doc.Status, nil
}

func readStatus(path string) *Status {
	s, err := Read(path)
	if err != nil {
		return nil
	}
	return s
}

func marshal(e Entry) ([]byte, error) {
	var root yaml.Node
	if e.Node != nil {
		root = *e.Node
		root.Style = 0
		root.Content = nil
		for i := 0; i+1 < len(e.Node.Content); i += 2 {
			if e.Node.Content[i].Value != "status" {
				root.Content = append(root.Content, blockStyle(e.Node.Content[i]), blockStyle(e.Node.Content[i+1]))
			}
		}
	} else if err := root.Encode(e.Object); err != nil {
		return nil, err
	}
	var st yaml.Node
	if err := st.Encode(e.Status); err != nil {
		return nil, err
	}
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "status"}, &st)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// blockStyle copies a node tree in plain block style, so that a resource
// read from JSON or flow YAML is written back as ordinary YAML. Literal and
// folded strings keep their style; the encoder quotes what needs quoting.
func blockStyle(n *yaml.Node) *yaml.Node {
	c := *n
	c.Style &= yaml.LiteralStyle | yaml.FoldedStyle
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		c = *blockStyle(n.Alias)
	}
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = blockStyle(child)
	}
	return &c
}
