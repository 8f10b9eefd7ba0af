package tokens

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/answertest"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/resources"
)

// TestTakeAnswer: what is taken of an answer is its one Secret (ca.crt,
// tls.crt and tls.key only) and its Links, written anew with their
// tlsCredentials set to the Secret; anything else refuses the whole
// answer, saying what it held.
func TestTakeAnswer(t *testing.T) {
	secret, link := answertest.TokenAnswer(t, testNow)
	links := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(strings.Replace(link, "name: link-a\n", fmt.Sprintf("name: link-%d\n", i), 1))
		}
		return b.String()
	}
	many := ""
	for i := range 7 {
		many += fmt.Sprintf("---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: l%d\n", i)
	}
	for _, tc := range []struct {
		what, answer string
		// refused is the error; empty: taken, links are the Links
		refused string
		links   int
	}{
		{what: "a Secret and a Link", answer: secret + link, links: 1},
		{what: "eight Links", answer: secret + links(8), links: 8},
		{what: "a Link using another Secret", answer: secret + strings.Replace(link, "tlsCredentials: link-a", "tlsCredentials: skupper-site-server", 1), links: 1},
		{what: "a Link without tlsCredentials", answer: secret + strings.Replace(link, "  tlsCredentials: link-a\n", "", 1), links: 1},
		{what: "extra fields", answer: strings.Replace(secret, "metadata:\n", "metadata:\n  namespace: elsewhere\n  labels:\n    a: b\n", 1) + strings.Replace(link, "spec:\n", "spec:\n  settings:\n    x: y\n", 1), links: 1},
		{what: "a Site", answer: secret + link + "---\napiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: x\n",
			refused: "the grant server's answer was refused: it held Site/x besides the Secret and Link(s)"},
		{what: "many documents", answer: secret + link + many,
			refused: "the grant server's answer was refused: it held Listener/l0, Listener/l1, Listener/l2, Listener/l3, Listener/l4 and 2 more besides the Secret and Link(s)"},
		{what: "an unknown kind", answer: secret + link + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"a\\nb\\u001b[31m\"\n",
			refused: "the grant server's answer was refused: it held ConfigMap/a b [31m besides the Secret and Link(s)"},
		{what: "a document that is not a resource", answer: secret + link + "---\n- 1\n",
			refused: "the grant server's answer was refused: it could not be read: document is not a mapping; expected a resource with apiVersion, kind and metadata"},
		{what: "no Secret", answer: link, refused: "the grant server's answer was refused: it held no Secret"},
		{what: "no Link", answer: secret, refused: "the grant server's answer was refused: it held no Link"},
		{what: "nine Links", answer: secret + links(9), refused: "the grant server's answer was refused: it held 9 Links; at most 8 are taken"},
		{what: "two Secrets", answer: secret + strings.Replace(secret, "name: link-a\n", "name: b\n", 1) + link,
			refused: "the grant server's answer was refused: it held 2 Secrets (Secret/b, Secret/link-a); one is expected"},
		{what: "another key", answer: strings.Replace(secret, "data:\n", "data:\n  config.json: e30=\n", 1) + link,
			refused: `the grant server's answer was refused: its Secret/link-a holds "config.json"; only ca.crt, tls.crt, tls.key are taken`},
		{what: "stringData", answer: secret + "stringData:\n  ca.crt: x\n" + link,
			refused: "the grant server's answer was refused: its Secret/link-a has stringData; only data is taken"},
		{what: "a huge key", answer: strings.Replace(secret, "  tls.key: ", "  tls.key: "+strings.Repeat("QUFB", 5<<10), 1) + link,
			refused: "the grant server's answer was refused: its Secret/link-a's tls.key is over 16 KiB"},
		{what: "a huge answer", answer: secret + link + "# " + strings.Repeat("x", 64<<10) + "\n",
			refused: "the grant server's answer was refused: it is over 64 KiB"},
		{what: "a huge cost", answer: secret + strings.Replace(link, "cost: 1", "cost: 9223372036854775807", 1),
			refused: "the grant server's answer was refused: its Link/link-a has cost 9223372036854775807; at most 2147483647 is taken"},
		{what: "a bad port", answer: secret + strings.Replace(link, `port: "55671"`, `port: "0"`, 1),
			refused: `the grant server's answer was refused: its Link/link-a is not valid: spec.endpoints[0].port: must be a port between 1 and 65535, got "0"`},
		{what: "a bad name", answer: strings.ReplaceAll(secret+link, "link-a", "Link_A"),
			refused: `the grant server's answer was refused: its Secret/Link_A is not valid: metadata.name: "Link_A" is not a lowercase RFC 1123 name: use a-z, 0-9 and '-', starting and ending with a letter or digit`},
	} {
		t.Run(tc.what, func(t *testing.T) {
			out, err := TakeAnswer([]byte(tc.answer))
			if tc.refused != "" {
				if err == nil || err.Error() != tc.refused || out != nil {
					t.Errorf("got  %v\nwant %s", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			docs, probs := resources.Decode("taken", out)
			ns := resources.Build("taken", docs, probs)
			if len(ns.Secrets) != 1 || len(ns.Links) != tc.links || len(docs) != 1+tc.links {
				t.Fatalf("%d Secrets, %d Links of %d documents:\n%s", len(ns.Secrets), len(ns.Links), len(docs), out)
			}
			for _, l := range ns.Links {
				if l.Spec.TLSCredentials != "link-a" || len(l.Spec.Endpoints) != 2 || l.Spec.Cost != 1 || len(l.Spec.Settings) > 0 {
					t.Errorf("Link %+v", l)
				}
			}
			s := ns.Secrets[0]
			if len(s.Data) != 3 || s.Type != "kubernetes.io/tls" || s.Metadata.Namespace != "" || len(s.Metadata.Labels) > 0 {
				t.Errorf("Secret %+v", s)
			}
			if again, err := TakeAnswer(out); err != nil || string(again) != string(out) {
				t.Errorf("what is taken is not taken again as it is: %v\n%s", err, again)
			}
		})
	}
}

// TestRetryDelay: a redeemer waits 1 s doubling to 5 minutes after each
// failure, and at least what a busy grant server (429) asked.
func TestRetryDelay(t *testing.T) {
	busy := func(d time.Duration) error { return &grants.Busy{Host: "h", RetryAfter: d} }
	for _, tc := range []struct {
		attempt int
		err     error
		want    time.Duration
	}{
		{0, fmt.Errorf("connection refused"), time.Second},
		{3, fmt.Errorf("connection refused"), 8 * time.Second},
		{20, fmt.Errorf("connection refused"), 5 * time.Minute},
		{0, busy(59 * time.Second), 59 * time.Second},
		{0, fmt.Errorf("redeeming: %w", busy(30*time.Second)), 30 * time.Second},
		{7, busy(59 * time.Second), 128 * time.Second},
		{0, busy(0), time.Second},
		{0, busy(time.Hour), 5 * time.Minute},
	} {
		if got := retryDelay(tc.attempt, tc.err); got != tc.want {
			t.Errorf("attempt %d, %v: %s, want %s", tc.attempt, tc.err, got, tc.want)
		}
	}
}

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
