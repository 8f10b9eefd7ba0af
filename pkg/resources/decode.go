package resources

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Document is one YAML (or JSON) document of an input file.
type Document struct {
	File string // path relative to the namespace directory
	Line int    // line where the document starts
	// Node is the parsed document; nil when Raw is set.
	Node *yaml.Node
	// Raw is the document's text when it is a block mapping without a
	// status field, so that a status can be appended to it verbatim.
	Raw []byte

	APIVersion string
	Kind       string
	Name       string

	// Object is the decoded resource; nil when the kind is unknown or
	// unsupported, or the document is not a mapping.
	Object Object

	lines    map[string]int // field path → line
	problems []Problem      // found while decoding
	// checked is what the document's own checks found, kept for the
	// next pass: a document read from a file that has not changed since
	// is not checked again.
	checked *checked
}

type checked struct {
	ns    string
	probs []Problem
}

// LineOf returns the line of a field path such as "spec.port", falling back
// to the nearest enclosing field and then to the document.
func (d *Document) LineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := d.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return d.Line
}

// ID is "Kind/name" as used in messages.
func (d *Document) ID() string {
	if d.Kind == "" {
		return "<no kind>"
	}
	if d.Name == "" {
		return d.Kind + "/<no name>"
	}
	return d.Kind + "/" + d.Name
}

// Decode reads every document of one file. Problems that concern the file
// (broken YAML, a document that is not a mapping) are returned; problems of
// a document stay with it for Build. Documents are split at "---" lines
// first, so a syntax error costs only the document it is in.
func Decode(file string, data []byte) ([]*Document, []Problem) {
	var docs []*Document
	var probs []Problem
	for _, chunk := range splitDocuments(data) {
		var n yaml.Node
		root, fast := fastParse(chunk.text)
		if fast {
			n = yaml.Node{Kind: yaml.DocumentNode, Line: 1, Column: 1, Content: []*yaml.Node{root}}
		} else if err := yaml.Unmarshal(chunk.text, &n); err != nil {
			p := syntaxProblem(file, err, chunk.line-1)
			// at end of input yaml names the line after the last one
			last := chunk.line + bytes.Count(bytes.TrimRight(chunk.text, "\n"), []byte("\n"))
			p.Line = min(p.Line, last)
			probs = append(probs, p)
			continue
		}
		if n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
			continue // empty document
		}
		shiftLines(&n, chunk.line-1)
		root = n.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		if root.Kind != yaml.MappingNode {
			probs = append(probs, Problem{File: file, Line: root.Line, Message: "document is not a mapping; expected a resource with apiVersion, kind and metadata"})
			continue
		}
		// the fast parser takes no anchors or aliases: its tree is as big
		// as the text
		if !fast && expandedSize(root, map[*yaml.Node]int{}, 0) > MaxExpandedNodes {
			probs = append(probs, Problem{File: file, Line: root.Line, Message: fmt.Sprintf("document expands to more than %d nodes through its aliases; write it out without so many aliases", MaxExpandedNodes)})
			continue
		}
		doc := &Document{File: file, Line: root.Line, Node: root, lines: map[string]int{}}
		doc.problems = doc.decode()
		if root.Style&yaml.FlowStyle == 0 && root.Column == 1 && !hasKey(root, "status") {
			// the text can be echoed as it is in the status file; the
			// parsed tree is not needed any more
			doc.Raw = chunk.text
			doc.Node = nil
		}
		docs = append(docs, doc)
	}
	return docs, probs
}

// MaxExpandedNodes bounds what one document may grow to when its aliases
// are expanded: every walk over a document (decoding, the status echo)
// follows aliases, and a few hundred bytes of nested aliases can expand
// exponentially.
const MaxExpandedNodes = 100000

// expandedSize counts the nodes of a tree with its aliases expanded, up to
// a little over MaxExpandedNodes; memo holds the sizes of shared subtrees.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int, depth int) int {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || depth > 1000 {
			return MaxExpandedNodes + 1 // broken or recursive
		}
		n = n.Alias
	}
	if v, ok := memo[n]; ok {
		return v
	}
	memo[n] = MaxExpandedNodes + 1 // while counting: a cycle is too many
	size := 1
	for _, c := range n.Content {
		size += expandedSize(c, memo, depth+1)
		if size > MaxExpandedNodes {
			break
		}
	}
	memo[n] = size
	return size
}

// Warn adds a warning to a document: it stays in use, and its status says
// so.
func (d *Document) Warn(msg string) {
	d.problems = append(d.problems, Problem{File: d.File, Line: d.Line, ID: d.ID(), Message: msg, Warning: true})
	d.checked = nil
}

type chunk struct {
	text []byte
	line int // line of the chunk's first line in the file
}

// splitDocuments cuts a YAML stream at its document markers: lines that
// are "---" or "...". A marker line with content ("--- {a: 1}") starts its
// document and stays in it, which YAML parses as it is.
func splitDocuments(data []byte) []chunk {
	var out []chunk
	start, startLine, line := 0, 1, 1
	flush := func(end int) {
		if end > start {
			out = append(out, chunk{text: data[start:end], line: startLine})
		}
	}
	for pos := 0; pos < len(data); line++ {
		next := len(data)
		if eol := bytes.IndexByte(data[pos:], '\n'); eol >= 0 {
			next = pos + eol + 1
		}
		l := bytes.TrimRight(data[pos:next], "\r\n")
		switch {
		case bytes.Equal(l, []byte("---")), bytes.Equal(l, []byte("...")):
			flush(pos)
			start, startLine = next, line+1
		case bytes.HasPrefix(l, []byte("--- ")), bytes.HasPrefix(l, []byte("---\t")):
			flush(pos)
			start, startLine = pos, line
		}
		pos = next
	}
	flush(len(data))
	return out
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// shiftLines moves every line number of a node tree by n.
func shiftLines(n *yaml.Node, by int) {
	if by == 0 {
		return
	}
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}

// syntaxProblem turns a yaml.v3 error into a problem with the line pulled out
// of its message ("yaml: line 3: mapping values are not allowed ...").
func syntaxProblem(file string, err error, offset int) Problem {
	msg := err.Error()
	line := 0
	rest := strings.TrimPrefix(msg, "yaml: ")
	if strings.HasPrefix(rest, "line ") {
		r := strings.TrimPrefix(rest, "line ")
		if i := strings.Index(r, ":"); i > 0 {
			if n, err := strconv.Atoi(r[:i]); err == nil {
				line = n + offset
				rest = strings.TrimSpace(r[i+1:])
				// yaml.v3 reports parser errors at the 0-based line of
				// the construct they occurred in (the "[" of an unclosed
				// sequence); scanner errors are already 1-based
				if strings.HasPrefix(rest, "did not find expected") {
					line++
				}
			}
		}
	}
	return Problem{File: file, Line: line, Message: "invalid YAML: " + rest}
}

var kindNames = []string{KindSite, KindListener, KindConnector, KindMultiKeyListener, KindLink, KindRouterAccess, KindAccessGrant, KindAccessToken, KindCertificate, KindAttachedConnector, KindAttachedConnectorBinding, KindSecret}

func newObject(apiVersion, kind string) Object {
	if apiVersion == "v1" && kind == KindSecret {
		return &Secret{}
	}
	if apiVersion != APIVersion {
		return nil
	}
	switch kind {
	case KindSite:
		return &Site{}
	case KindListener:
		return &Listener{}
	case KindConnector:
		return &Connector{}
	case KindAttachedConnector:
		return &AttachedConnector{}
	case KindAttachedConnectorBinding:
		return &AttachedConnectorBinding{}
	case KindRouterAccess:
		return &RouterAccess{}
	case KindLink:
		return &Link{}
	case KindMultiKeyListener:
		return &MultiKeyListener{}
	case KindCertificate:
		return &Certificate{}
	case KindAccessGrant:
		return &AccessGrant{}
	case KindAccessToken:
		return &AccessToken{}
	}
	return nil
}

func (d *Document) decode() []Problem {
	top := map[string]*yaml.Node{}
	for i := 0; i+1 < len(d.Node.Content); i += 2 {
		top[d.Node.Content[i].Value] = d.Node.Content[i+1]
	}
	if n := top["apiVersion"]; n != nil {
		d.APIVersion = n.Value
		d.lines["apiVersion"] = n.Line
	}
	if n := top["kind"]; n != nil {
		d.Kind = n.Value
		d.lines["kind"] = n.Line
	}
	if m := top["metadata"]; m != nil && m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == "name" {
				d.Name = m.Content[i+1].Value
			}
		}
	}
	var probs []Problem
	switch {
	case d.Kind == "":
		return []Problem{d.problem("kind", "required; expected one of "+strings.Join(kindNames, ", "))}
	case d.APIVersion == "":
		return []Problem{d.problem("apiVersion", "required; expected "+APIVersion)}
	}
	if d.Kind == KindSecret {
		if d.APIVersion != "v1" {
			return []Problem{d.problem("apiVersion", fmt.Sprintf("Secret must be apiVersion v1, got %q", d.APIVersion))}
		}
	} else if reason, ok := knownUnsupported[d.Kind]; ok {
		return []Problem{d.problem("kind", reason)}
	} else if newObject(APIVersion, d.Kind) == nil {
		msg := fmt.Sprintf("unknown kind %q", d.Kind)
		if s := didYouMean(d.Kind, kindNames); s != "" {
			msg += s
		} else {
			msg += "; expected one of " + strings.Join(kindNames, ", ")
		}
		return []Problem{d.problem("kind", msg)}
	} else if d.APIVersion != APIVersion {
		return []Problem{d.problem("apiVersion", fmt.Sprintf("unsupported apiVersion %q for %s; expected %s", d.APIVersion, d.Kind, APIVersion))}
	}
	obj := newObject(d.APIVersion, d.Kind)
	f := fieldDecoder{doc: d}
	f.value(d.Node, reflect.ValueOf(obj).Elem(), "")
	probs = append(probs, f.probs...)
	d.Object = obj
	return probs
}

func (d *Document) problem(field, msg string) Problem {
	return Problem{File: d.File, Line: d.LineOf(field), ID: d.ID(), Field: field, Message: msg}
}

// fieldDecoder fills a typed value from a YAML node, strictly: unknown fields,
// duplicate keys and values of the wrong type are problems, all collected.
type fieldDecoder struct {
	doc   *Document
	probs []Problem
}

func (f *fieldDecoder) fail(n *yaml.Node, path, msg string) {
	f.probs = append(f.probs, Problem{File: f.doc.File, Line: n.Line, ID: f.doc.ID(), Field: path, Message: msg})
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

var ignoredType = reflect.TypeOf(ignored{})

func (f *fieldDecoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		f.doc.lines[path] = n.Line
	}
	if v.Type() == ignoredType {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "field:" or "field: ~" leaves the zero value
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			f.fail(n, path, "must be a mapping, got "+describe(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			name := k.Value
			fp := join(path, name)
			if seen[name] {
				f.fail(k, fp, "duplicate field")
				continue
			}
			seen[name] = true
			field, ok := fieldByTag(v, name)
			if !ok {
				f.fail(k, fp, "unknown field"+didYouMean(name, fieldNames(v.Type())))
				continue
			}
			f.doc.lines[fp] = k.Line
			f.value(val, field, fp)
			f.doc.lines[fp] = k.Line
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.value(n, p.Elem(), path)
		v.Set(p)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			f.fail(n, path, "must be a string, got "+describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || err != nil {
			f.fail(n, path, "must be true or false, got "+describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			f.fail(n, path, "must be an integer, got "+describe(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil {
			f.fail(n, path, "must be an integer, got "+describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			f.fail(n, path, "must be a mapping of strings, got "+describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			fp := join(path, k.Value)
			f.doc.lines[fp] = k.Line
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				f.fail(k, fp, "duplicate key")
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			f.value(val, e, fp)
			f.doc.lines[fp] = k.Line
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			f.fail(n, path, "must be a list, got "+describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			f.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	default:
		f.fail(n, path, "cannot decode into "+v.Type().String())
	}
}

// fieldByTag finds the struct field with the given yaml name, looking into
// inline (embedded) structs.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == ",inline" {
			if fv, ok := fieldByTag(v.Field(i), name); ok {
				return fv, true
			}
			continue
		}
		if tag == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// describe names what a node holds, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!int", "!!float", "!!bool":
		return n.Value
	}
	return strconv.Quote(n.Value)
}
