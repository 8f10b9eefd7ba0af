// Package answertest makes what a grant server answers to an AccessToken,
// for tests.
package answertest

import (
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/site"
)

// TokenAnswer is a good answer: a Secret and a Link, as a grant server
// answers, from the CA of a site.
func TokenAnswer(t testing.TB, now time.Time) (secret, link string) {
	t.Helper()
	ca, _, err := certs.NewCA("ca", now)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.Issue(certs.Leaf{CommonName: "b", Client: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	answer := string(site.LinkYAML("link-a", "127.0.0.1", []site.AccessRole{{Role: "inter-router", Port: 55671}, {Role: "edge", Port: 45671}}, f))
	i := strings.Index(answer, "---\napiVersion: skupper.io")
	return answer[:i], answer[i:]
}
