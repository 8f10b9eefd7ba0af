package dump

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
)

func testKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TestRedact: what each kind of file becomes in the dump: credentials
// gone, everything else kept.
func TestRedact(t *testing.T) {
	key := testKeyPEM(t)
	keyB64 := base64.StdEncoding.EncodeToString([]byte(key))
	cert := "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIQ\n-----END CERTIFICATE-----\n"
	certB64 := base64.StdEncoding.EncodeToString([]byte(cert))
	indented := "    " + strings.ReplaceAll(strings.TrimSpace(key), "\n", "\n    ")
	for _, tc := range []struct {
		name, in string
		json     bool
		gone     []string // not in the output
		kept     []string // in the output
	}{
		{name: "Secret data", in: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: link\ntype: kubernetes.io/tls\ndata:\n  tls.key: " + keyB64 + "\n  tls.crt: " + certB64 + "\n  ca.crt: c2VjcmV0LWNh\n",
			gone: []string{keyB64, certB64, "c2VjcmV0LWNh"}, kept: []string{"kind: Secret", "name: link", "tls.key: <redacted>", "ca.crt: <redacted>", "type: kubernetes.io/tls"}},
		{name: "Secret stringData", in: "kind: Secret\nmetadata:\n  name: s\nstringData:\n  password: hunter2-value\n  token: tok-value\n",
			gone: []string{"hunter2-value", "tok-value"}, kept: []string{"stringData:", "password: <redacted>"}},
		{name: "Secret data as one string", in: "kind: Secret\nmetadata:\n  name: s\ndata: weird-value\n", gone: []string{"weird-value"}, kept: []string{"data: <redacted>"}},
		{name: "AccessGrant codes", in: "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: g\nspec:\n  code: grant-code-1234\n  redemptionsAllowed: 2\nstatus:\n  code: grant-code-1234\n  url: https://h:8081/abc\n",
			gone: []string{"grant-code-1234"}, kept: []string{"redemptionsAllowed: 2", "url: https://h:8081/abc", "code: <redacted>"}},
		{name: "AccessToken code, two documents", in: "kind: Listener\nmetadata:\n  name: l\nspec:\n  routingKey: backend\n---\nkind: AccessToken\nmetadata:\n  name: t\nspec:\n  url: https://h/x\n  code: token-code-5678\n  ca: |\n" + indentBlock(cert, 4),
			gone: []string{"token-code-5678"}, kept: []string{"routingKey: backend", "kind: AccessToken", "BEGIN CERTIFICATE"}},
		{name: "a key in any field", in: "kind: Connector\nmetadata:\n  name: c\n  annotations:\n    note: |\n" + indented + "\n",
			gone: []string{"PRIVATE KEY", strings.Split(key, "\n")[1]}, kept: []string{"<redacted private key>", "name: c"}},
		{name: "a base64 key in any field", in: "kind: Connector\nmetadata:\n  name: c\n  annotations:\n    blob: " + keyB64 + "\n    cert: " + certB64 + "\n",
			gone: []string{keyB64}, kept: []string{certB64}},
		{name: "not YAML: line by line", in: "kind: Secret\ndata:\n  tls.key: " + keyB64 + "\n  other: c2VjcmV0\n: [oops\ncode: abc-code\nspec:\n  host: db\n",
			gone: []string{keyB64, "c2VjcmV0", "abc-code"}, kept: []string{"host: db", "tls.key: <redacted>", "code: <redacted>"}},
		{name: "router configuration", json: true, in: `[["sslProfile", {"name": "p", "certFile": "/c/tls.crt", "privateKeyFile": "/c/tls.key", "password": "pw-secret"}], ["listener", {"name": "l", "port": 5671}]]`,
			gone: []string{"pw-secret"}, kept: []string{`"privateKeyFile": "/c/tls.key"`, `"port": 5671`, `"password": "<redacted>"`}},
		{name: "a JSON Secret", json: true, in: `{"kind": "Secret", "data": {"tls.key": "` + keyB64 + `"}, "metadata": {"name": "j"}}`,
			gone: []string{keyB64}, kept: []string{`"tls.key": "<redacted>"`, `"name": "j"`}},
		{name: "a JSON-escaped key", json: true, in: `{"kind": "Note", "text": "` + strings.ReplaceAll(key, "\n", `\n`) + `"}`,
			gone: []string{"PRIVATE KEY"}, kept: []string{"<redacted private key>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out string
			if tc.json {
				out = string(RedactJSON([]byte(tc.in)))
			} else {
				out = string(RedactYAML([]byte(tc.in)))
			}
			for _, g := range tc.gone {
				if strings.Contains(out, g) {
					t.Errorf("still holds %q:\n%s", g, out)
				}
			}
			for _, k := range tc.kept {
				if !strings.Contains(out, k) {
					t.Errorf("lost %q:\n%s", k, out)
				}
			}
		})
	}
}

func indentBlock(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad) + "\n"
}

// TestScrubKeys: the last word on every file: key blocks go, in the clear
// or base64; a block cut short withholds the whole file.
func TestScrubKeys(t *testing.T) {
	key := testKeyPEM(t)
	for _, tc := range []struct{ name, in, want string }{
		{"none", "hello\n", "hello\n"},
		{"a block", "a\n" + key + "b\n", "a\n<redacted private key>\nb\n"},
		{"an RSA block", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "<redacted private key>"},
		{"base64", "x " + base64.StdEncoding.EncodeToString([]byte(key)) + " y", "x <redacted private key> y"},
		{"cut short", "-----BEGIN PRIVATE KEY-----\nMIIE", "<withheld: this file holds a private key block the dump could not cut out>\n"},
	} {
		if got := string(ScrubKeys([]byte(tc.in))); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestContentOf: which namespace files the dump reads, and which it only
// lists.
func TestContentOf(t *testing.T) {
	for rel, want := range map[string]string{
		"input/resources/site.yaml":                      "yaml",
		"input/resources/sub/link.yml":                   "yaml",
		"input/resources/x.json":                         "json",
		"input/resources/notes.txt":                      "",
		"input/certs/mine/tls.key":                       "",
		"input/certs/mine/tls.crt":                       "certificate",
		"runtime/certs/skupper-local-server/tls.key":     "",
		"runtime/issuers/skupper-site-ca/ca.crt":         "certificate",
		"runtime/links/link-east-127.0.0.1.yaml":         "",
		"runtime/resources/AccessGrant-g.yaml":           "yaml",
		"runtime/tokens/t.yaml":                          "yaml",
		"runtime/router/skrouterd.json":                  "json",
		"internal/site-id":                               "yaml",
		"internal/management-port":                       "yaml",
		"internal/pass-record":                           "",
		"internal/status-digest":                         "",
		"internal/grants/g.yaml":                         "yaml",
		"internal/.tmp-123":                              "",
		"runtime/something-else.yaml":                    "",
		"input/resources/.hidden.yaml":                   "",
		"runtime/certs/skupper-local-client/private.key": "",
	} {
		if got := contentOf(rel); got != want {
			t.Errorf("contentOf(%s) = %q, want %q", rel, got, want)
		}
	}
}
