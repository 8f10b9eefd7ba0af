package tokens

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/resources"
)

// What a grant server answers to an AccessToken is another site's word:
// only a Secret (the link's credential) and the Links that use it are
// taken from it. Anything else — another kind, a second Secret, no Link,
// too much of anything — refuses the whole answer, for good: nothing of it
// is stored or applied. What is taken is written out anew (only the fields
// a link needs), each Link's tlsCredentials set to the Secret, and that is
// all runtime/tokens/<name>.yaml ever holds; the passes take it through
// the same check, so that an answer an older version stored cannot bring
// in anything else either.

// Bounds of an answer: a Secret of three PEM files and a Link per
// RouterAccess of the granting site.
const (
	maxAnswerLinks     = 8
	maxAnswerEndpoints = 8
	maxSecretValue     = 16 << 10 // base64 of one PEM file
	maxLinkCost        = math.MaxInt32
	// maxListed is how many of an answer's documents a refusal names
	maxListed = 5
	// maxRefusal bounds a refusal's text
	maxRefusal = 300
)

// secretKeys are the only data a link Secret holds.
var secretKeys = []string{certs.CAFile, certs.CertFile, certs.KeyFile}

// answerRefused is an answer refused whole.
type answerRefused struct{ why string }

func (e *answerRefused) Error() string { return "the grant server's answer was refused: " + e.why }

// answerSecret and answerLink are what is kept of an answer's documents.
type answerSecret struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   answerMeta        `yaml:"metadata"`
	Type       string            `yaml:"type"`
	Data       map[string]string `yaml:"data"`
}

type answerMeta struct {
	Name string `yaml:"name"`
}

type answerLink struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   answerMeta `yaml:"metadata"`
	Spec       struct {
		Endpoints      []answerEndpoint `yaml:"endpoints"`
		TLSCredentials string           `yaml:"tlsCredentials"`
		Cost           int64            `yaml:"cost,omitempty"`
	} `yaml:"spec"`
}

type answerEndpoint struct {
	Name  string `yaml:"name"`
	Host  string `yaml:"host"`
	Port  string `yaml:"port"`
	Group string `yaml:"group,omitempty"`
}

// TakeAnswer returns what is taken of a grant server's answer, as YAML
// (the Secret, then the Links), or an *answerRefused saying why nothing
// is.
func TakeAnswer(data []byte) ([]byte, error) {
	refuse := func(format string, a ...any) ([]byte, error) {
		return nil, &answerRefused{why: grants.OneLine(fmt.Sprintf(format, a...), maxRefusal)}
	}
	if len(data) > grants.MaxAnswer {
		return refuse("it is over %d KiB", grants.MaxAnswer>>10)
	}
	docs, probs := resources.Decode("answer", data)
	if len(probs) > 0 {
		return refuse("it could not be read: %s", probs[0].Message)
	}
	var secrets []*resources.Secret
	var links []*resources.Link
	var secretIDs, other []string
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *resources.Secret:
			secrets, secretIDs = append(secrets, o), append(secretIDs, docName(d))
		case *resources.Link:
			links = append(links, o)
		default:
			other = append(other, docName(d))
		}
	}
	switch {
	case len(other) > 0:
		return refuse("it held %s besides the Secret and Link(s)", listed(other))
	case len(secrets) == 0:
		return refuse("it held no Secret")
	case len(secrets) > 1:
		return refuse("it held %d Secrets (%s); one is expected", len(secrets), listed(secretIDs))
	case len(links) == 0:
		return refuse("it held no Link")
	case len(links) > maxAnswerLinks:
		return refuse("it held %d Links; at most %d are taken", len(links), maxAnswerLinks)
	}
	sec := secrets[0]
	name := sec.Metadata.Name
	if len(sec.StringData) > 0 {
		return refuse("its Secret/%s has stringData; only data is taken", name)
	}
	s := answerSecret{APIVersion: "v1", Kind: resources.KindSecret, Metadata: answerMeta{Name: name}, Type: "kubernetes.io/tls", Data: map[string]string{}}
	for k, v := range sec.Data {
		if !slices.Contains(secretKeys, k) {
			return refuse("its Secret/%s holds %q; only %s are taken", name, k, strings.Join(secretKeys, ", "))
		}
		if len(v) > maxSecretValue {
			return refuse("its Secret/%s's %s is over %d KiB", name, k, maxSecretValue>>10)
		}
		s.Data[k] = v
	}
	out, err := marshalYAML(s)
	if err != nil {
		return nil, fmt.Errorf("writing the answer's Secret: %w", err)
	}
	for _, l := range links {
		if len(l.Spec.Endpoints) > maxAnswerEndpoints {
			return refuse("its Link/%s has %d endpoints; at most %d are taken", l.Metadata.Name, len(l.Spec.Endpoints), maxAnswerEndpoints)
		}
		if l.Spec.Cost > maxLinkCost {
			return refuse("its Link/%s has cost %d; at most %d is taken", l.Metadata.Name, l.Spec.Cost, maxLinkCost)
		}
		k := answerLink{APIVersion: resources.APIVersion, Kind: resources.KindLink, Metadata: answerMeta{Name: l.Metadata.Name}}
		for _, e := range l.Spec.Endpoints {
			k.Spec.Endpoints = append(k.Spec.Endpoints, answerEndpoint(e))
		}
		// the Link uses the answer's Secret, never another
		k.Spec.TLSCredentials, k.Spec.Cost = name, l.Spec.Cost
		doc, err := marshalYAML(k)
		if err != nil {
			return nil, fmt.Errorf("writing the answer's Link: %w", err)
		}
		out = append(append(out, "---\n"...), doc...)
	}
	// what is kept must be valid as it is
	kept, probs := resources.Decode("answer", out)
	ns := resources.Build("answer", kept, probs)
	for _, p := range ns.Problems {
		if p.ID != "" && !p.Warning {
			return refuse("its %s is not valid: %s", p.ID, strings.TrimPrefix(p.Field+": "+p.Message, ": "))
		}
	}
	return out, nil
}

// marshalYAML writes v as YAML indented as the other files of runtime/.
func marshalYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	err := enc.Close()
	return b.Bytes(), err
}

// docName is a document's Kind/name as a refusal names it: printable and
// short, whatever the answer held.
func docName(d *resources.Document) string {
	return grants.OneLine(d.ID(), 80)
}

// listed names documents, sorted, the first maxListed of them.
func listed(ids []string) string {
	ids = slices.Sorted(slices.Values(ids))
	if len(ids) > maxListed {
		return fmt.Sprintf("%s and %d more", strings.Join(ids[:maxListed], ", "), len(ids)-maxListed)
	}
	return strings.Join(ids, ", ")
}
