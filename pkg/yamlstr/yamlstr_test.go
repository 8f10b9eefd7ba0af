package yamlstr

import (
	"strings"
	"testing"
	"unicode/utf8"

	yaml3 "gopkg.in/yaml.v3"
	k8syaml "sigs.k8s.io/yaml"
)

// Tricky are strings that a YAML reader of one version or the other reads
// as something else when written plain: booleans and nulls of YAML 1.1,
// numbers of either, dates, indicators, quotes, white space, breaks.
var Tricky = []string{
	"null", "Null", "NULL", "~", "", "yes", "Yes", "YES", "no", "No", "y", "Y", "n", "N", "on", "On", "ON", "off", "Off",
	"true", "True", "false", "FALSE", "1e3", "1E3", "0x1F", "0o17", "0b101", "012", "12", "-12", "+12", "1_000",
	"190:20:30", ".inf", "-.inf", ".nan", ".NaN", "1.5", ".5", "5.", "2026-12-02", "2026-12-02T10:00:00Z",
	"2026-12-02 10:00:00", ":8080", "a: b", "a:b", "#x", "a #b", "-", "--", "---", "...", "- a", "? a", "'q'", `"dq"`,
	"trailing ", " leading", "\ttab", "two\nlines", "\n", "back\\slash", "&anchor", "*alias", "!tag", "%dir", "@at",
	"`tick", "|", ">", "[a]", "{a: b}", "a,b", "=", "<<", "é", "tab\there", "nel\u0085x", "ls\u2028x", "ps\u2029x",
	"bom\ufeffx", "del\x7fx", "nul\x00x", "c1\u0080x", "bell\ax", "esc\x1bx", "nonchar\uffffx", "emoji 🙂",
	"::1", "fe80::1%eth0", "1.2.3.4", "10.0.0.1", "255.255.255.255", "01.2.3.4", "1.2.3", "1.2.3.4.5",
	"host.example.com", "link-east", "skupper-site-ca", "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJ+/=", "Inf", "NaN",
	"infinity", "e3", "x", "a/b", "connector/x@y", "app=backend", "a b", "0", "00", "1", "-0", "0.0",
}

// TestRoundTrip writes each string as a plain-or-quoted scalar and as a
// quoted one, and reads it back with gopkg.in/yaml.v3 (YAML 1.2) and
// sigs.k8s.io/yaml (YAML 1.1, as Skupper reads), into a string field and
// into an untyped map: each reads back exactly the string written.
func TestRoundTrip(t *testing.T) {
	for _, s := range Tricky {
		for _, w := range []struct {
			how string
			doc string
		}{
			{"Scalar", "k: " + Scalar(s) + "\n"},
			{"Quote", "k: " + Quote(s) + "\n"},
			{"in a sequence", "k:\n- " + Scalar(s) + "\n- x\n"},
		} {
			checkRoundTrip(t, w.how, w.doc, s)
		}
	}
}

func checkRoundTrip(t *testing.T, how, doc, want string) {
	t.Helper()
	seq := strings.HasPrefix(doc, "k:\n-")
	var typed3, typedK struct {
		K string `json:"k" yaml:"k"`
	}
	var seq3, seqK struct {
		K []string `json:"k" yaml:"k"`
	}
	var any3, anyK map[string]any
	var errs [4]error
	if seq {
		errs[0], errs[1] = yaml3.Unmarshal([]byte(doc), &seq3), k8syaml.Unmarshal([]byte(doc), &seqK)
		if len(seq3.K) > 0 {
			typed3.K = seq3.K[0]
		}
		if len(seqK.K) > 0 {
			typedK.K = seqK.K[0]
		}
	} else {
		errs[0], errs[1] = yaml3.Unmarshal([]byte(doc), &typed3), k8syaml.Unmarshal([]byte(doc), &typedK)
	}
	errs[2], errs[3] = yaml3.Unmarshal([]byte(doc), &any3), k8syaml.Unmarshal([]byte(doc), &anyK)
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s %q: reader %d: %v\n%s", how, want, i, err, doc)
			return
		}
	}
	if typed3.K != want || typedK.K != want {
		t.Errorf("%s %q: read back as %q (yaml.v3), %q (sigs.k8s.io/yaml) from\n%s", how, want, typed3.K, typedK.K, doc)
	}
	for name, m := range map[string]map[string]any{"yaml.v3": any3, "sigs.k8s.io/yaml": anyK} {
		v := m["k"]
		if seq {
			l, _ := v.([]any)
			if len(l) == 0 {
				t.Errorf("%s %q: %s read no sequence", how, want, name)
				continue
			}
			v = l[0]
		}
		if got, ok := v.(string); !ok || got != want {
			t.Errorf("%s %q: %s read %T %v", how, want, name, v, v)
		}
	}
}

// TestPlain: what is written plain, and what is not.
func TestPlain(t *testing.T) {
	for _, tc := range []struct {
		s     string
		plain bool
	}{
		{"host.example.com", true}, {"link-east", true}, {"1.2.3.4", true}, {"LS0t+/=", true}, {"Yesterday", true},
		{"yes", false}, {"ON", false}, {"null", false}, {"1e3", false}, {"012", false}, {"01.2.3.4", false},
		{"1.2.3", false}, {"::1", false}, {"", false}, {"a b", false}, {"a:b", false}, {"_a", false},
	} {
		if got := Plain(tc.s); got != tc.plain {
			t.Errorf("Plain(%q) = %v, want %v", tc.s, got, tc.plain)
		}
	}
	// invalid UTF-8 becomes U+FFFD, never bytes a reader refuses
	if got := Quote("a\xffb"); got != `"a�b"` {
		t.Errorf("Quote of invalid UTF-8: %s", got)
	}
}

// FuzzRoundTrip: any string round-trips (go test -fuzz FuzzRoundTrip).
func FuzzRoundTrip(f *testing.F) {
	for _, s := range Tricky {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // written as U+FFFD: not the same string
		}
		checkRoundTrip(t, "Scalar", "k: "+Scalar(s)+"\n", s)
	})
}

// TestPlainIsNotEnough: written plain, these are read as something else
// (another type, another string, or nothing) by at least one of the
// readers; the round trips above are no accident.
func TestPlainIsNotEnough(t *testing.T) {
	for _, s := range []string{"null", "~", "yes", "no", "on", "off", "true", "1e3", "0x1F", "012", "2026-12-02", "a: b", "#x", "", "'q'", `"dq"`, "trailing "} {
		doc := []byte("k: " + s + "\n")
		var v3, k8s map[string]any
		err3, errK := yaml3.Unmarshal(doc, &v3), k8syaml.Unmarshal(doc, &k8s)
		if err3 == nil && errK == nil && v3["k"] == any(s) && k8s["k"] == any(s) {
			t.Errorf("%q written plain reads back the same with both readers", s)
		}
	}
}

func BenchmarkAppendQuoted(b *testing.B) {
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = AppendQuoted(buf[:0], "the listener is configured on the router: 127.0.0.1:8080")
	}
}
