// Package browsertest runs a real browser for tests: Debian's chromium,
// headless, driven over the DevTools protocol (chromedp). It records what
// the page reports as errors (exceptions, console.error, failed loads and
// CSP violations), so that a test can require there were none.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser is a headless chromium and one tab of it.
type Browser struct {
	// Ctx is the tab's context: chromedp.Run(b.Ctx, ...).
	Ctx context.Context

	mu     sync.Mutex
	errors []string
}

// Path is the chromium to run: $CHROMIUM, else chromium on PATH; "" when
// there is none.
func Path() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		if p, err := exec.LookPath(p); err == nil {
			return p
		}
		return ""
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// required tells whether a missing browser fails the test: in CI.
func required() bool {
	return os.Getenv("SITE_CONTROLLER_REQUIRE_ROUTER") == "1" || os.Getenv("CI") == "true"
}

// Start runs chromium for the test (closed when it ends), or skips it in
// one line when there is none (fails it in CI).
func Start(t testing.TB) *Browser {
	t.Helper()
	path := Path()
	if path == "" {
		if required() {
			t.Fatal("chromium not found (apt-get install chromium), and CI forbids skipping the browser tests")
		}
		t.Skip("chromium not found (apt-get install chromium): skipping the browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root, where chromium's sandbox cannot
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(t.TempDir()),
		// nothing outside the host: no component updates, no field trials
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-field-trial-config", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			what := d.Text
			if d.Exception != nil {
				what += " " + d.Exception.Description
			}
			b.report(fmt.Sprintf("exception: %s (%s:%d)", what, d.URL, d.LineNumber))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				b.report("console." + string(e.Type) + ": " + strings.Join(args, " "))
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				b.report(fmt.Sprintf("%s: %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		}
	})
	// chromedp enables the log and runtime domains of every tab
	if err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("starting chromium %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return b
}

func (b *Browser) report(s string) {
	b.mu.Lock()
	b.errors = append(b.errors, s)
	b.mu.Unlock()
}

// Errors returns what the page reported as errors so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// Open loads url in the tab.
func (b *Browser) Open(url string) error {
	return chromedp.Do(b.Ctx, chromedp.Navigate(url))
}

// Wait waits until the JavaScript expression is true in the page (it
// is evaluated on every animation frame), for up to timeout.
func (b *Browser) Wait(expr string, timeout time.Duration) error {
	_, err := chromedp.Run(b.Ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		return fmt.Errorf("waiting %s for %s: %w", timeout, expr, err)
	}
	return nil
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](b *Browser, expr string) (T, error) {
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		return v, fmt.Errorf("evaluating %s: %w", expr, err)
	}
	return v, nil
}

// Screenshot writes a PNG of the whole page to path.
func (b *Browser) Screenshot(path string) error {
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o644)
}

// ViewportScreenshot writes a PNG of what the window shows to path.
func (b *Browser) ViewportScreenshot(path string) error {
	png, err := chromedp.Run(b.Ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o644)
}
