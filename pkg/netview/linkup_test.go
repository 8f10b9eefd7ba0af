package netview

import (
	"testing"
	"time"
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

// TestUnreachable: router.node entities as the real router lists them
// (internal/hosttest): itself, a neighbor, a router through a neighbor,
// and one lost in a partition, still listed until its link state ages out.
func TestUnreachable(t *testing.T) {
	for _, c := range []struct {
		name string
		n    map[string]any
		want bool
	}{
		{"self", map[string]any{"id": "b", "nextHop": "(self)", "routerLink": nil, "cost": nil}, false},
		{"neighbor", map[string]any{"id": "a", "nextHop": nil, "routerLink": int64(0), "cost": int64(1)}, false},
		{"through a neighbor", map[string]any{"id": "c", "nextHop": "a", "routerLink": nil, "cost": int64(2)}, false},
		{"lost", map[string]any{"id": "a", "nextHop": nil, "routerLink": nil, "cost": int64(1)}, true},
	} {
		if got := unreachable(c.n); got != c.want {
			t.Errorf("%s: unreachable = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestBusyTime: the local router was busy for every query's whole time; a
// router a round trip away only for what each query took beyond the
// quickest (the way there and back): over a 200 ms path, seven quick
// answers are no load at all, and a slow one counts for its excess.
func TestBusyTime(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	for _, c := range []struct {
		local bool
		took  []time.Duration
		want  time.Duration
	}{
		{true, ms(2, 3, 40), 45 * time.Millisecond},
		{false, ms(201, 203, 202, 200, 204, 201, 200), 11 * time.Millisecond},
		{false, ms(200, 200, 700), 500 * time.Millisecond},
		{false, nil, 0},
		{true, nil, 0},
	} {
		if got := busyTime(c.local, c.took); got != c.want {
			t.Errorf("busyTime(%v, %v) = %v, want %v", c.local, c.took, got, c.want)
		}
	}
}
