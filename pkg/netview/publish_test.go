package netview

import (
	"context"
	"strconv"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/vanflow"
)

// TestPublishedController: west's observer publishes the controller's
// source; a subscriber on east's router (the remote end of the link) finds
// its beacon on mc/sfe.all, and after a FLUSH its SITE record (the site
// id, the Site's name, namespace, platform, version) and the PROCESS
// record of a selected container, whose removal ends it. The containers
// here are given, not selected on an engine (none runs in this test).
func TestPublishedController(t *testing.T) {
	east, west, _ := linked(t)
	var set Set
	o := set.Start(west.Dir, west.Management, nil)
	defer o.Close()
	proc := Process{ID: "5f2c1a9e0b7d4c3a2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d", Name: "backend-1", Host: "10.88.0.7"}
	o.Publish(Identity{SiteID: west.ID, Name: "west", Namespace: "west", Platform: "linux", Version: "1.2.3", Processes: []Process{proc}})

	cfg, err := live.ManagementTLS(east.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := amqp.Dial(ctx, "amqps://127.0.0.1:"+strconv.Itoa(east.Management), &amqp.ConnOptions{TLSConfig: cfg, SASLType: amqp.SASLTypeExternal("")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv := func(addr string) *amqp.Receiver {
		r, err := sess.NewReceiver(ctx, addr, &amqp.ReceiverOptions{Credit: 64})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	next := func(r *amqp.Receiver) vanflow.Message {
		m, err := r.Receive(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.AcceptMessage(ctx, m)
		vm, err := vanflow.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		return vm
	}
	beacons := recv(vanflow.BeaconAddress)
	var beacon vanflow.Message
	for beacon.ID != west.ID {
		beacon = next(beacons)
	}
	if beacon.SourceType != vanflow.SourceController || beacon.Address != "mc/sfe."+west.ID || beacon.Direct != "sfe."+west.ID {
		t.Fatalf("beacon %+v", beacon)
	}
	records, beats := recv(beacon.Address), recv(beacon.Address+vanflow.HeartbeatsSuffix)
	if hb := next(beats); hb.Subject != vanflow.SubjectHeartbeat || hb.ID != west.ID {
		t.Fatalf("heartbeat %+v", hb)
	}
	// the subscriptions reached west's router: ask for everything
	flush, _ := vanflow.Message{Subject: vanflow.SubjectFlush, To: beacon.Direct}.Encode()
	sender, err := sess.NewSender(ctx, beacon.Direct, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.Send(ctx, flush, nil); err != nil {
		t.Fatal(err)
	}
	got := map[string]vanflow.Record{}
	for got[west.ID].ID == "" || got[proc.ID].ID == "" {
		for _, r := range next(records).Records {
			got[r.ID] = r
		}
	}
	site := got[west.ID]
	if site.Type != vanflow.Site || site.String(vanflow.AttrName) != "west" || site.String(vanflow.AttrPlatform) != "linux" ||
		site.String(vanflow.AttrNamespace) != "west" || site.String(vanflow.AttrBuildVersion) != "1.2.3" {
		t.Errorf("SITE record %s", site.Format())
	}
	p := got[proc.ID]
	if p.Type != vanflow.Process || p.String(vanflow.AttrParent) != west.ID || p.String(vanflow.AttrName) != "backend-1" || p.String(vanflow.AttrSourceHost) != "10.88.0.7" {
		t.Errorf("PROCESS record %s", p.Format())
	}
	// the container no longer selected: its record ends
	o.Publish(Identity{SiteID: west.ID, Name: "west", Namespace: "west", Platform: "linux", Version: "1.2.3"})
	for {
		for _, r := range next(records).Records {
			if r.ID == proc.ID && r.Ended() {
				return
			}
		}
	}
}
