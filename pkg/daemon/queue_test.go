package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
)

// next returns the next due key, or "" when none becomes due within d.
func next(q *Queue, d time.Duration) string {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	k, _ := q.Next(ctx)
	return k
}

func TestQueueCoalescesUntilQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue(15*time.Millisecond, time.Second)
		start := time.Now()
		// a burst of marks 10ms apart: one reconcile, 15ms after the last
		for range 5 {
			q.Mark("a")
			time.Sleep(10 * time.Millisecond)
		}
		if k := next(q, time.Second); k != "a" {
			t.Fatalf("next = %q", k)
		}
		if got := time.Since(start); got != 55*time.Millisecond {
			t.Errorf("due after %v, want 55ms (last mark at 40ms + 15ms quiet)", got)
		}
		q.Done("a")
		if k := next(q, time.Second); k != "" {
			t.Errorf("key %q due again without a mark", k)
		}
	})
}

func TestQueueMaxDelayUnderChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue(15*time.Millisecond, 100*time.Millisecond)
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stopped := make(chan struct{})
		go func() { // a mark every 5ms until cancelled
			defer close(stopped)
			for ctx.Err() == nil {
				q.Mark("busy")
				time.Sleep(5 * time.Millisecond)
			}
		}()
		if k := next(q, time.Second); k != "busy" {
			t.Fatalf("next = %q", k)
		}
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Errorf("due after %v, want the 100ms cap", got)
		}
		cancel()
		<-stopped
		q.Done("busy")
	})
}

func TestQueueOneAtATimeAndRemarkInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue(time.Millisecond, time.Second)
		q.MarkNow("a")
		q.MarkNow("b")
		first, second := next(q, time.Second), next(q, time.Second)
		if first != "a" || second != "b" {
			t.Fatalf("got %q, %q", first, second)
		}
		q.Mark("a") // while a is in flight
		if k := next(q, 50*time.Millisecond); k != "" {
			t.Fatalf("%q handed out while in flight", k)
		}
		q.Done("a")
		if k := next(q, time.Second); k != "a" {
			t.Fatalf("re-marked key not due after Done: %q", k)
		}
		q.Done("a")
		q.Done("b")
		if q.Len() != 0 {
			t.Errorf("queue not empty: %d", q.Len())
		}
	})
}

func TestQueueAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue(time.Millisecond, time.Second)
		start := time.Now()
		q.After(context.Background(), "retry", 2*time.Second)
		if k := next(q, 5*time.Second); k != "retry" || time.Since(start) != 2*time.Second {
			t.Errorf("retry %q after %v", k, time.Since(start))
		}
		q.Done("retry")
	})
}

func TestInputScanner(t *testing.T) {
	dir := t.TempDir()
	fixture.WriteFile(t, dir+"/input/resources/a.yaml", "a: 1\n")
	s := &inputScanner{files: map[string]scannedFile{}}
	if !s.scan(dir, false) {
		t.Error("first look saw nothing")
	}
	if s.scan(dir, true) {
		t.Error("an unchanged file counted as a change")
	}
	now := time.Now().Add(time.Minute)
	os.Chtimes(dir+"/input/resources/a.yaml", now, now) // touch: same content
	if !s.scan(dir, true) {
		t.Error("a touched file whose content was never hashed is a change")
	}
	os.Chtimes(dir+"/input/resources/a.yaml", now.Add(time.Minute), now.Add(time.Minute))
	if s.scan(dir, true) {
		t.Error("a touch with the content known counted as a change")
	}
	fixture.WriteFile(t, dir+"/input/resources/a.yaml", "a: 2\n")
	if !s.scan(dir, true) {
		t.Error("new content not noticed")
	}
	fixture.WriteFile(t, dir+"/internal/platform.yaml", "platform: docker\n")
	if !s.scan(dir, true) {
		t.Error("a platform file not noticed")
	}
	os.Remove(dir + "/input/resources/a.yaml")
	if !s.scan(dir, true) {
		t.Error("a removed file not noticed")
	}
	// below a directory of input/, and through a symbolic link
	fixture.WriteFile(t, dir+"/input/certs/tls/ca.crt", "one")
	target := filepath.Join(t.TempDir(), "b.yaml")
	fixture.WriteFile(t, target, "b: 1\n")
	if err := os.Symlink(target, dir+"/input/resources/b.yaml"); err != nil {
		t.Fatal(err)
	}
	if !s.scan(dir, true) || s.scan(dir, true) {
		t.Error("new files not noticed, or noticed twice")
	}
	fixture.WriteFile(t, dir+"/input/certs/tls/ca.crt", "two")
	if !s.scan(dir, true) {
		t.Error("a change two directories down not noticed")
	}
	fixture.WriteFile(t, target, "b: 22\n")
	if !s.scan(dir, true) {
		t.Error("a change of a linked file not noticed")
	}
	os.Remove(target)
	if !s.scan(dir, true) {
		t.Error("a link left pointing at nothing not noticed")
	}
	// the platform file through a symbolic link, followed from its own
	// directory (not the process's working directory)
	platform := filepath.Join(t.TempDir(), "platform.yaml")
	fixture.WriteFile(t, platform, "platform: podman\n")
	os.Remove(dir + "/internal/platform.yaml")
	if err := os.Symlink(platform, dir+"/internal/platform.yaml"); err != nil {
		t.Fatal(err)
	}
	s.scan(dir, true)
	fixture.WriteFile(t, platform, "platform: linux\n")
	if !s.scan(dir, true) {
		t.Error("a change of a linked platform file not noticed")
	}
}
