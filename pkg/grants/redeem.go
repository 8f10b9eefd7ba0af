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
	"strings"
	"time"
)

// maxAnswer bounds a grant server's answer: a Secret and a few Links.
const maxAnswer = 1 << 20

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

// Redeem posts code to the grant at rawURL, trusting only caPEM, asking
// for a link named name for site subject, and returns the answer (a YAML
// stream of a Secret and Link(s)). It gives up when ctx ends (and after
// 10 seconds in any case).
func Redeem(ctx context.Context, rawURL, code, caPEM, name, subject string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" {
		return nil, &Refused{Code: 0, Text: fmt.Sprintf("the token's url %q is not https", rawURL)}
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", u.Host, err)
	}
	if len(body) > maxAnswer {
		return nil, &Refused{Code: resp.StatusCode, Text: "the answer is over 1 MiB"}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return body, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		return nil, &Refused{Code: resp.StatusCode, Text: strings.TrimSpace(string(body))}
	}
	return nil, fmt.Errorf("redeeming at %s: %d %s: %s", u.Host, resp.StatusCode, http.StatusText(resp.StatusCode), strings.TrimSpace(limit(string(body))))
}
