package resources

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// fastParse parses the common shape of a resource document — block
// mappings and sequences of simple one-line scalars — straight into the
// yaml.Node tree yaml.v3 would build (kinds, tags, values, styles, lines
// and columns), several times faster and with a fraction of the garbage.
// Anything outside that shape (flow collections, anchors, tags, multi-line
// or escaped scalars, comments after values, tabs, numbers in other bases)
// makes it answer false, and the caller parses with yaml.v3. A
// differential test holds it to yaml.v3's output.
func fastParse(data []byte) (*yaml.Node, bool) {
	if !utf8.Valid(data) || bytes.ContainsFunc(data, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' || r == 0x7f || r == 0xfeff }) {
		return nil, false
	}
	p := fastParser{}
	if !p.lines(data) || len(p.ls) == 0 {
		return nil, false
	}
	// the nodes of a document in one allocation (past what lines counted,
	// they would be allocated one by one)
	p.slab = make([]yaml.Node, 0, p.nodes)
	root, ok := p.block(p.ls[0].indent)
	if !ok || p.i != len(p.ls) {
		return nil, false
	}
	return root, true
}

type fastLine struct {
	num    int    // 1-based line number
	indent int    // 0-based column of the content
	text   string // content, without indentation and trailing space
}

type fastParser struct {
	ls    []fastLine
	i     int
	slab  []yaml.Node // the nodes, allocated together
	nodes int         // how many the lines make at most
}

// node returns a new node holding n, from the slab while it has room.
func (p *fastParser) node(n *yaml.Node) *yaml.Node {
	if len(p.slab) == cap(p.slab) {
		c := *n
		return &c
	}
	p.slab = append(p.slab, *n)
	return &p.slab[len(p.slab)-1]
}

// lines splits data into content lines, skipping blank and comment lines.
func (p *fastParser) lines(data []byte) bool {
	// one string for the document; every value is a piece of it
	rest := string(data)
	p.ls = make([]fastLine, 0, strings.Count(rest, "\n")+1)
	num := 0
	for len(rest) > 0 {
		num++
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimRight(line, " \r")
		if strings.IndexByte(line, '\t') >= 0 {
			return false
		}
		text := strings.TrimLeft(line, " ")
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		if text[0] == '%' || strings.HasPrefix(text, "---") || strings.HasPrefix(text, "...") {
			return false
		}
		p.ls = append(p.ls, fastLine{num: num, indent: len(line) - len(text), text: text})
		// a key and its value (a scalar, or the block below it); an item
		// (a scalar), or an item "- key: value" (a mapping, its key, its
		// value)
		switch item, ok := strings.CutPrefix(text, "- "); {
		case !ok:
			p.nodes += 2
		case strings.Contains(item, ": ") || strings.HasSuffix(item, ":"):
			p.nodes += 3
		default:
			p.nodes++
		}
	}
	p.nodes++ // the root
	return true
}

// block parses the node starting at the current line, whose content
// starts at column indent.
func (p *fastParser) block(indent int) (*yaml.Node, bool) {
	l := p.ls[p.i]
	if l.indent != indent {
		return nil, false
	}
	if l.text == "-" || strings.HasPrefix(l.text, "- ") {
		return p.sequence(indent)
	}
	return p.mapping(indent)
}

func (p *fastParser) sequence(indent int) (*yaml.Node, bool) {
	first := p.ls[p.i]
	seq := p.node(&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: first.num, Column: indent + 1})
	for p.i < len(p.ls) {
		l := p.ls[p.i]
		if l.indent != indent || !strings.HasPrefix(l.text, "- ") {
			break
		}
		rest := strings.TrimLeft(l.text[2:], " ")
		col := indent + len(l.text) - len(rest)
		var item *yaml.Node
		var ok bool
		if key, _, isMap := cutKey(rest); isMap && key != "" {
			// "- key: value": a mapping whose keys sit at col
			p.ls[p.i] = fastLine{num: l.num, indent: col, text: rest}
			item, ok = p.mapping(col)
		} else {
			item, ok = p.scalar(rest, l.num, col)
			p.i++
		}
		if !ok {
			return nil, false
		}
		seq.Content = append(seq.Content, item)
	}
	return seq, true
}

// cutKey splits "key: value" or "key:"; isMap is false when the text is
// not a mapping entry.
func cutKey(text string) (key, value string, isMap bool) {
	if k, v, ok := strings.Cut(text, ": "); ok {
		return k, strings.TrimLeft(v, " "), true
	}
	if k, ok := strings.CutSuffix(text, ":"); ok {
		return k, "", true
	}
	return "", "", false
}

func (p *fastParser) mapping(indent int) (*yaml.Node, bool) {
	first := p.ls[p.i]
	m := p.node(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: first.num, Column: indent + 1})
	for p.i < len(p.ls) {
		l := p.ls[p.i]
		if l.indent < indent {
			break
		}
		if l.indent > indent || strings.HasPrefix(l.text, "- ") || l.text == "-" {
			return nil, false
		}
		key, value, ok := cutKey(l.text)
		if !ok || !plainString(key) || strings.ContainsAny(key, " ") {
			return nil, false
		}
		keyNode := p.node(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: l.num, Column: indent + 1})
		p.i++
		var val *yaml.Node
		if value != "" {
			col := indent + len(l.text) - len(value)
			if val, ok = p.scalar(value, l.num, col); !ok {
				return nil, false
			}
			if p.i < len(p.ls) && p.ls[p.i].indent > indent {
				return nil, false // a multi-line scalar
			}
		} else {
			if p.i >= len(p.ls) {
				return nil, false // "key:" at the end: a null yaml.v3 places its own way
			}
			next := p.ls[p.i]
			switch {
			case next.indent > indent:
				val, ok = p.block(next.indent)
			case next.indent == indent && (strings.HasPrefix(next.text, "- ") || next.text == "-"):
				val, ok = p.sequence(indent)
			default:
				return nil, false
			}
			if !ok {
				return nil, false
			}
		}
		m.Content = append(m.Content, keyNode, val)
	}
	return m, true
}

// scalar makes the node of a one-line scalar at line num, column col
// (0-based), or answers false for anything but simple plain and quoted
// scalars.
func (p *fastParser) scalar(text string, num, col int) (*yaml.Node, bool) {
	n := yaml.Node{Kind: yaml.ScalarNode, Line: num, Column: col + 1}
	switch text[0] {
	case '"':
		inner, ok := strings.CutSuffix(text[1:], `"`)
		if !ok || strings.ContainsAny(inner, `"\`) {
			return nil, false
		}
		n.Tag, n.Value, n.Style = "!!str", inner, yaml.DoubleQuotedStyle
		return p.node(&n), true
	case '\'':
		inner, ok := strings.CutSuffix(text[1:], `'`)
		if !ok || strings.Contains(inner, `'`) {
			return nil, false
		}
		n.Tag, n.Value, n.Style = "!!str", inner, yaml.SingleQuotedStyle
		return p.node(&n), true
	}
	tag, ok := plainTag(text)
	if !ok {
		return nil, false
	}
	n.Tag, n.Value = tag, text
	return p.node(&n), true
}

// plainString tells whether text is a plain scalar that resolves to a
// string without surprises.
func plainString(text string) bool {
	tag, ok := plainTag(text)
	return ok && tag == "!!str"
}

// plainTag resolves a plain scalar the way yaml.v3 does, for the values
// this parser accepts: decimal integers, true/false, null and ~, and
// strings of ordinary characters.
func plainTag(text string) (string, bool) {
	if text == "" || strings.Contains(text, " #") || strings.Contains(text, ": ") || strings.HasSuffix(text, ":") {
		return "", false
	}
	if strings.ContainsRune("-?:,[]{}#&*!|>'\"%@`", rune(text[0])) && !(text[0] == '-' && len(text) > 1 && isDigits(text[1:])) {
		return "", false
	}
	switch text {
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return "!!bool", true
	case "~", "null", "Null", "NULL":
		return "!!null", true
	}
	digits := strings.TrimLeft(text, "+-")
	if digits == "" {
		return "", false
	}
	if len(text)-len(digits) <= 1 && isDigits(digits) {
		if len(digits) > 1 && digits[0] == '0' {
			return "", false // octal and friends: leave them to yaml.v3
		}
		return "!!int", true
	}
	if c := digits[0]; c >= '0' && c <= '9' || c == '.' || c == '+' || c == '-' {
		// numbers in other forms (1.5, 0x1F, 1_000, 1e3), dates: only
		// dotted digits with at least two dots (addresses) are plain
		// strings for sure
		if strings.Count(text, ".") < 2 || strings.Trim(text, "0123456789.") != "" {
			return "", false
		}
		return "!!str", true
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		ordinary := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '/' || c == '.' || c == '=' || c == '@' || c == ' ' || c == ',' || c >= 0x80
		if !ordinary {
			return "", false // colons, quotes, brackets: yaml.v3 decides
		}
	}
	switch strings.ToLower(text) {
	case ".inf", ".nan", "-.inf", "+.inf":
		return "", false
	}
	return "!!str", true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
