package netview

import (
	"testing"
)

// TestLinkUp: a link is up only while the router's connector has an open
// connection. The router says SUCCESS while it tries to connect, too: a
// try after a lost connection keeps the failure's message (seen with the
// real router during a partition, internal/hosttest), and a first try has
// none.
func TestLinkUp(t *testing.T) {
	for _, c := range []struct {
		status, msg string
		up          bool
	}{
		{"SUCCESS", "[C6] Connection Opened: dir=out host=10.253.0.1:55671 encrypted=TLSv1.3 auth=EXTERNAL user=(null) container_id=a-e2922338", true},
		{"SUCCESS", "Connection Opened: dir=out host=10.253.0.1:55671 container_id=a", true},
		{"SUCCESS", "Connection to 10.253.0.1:55671 failed: amqp:resource-limit-exceeded local-idle-timeout expired", false},
		{"SUCCESS", "", false},
		{"CONNECTING", "Connection to 10.253.0.1:55671 failed: proton:io Connection refused - on read from 10.253.0.1:55671", false},
		{"FAILED", "[C3] Connection Opened: dir=out", false},
	} {
		e := map[string]any{"connectionStatus": c.status, "connectionMsg": c.msg}
		if got := linkUp(e); got != c.up {
			t.Errorf("linkUp(%s, %q) = %v, want %v", c.status, c.msg, got, c.up)
		}
	}
}
