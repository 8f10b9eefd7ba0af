package dump

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Redacted stands in for a value the dump does not carry.
const Redacted = "<redacted>"

// redactedKey stands in for a private key block.
const redactedKey = "<redacted private key>"

// sensitiveKey tells whether a mapping key names a credential, in any
// document: an AccessGrant's or AccessToken's code, a password, a key.
func sensitiveKey(key string) bool {
	k := strings.ToLower(key)
	switch {
	case k == "code", k == "token", k == "key", k == "privatekey", k == "passphrase":
		return true
	case strings.Contains(k, "password"), strings.HasSuffix(k, ".key"):
		return !strings.HasSuffix(k, "file") // a path to one is not one
	}
	return false
}

// secretFields are the fields of a Secret whose values are credentials.
var secretFields = map[string]bool{"data": true, "stringData": true}

// RedactYAML returns the YAML (or JSON) documents in data with every
// credential replaced by Redacted: a Secret's data and stringData values
// (their keys stay), every code (AccessGrant, AccessToken), password or
// key, and any private key block. What cannot be parsed is redacted line
// by line instead.
func RedactYAML(data []byte) []byte {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return redactLines(data)
		}
		docs = append(docs, &n)
	}
	var out bytes.Buffer
	for i, doc := range docs {
		redactNode(doc, kindOf(doc), 0)
		if i > 0 {
			out.WriteString("---\n")
		}
		enc := yaml.NewEncoder(&out)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return redactLines(data)
		}
		enc.Close()
	}
	return ScrubKeys(out.Bytes())
}

// kindOf is a document's kind, "" when it has none.
func kindOf(doc *yaml.Node) string {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// redactNode redacts below n; depth counts mappings, so that a Secret's
// own data (depth 1) is told from a nested field of that name.
func redactNode(n *yaml.Node, kind string, depth int) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			redactNode(c, kind, depth)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			switch {
			case kind == "Secret" && depth == 0 && secretFields[key]:
				redactValues(val)
			case sensitiveKey(key):
				*val = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: Redacted}
			default:
				redactNode(val, kind, depth+1)
			}
		}
	case yaml.ScalarNode:
		if strings.Contains(n.Value, "PRIVATE KEY") || strings.Contains(n.Value, "LS0tLS1CRUdJTi") {
			n.Value = string(ScrubKeys([]byte(n.Value)))
		}
	case yaml.AliasNode:
		// the anchor it names is redacted where it is defined
	}
}

// redactValues replaces every value below n (a Secret's data), keeping
// the keys, so that the dump still tells which files a Secret has.
func redactValues(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 1; i < len(n.Content); i += 2 {
			n.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: Redacted}
		}
		return
	}
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: Redacted}
}

// RedactJSON returns a JSON document with credentials redacted as
// RedactYAML does, indented; what cannot be parsed is redacted line by
// line.
func RedactJSON(data []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return redactLines(data)
	}
	kind := ""
	if m, ok := v.(map[string]any); ok {
		kind, _ = m["kind"].(string)
	}
	out, err := marshalJSON(redactValue(v, kind, 0))
	if err != nil {
		return redactLines(data)
	}
	return ScrubKeys(out)
}

// marshalJSON is v as indented JSON, <redacted> left as it is.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// RedactEntities redacts what a router's management answered.
func RedactEntities(v any) any { return redactValue(v, "", 1) }

func redactValue(v any, kind string, depth int) any {
	switch t := v.(type) {
	case map[any]any: // an AMQP map (a connection's properties)
		m := make(map[string]any, len(t))
		for k, val := range t {
			m[fmt.Sprint(k)] = val
		}
		return redactValue(m, kind, depth)
	case map[string]any:
		for k, val := range t {
			switch {
			case kind == "Secret" && depth == 0 && secretFields[k]:
				if m, ok := val.(map[string]any); ok {
					for mk := range m {
						m[mk] = Redacted
					}
				} else {
					t[k] = Redacted
				}
			case sensitiveKey(k):
				t[k] = Redacted
			default:
				t[k] = redactValue(val, kind, depth+1)
			}
		}
		return t
	case []any:
		for i := range t {
			t[i] = redactValue(t[i], kind, depth)
		}
		return t
	case string:
		return string(ScrubKeys([]byte(t)))
	}
	return v
}

// yamlKey matches a line of YAML that gives a key a value.
var yamlKey = regexp.MustCompile(`^(\s*(?:-\s+)?)"?([A-Za-z0-9_./-]+)"?\s*:(.*)$`)

// redactLines redacts a file that does not parse, line by line: the value
// of a sensitive key, every line more indented than a data: or
// stringData: key, and private key blocks.
func redactLines(data []byte) []byte {
	var out []string
	blockIndent := -1 // inside data: or stringData: while >= 0
	for _, line := range strings.Split(string(data), "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		if blockIndent >= 0 {
			if strings.TrimSpace(line) == "" || indent > blockIndent {
				if m := yamlKey.FindStringSubmatch(line); m != nil {
					line = m[1] + m[2] + ": " + Redacted
				} else if strings.TrimSpace(line) != "" {
					line = line[:indent] + Redacted
				}
				out = append(out, line)
				continue
			}
			blockIndent = -1
		}
		if m := yamlKey.FindStringSubmatch(line); m != nil {
			switch {
			case secretFields[m[2]]:
				if strings.TrimSpace(m[3]) != "" {
					line = m[1] + m[2] + ": " + Redacted
				}
				blockIndent = indent
			case sensitiveKey(m[2]):
				line = m[1] + m[2] + ": " + Redacted
			}
		}
		out = append(out, line)
	}
	return ScrubKeys([]byte(strings.Join(out, "\n")))
}

var (
	// a PEM private key block, also inside a JSON string (\n escaped)
	privateKeyBlock = regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----`)
	// base64 that starts as a PEM block does ("-----BEGIN")
	base64PEM = regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/=]*`)
)

// ScrubKeys is the last word on every file of the dump: each private key
// block, in the clear or base64-encoded, becomes "<redacted private key>",
// and a file that still says PRIVATE KEY after that (a block cut short)
// is withheld whole.
func ScrubKeys(data []byte) []byte {
	data = privateKeyBlock.ReplaceAll(data, []byte(redactedKey))
	data = base64PEM.ReplaceAllFunc(data, func(b []byte) []byte {
		dec, err := base64.StdEncoding.DecodeString(string(b))
		if err != nil {
			dec, _ = base64.RawStdEncoding.DecodeString(strings.TrimRight(string(b), "="))
		}
		if len(dec) == 0 || bytes.Contains(dec, []byte("PRIVATE KEY")) {
			return []byte(redactedKey)
		}
		return b
	})
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		return []byte("<withheld: this file holds a private key block the dump could not cut out>\n")
	}
	return data
}
