package resources

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
)

// Problem is one validation finding, tied to a file, a line and, when it
// concerns a resource, to that resource and one of its fields.
type Problem struct {
	File    string // relative to the namespace directory
	Line    int
	ID      string // Kind/name, empty for file-level problems
	Field   string // field path such as spec.port, empty for whole documents
	Message string
	Warning bool // the resource is still used; the problem is reported only
}

// String formats the problem as FILE:LINE: Kind/name: field: message.
func (p Problem) String() string { return p.In("") }

// In formats the problem with its file joined to dir.
func (p Problem) In(dir string) string {
	file := p.File
	if dir != "" {
		file = filepath.Join(dir, file)
	}
	s := file
	if p.Line > 0 {
		s = fmt.Sprintf("%s:%d", s, p.Line)
	}
	if p.Warning {
		s += ": warning"
	}
	if p.ID != "" {
		s += ": " + p.ID
	}
	if p.Field != "" {
		s += ": " + p.Field
	}
	return s + ": " + p.Message
}

// Short formats the problem for a status message: without the resource,
// which the status belongs to already.
func (p Problem) Short() string {
	s := fmt.Sprintf("%s:%d: ", p.File, p.Line)
	if p.Warning {
		s += "warning: "
	}
	if p.Field != "" {
		s += p.Field + ": "
	}
	return s + p.Message
}

// SortProblems orders problems by file, line, resource and field.
func SortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.ID, b.ID), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message))
	})
}
