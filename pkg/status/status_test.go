package status

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
)

// TestCompleteCatchesEveryCut: a status file cut anywhere, at a line
// boundary included (where it is still valid YAML), is not Complete.
func TestCompleteCatchesEveryCut(t *testing.T) {
	dir := namespace.Dir{Name: "ns", Path: t.TempDir()}
	w := Writer{Dir: dir, Now: time.Now}
	yes := true
	entry := Entry{Kind: "Listener", Name: "l",
		Raw:    []byte("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: l\n"),
		Status: Status{Status: Ready, Message: "ok", HasMatchingConnector: &yes, Conditions: []Condition{{Type: Configured, Status: "True", Reason: "Ready"}}}}
	if _, err := w.Write([]Entry{entry}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir.RuntimeResources(), FileName("Listener", "l")))
	if err != nil {
		t.Fatal(err)
	}
	if !Complete(data) {
		t.Fatalf("a whole status file is not Complete:\n%s", data)
	}
	if _, err := Read(filepath.Join(dir.RuntimeResources(), FileName("Listener", "l"))); err != nil {
		t.Errorf("the trailer breaks reading: %v", err)
	}
	for i := range len(data) {
		if Complete(data[:i]) {
			t.Errorf("cut after %d of %d bytes and still Complete", i, len(data))
		}
	}
}
