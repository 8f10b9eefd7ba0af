package grants

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// MaxAnswer bounds a grant server's answer: a Secret and a few Links are
// a few KiB.
const MaxAnswer = 64 << 10

// maxText bounds what of a server's text (a refusal, an error body) is
// kept: one line, printable characters only.
const maxText = 200

// maxRetryAfter bounds how long a server's Retry-After is waited for.
const maxRetryAfter = 5 * time.Minute

// Refused is a grant server's answer that retrying cannot change: the
// grant is unknown, expired or used up (404), or the code is wrong (403).
type Refused struct {
	Code int
	Text string
}

func (e *Refused) Error() string {
	return fmt.Sprintf("the grant server refused: %d %s: %s", e.Code, http.StatusText(e.Code), e.Text)
}

// IsRefused tells whether err is a refusal (no retry) rather than a
// failure to reach the server (retry).
func IsRefused(err error) bool {
	var r *Refused
	return errors.As(err, &r)
}

// Busy is a grant server's 429 Too Many Requests: worth a retry, after
// RetryAfter (zero when the server named no time).
type Busy struct {
	Host       string
	RetryAfter time.Duration
	Text       string
}

func (e *Busy) Error() string {
	s := fmt.Sprintf("redeeming at %s: %d %s", e.Host, http.StatusTooManyRequests, http.StatusText(http.StatusTooManyRequests))
	if e.Text != "" {
		s += ": " + e.Text
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// RetryAfter is how long the grant server asked to wait before the next
// try (a 429's Retry-After), zero when it did not.
func RetryAfter(err error) time.Duration {
	var b *Busy
	if errors.As(err, &b) {
		return b.RetryAfter
	}
	return 0
}

// OneLine makes text from a server (or a document it sent) fit a status
// message or a state file: whitespace and control characters become one
// space, other characters that do not print are dropped, and it is cut to
// max characters, "…" marking the cut.
func OneLine(s string, max int) string {
	var b strings.Builder
	n, space := 0, false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if !unicode.IsPrint(r) {
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		if n >= max {
			return strings.TrimRight(b.String(), " ") + "…"
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date; at most
// maxRetryAfter.
func retryAfter(h string, now time.Time) time.Duration {
	var d time.Duration
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s > 0 {
		d = time.Duration(min(s, int(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}

// Redeem posts code to the grant at rawURL, trusting only caPEM, asking
// for a link named name for site subject, and returns the answer (a YAML
// stream of a Secret and Link(s), at most MaxAnswer bytes). It gives up
// when ctx ends (and after 10 seconds in any case). A refusal is a
// *Refused, a 429 a *Busy; what the server says is cut to one line.
func Redeem(ctx context.Context, rawURL, code, caPEM, name, subject string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" {
		return nil, &Refused{Code: 0, Text: fmt.Sprintf("the token's url %q is not https", OneLine(rawURL, maxText))}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, &Refused{Text: "the token's ca holds no certificate"}
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			DisableKeepAlives:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader([]byte(code)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("name", name)
	req.Header.Set("subject", subject)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("redeeming at %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", u.Host, err)
	}
	text := OneLine(string(body), maxText)
	switch {
	case resp.StatusCode == http.StatusOK && len(body) > MaxAnswer:
		return nil, &Refused{Code: resp.StatusCode, Text: fmt.Sprintf("the answer is over %d KiB", MaxAnswer>>10)}
	case resp.StatusCode == http.StatusOK:
		return body, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		return nil, &Refused{Code: resp.StatusCode, Text: text}
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, &Busy{Host: u.Host, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()), Text: text}
	}
	return nil, fmt.Errorf("redeeming at %s: %d %s: %s", u.Host, resp.StatusCode, http.StatusText(resp.StatusCode), text)
}
