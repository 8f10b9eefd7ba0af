// Package tokens redeems a namespace's AccessTokens, in the background and
// never inside a pass: a redeemer per token posts it to its grant server,
// with a deadline, and retries failures to reach the server with backoff
// (1 s doubling to 5 minutes, longer when a busy server asks so); a
// refusal (403, 404, or an answer that is not just a Secret and Link(s):
// answer.go) is final for that token's content. What is taken of the
// answer (a Secret and Links) is kept in runtime/tokens/<name>.yaml
// (0600), and read by every pass beside input/resources (Docs), so it
// becomes a link exactly as a link file would; the outcome is kept in
// internal/tokens/<name>.yaml (0600), so a restart does not redeem a token
// again.
//
// The Redemptions of a namespace belong to its owner: Close ends every
// redemption and waits for it, and nothing of it writes after.
package tokens

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"gopkg.in/yaml.v3"
)

// State is what the controller keeps of a token's redemption.
type State struct {
	Hash     string    `yaml:"hash"` // of the token's url, code and ca
	Redeemed time.Time `yaml:"redeemed,omitempty"`
	// Refused is the grant server's final answer.
	Refused string `yaml:"refused,omitempty"`
}

// Hash identifies a token's content (url, code and ca).
func Hash(t *resources.AccessToken) string {
	sum := sha256.Sum256([]byte(t.Spec.URL + "\x00" + t.Spec.Code + "\x00" + t.Spec.CA))
	return hex.EncodeToString(sum[:8])
}

// Load reads the state of token name.
func Load(dir namespace.Dir, name string) (State, error) {
	var st State
	data, err := os.ReadFile(dir.TokenState(name))
	if err != nil {
		return st, err
	}
	return st, yaml.Unmarshal(data, &st)
}

// Save stores the state of token name durably (it cannot be worked out
// again).
func Save(dir namespace.Dir, name string, st State) error {
	data, err := yaml.Marshal(st)
	if err != nil {
		return err
	}
	_, err = dir.Files().WriteFile(dir.TokenState(name), data, 0o600, 0o700, true)
	return err
}

// Docs reads the answers of the redeemed tokens among docs: their
// Secret and Links join the namespace's resources (a token's linkCost
// set on its Links). Only what takeAnswer takes is used, and nothing of
// an answer whose Secret or Links have the names of the input's (whose
// Links would then use the answer's credential). Answers of tokens that
// are gone are removed, unless some file could not be read (no evidence
// that they are gone).
func Docs(dir namespace.Dir, docs []*resources.Document, complete bool) ([]*resources.Document, []resources.Problem) {
	tokens := map[string]*resources.AccessToken{}
	// the input's Secrets and Links, and the credentials its Links use
	taken := map[string]string{}
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *resources.AccessToken:
			tokens[d.Name] = o
		case *resources.Secret:
			taken["Secret/"+d.Name] = "Secret/" + d.Name + " of " + d.File
		case *resources.Link:
			taken["Link/"+d.Name] = "Link/" + d.Name + " of " + d.File
			if c := o.Spec.TLSCredentials; c != "" {
				taken["Secret/"+c] = "the tlsCredentials of Link/" + d.Name + " of " + d.File
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir.TokenAnswers(), "*.yaml"))
	var out []*resources.Document
	var probs []resources.Problem
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t := tokens[name]
		st, err := Load(dir, name)
		if t == nil || err != nil || st.Hash != Hash(t) || st.Redeemed.IsZero() {
			if t == nil && complete {
				dir.Files().Remove(f)
				dir.Files().Remove(dir.TokenState(name))
			}
			continue
		}
		rel := "runtime/tokens/" + filepath.Base(f)
		data, err := readAnswer(f)
		if err == nil {
			data, err = TakeAnswer(data)
		}
		if err != nil {
			probs = append(probs, resources.Problem{File: rel, Message: "not used: " + err.Error()})
			continue
		}
		ds, ps := resources.Decode(rel, data)
		probs = append(probs, ps...)
		if clash := slices.IndexFunc(ds, func(d *resources.Document) bool { return taken[d.ID()] != "" }); clash >= 0 {
			probs = append(probs, resources.Problem{File: rel, Message: fmt.Sprintf("not used: its %s has the name of %s", ds[clash].ID(), taken[ds[clash].ID()])})
			continue
		}
		for _, d := range ds {
			if l, ok := d.Object.(*resources.Link); ok && t.Spec.LinkCost > 0 {
				l.Spec.Cost = t.Spec.LinkCost
			}
		}
		out = append(out, ds...)
	}
	return out, probs
}

// readAnswer reads a stored answer: a regular file (not through a
// symbolic link) of at most grants.MaxAnswer bytes.
func readAnswer(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", filepath.Base(path))
	}
	data, err := io.ReadAll(io.LimitReader(f, grants.MaxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(data) > grants.MaxAnswer {
		return nil, fmt.Errorf("%s is over %d KiB", filepath.Base(path), grants.MaxAnswer>>10)
	}
	return data, nil
}

// View is what an AccessToken's status shows.
type View struct {
	Redeemed time.Time
	// Refused is the grant server's final answer
	Refused string
	// LastErr is the last failure to reach the server, and Next when the
	// next try is
	LastErr error
	Next    time.Time
}

// Redemptions are the running redemptions of one namespace's tokens.
type Redemptions struct {
	dir     namespace.Dir
	timeout time.Duration
	// changed asks for a pass of the namespace: a token's state changed
	changed func()

	mu      sync.Mutex
	closed  bool
	running map[string]*redeemer // by token name
}

// New returns the redemptions of namespace directory dir; each attempt
// gets timeout, and changed is called when a token's state changed.
func New(dir namespace.Dir, timeout time.Duration, changed func()) *Redemptions {
	return &Redemptions{dir: dir, timeout: timeout, changed: changed, running: map[string]*redeemer{}}
}

// redeemer redeems one token in the background, for as long as its
// namespace's owner lives and the token's content stays the same.
type redeemer struct {
	hash   string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	lastErr error
	next    time.Time
}

// stop ends the redemption and waits for it.
func (rd *redeemer) stop() {
	rd.cancel()
	<-rd.done
}

// Redeem works out the state of each of the namespace's tokens (site:
// the site's id, which the grant server's answer is for; "" without a
// Site: nothing is redeemed), starts the redemptions that are due, ends
// those of tokens that are gone or changed, and returns what each token's
// status shows, by name.
func (q *Redemptions) Redeem(all []*resources.AccessToken, site string) map[string]View {
	views := map[string]View{}
	want := map[string]string{} // name → hash of the tokens to redeem
	if site != "" {
		for _, t := range all {
			name := t.Metadata.Name
			hash := Hash(t)
			st, err := Load(q.dir, name)
			if err == nil && st.Hash == hash && (!st.Redeemed.IsZero() || st.Refused != "") {
				views[name] = View{Redeemed: st.Redeemed, Refused: st.Refused}
				continue
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				views[name] = View{LastErr: fmt.Errorf("reading its state: %w", err)}
				continue
			}
			want[name] = hash
			views[name] = q.start(t, hash, site)
		}
	}
	q.end(want)
	return views
}

// Close ends every redemption and waits for each; none starts after.
func (q *Redemptions) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.end(nil)
}

// end ends the redemptions of tokens that are not in want (by name, with
// the hash of their content).
func (q *Redemptions) end(want map[string]string) {
	q.mu.Lock()
	var ended []*redeemer
	for name, rd := range q.running {
		if want[name] != rd.hash {
			ended = append(ended, rd)
			delete(q.running, name)
		}
	}
	q.mu.Unlock()
	for _, rd := range ended {
		rd.stop()
	}
}

// start runs the token's redemption unless it runs already, and returns
// how it stands.
func (q *Redemptions) start(t *resources.AccessToken, hash, siteID string) View {
	name, dir := t.Metadata.Name, q.dir
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return View{}
	}
	if rd := q.running[name]; rd != nil && rd.hash == hash {
		q.mu.Unlock()
		rd.mu.Lock()
		defer rd.mu.Unlock()
		return View{LastErr: rd.lastErr, Next: rd.next}
	}
	old := q.running[name]
	ctx, cancel := context.WithCancel(context.Background())
	rd := &redeemer{hash: hash, cancel: cancel, done: make(chan struct{})}
	q.running[name] = rd
	q.mu.Unlock()
	if old != nil {
		old.stop()
	}
	spec := t.Spec
	go func() {
		defer close(rd.done)
		defer func() {
			q.mu.Lock()
			if q.running[name] == rd {
				delete(q.running, name)
			}
			q.mu.Unlock()
		}()
		for attempt := 0; ; attempt++ {
			actx, acancel := context.WithTimeout(ctx, q.timeout)
			answer, err := grants.Redeem(actx, spec.URL, spec.Code, spec.CA, name, siteID)
			acancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				answer, err = TakeAnswer(answer)
			}
			var st State
			var bad *answerRefused
			switch {
			case err == nil:
				if _, err = dir.Files().WriteFile(dir.TokenAnswer(name), answer, 0o600, 0o700, true); err == nil {
					st = State{Hash: hash, Redeemed: time.Now().UTC().Truncate(time.Second)}
				}
			case grants.IsRefused(err), errors.As(err, &bad):
				st = State{Hash: hash, Refused: grants.OneLine(err.Error(), maxRefusal)}
			}
			if st.Hash != "" {
				if err := Save(dir, name, st); err == nil {
					q.changed()
					return
				}
			}
			delay := retryDelay(attempt, err)
			rd.mu.Lock()
			rd.lastErr, rd.next = errors.New(grants.OneLine(err.Error(), maxRefusal)), time.Now().Add(delay)
			rd.mu.Unlock()
			q.changed() // the status says why, and when again
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()
	return View{}
}

// retryDelay is how long a redeemer waits after its attempt-th failure
// err: 1 s doubling to 5 minutes, or what a busy server asked (at most 5
// minutes).
func retryDelay(attempt int, err error) time.Duration {
	return min(5*time.Minute, max(time.Second<<min(attempt, 9), grants.RetryAfter(err)))
}
