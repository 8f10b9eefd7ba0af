package controller

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
)

// AccessTokens are redeemed in the background, never inside a pass: a
// redeemer per token posts it to its grant server, with a deadline, and
// retries failures to reach the server with backoff (1 s doubling to 5
// minutes, longer when a busy server asks so); a refusal (403, 404, or an
// answer that is not just a Secret and Link(s): answer.go) is final for
// that token's content. What is taken of the answer (a Secret and Links)
// is kept in runtime/tokens/<name>.yaml (0600), and read by every pass
// beside input/resources, so it becomes a link exactly as a link file
// would; the outcome is kept in internal/tokens/<name>.yaml (0600), so a
// restart does not redeem a token again.

// tokenState is what the controller keeps of a token's redemption.
type tokenState struct {
	Hash     string    `yaml:"hash"` // of the token's url, code and ca
	Redeemed time.Time `yaml:"redeemed,omitempty"`
	// Refused is the grant server's final answer.
	Refused string `yaml:"refused,omitempty"`
}

func tokenHash(t *resources.AccessToken) string {
	sum := sha256.Sum256([]byte(t.Spec.URL + "\x00" + t.Spec.Code + "\x00" + t.Spec.CA))
	return hex.EncodeToString(sum[:8])
}

func tokenStatePath(dir namespace.Dir, name string) string {
	return filepath.Join(dir.Internal(), "tokens", name+".yaml")
}

func tokenAnswerPath(dir namespace.Dir, name string) string {
	return dir.Join("runtime", "tokens", name+".yaml")
}

func loadToken(dir namespace.Dir, name string) (tokenState, error) {
	var st tokenState
	return st, readState(tokenStatePath(dir, name), &st)
}

func saveToken(dir namespace.Dir, name string, st tokenState) error {
	return writeState(dir, tokenStatePath(dir, name), st, 0o600)
}

// tokenDocs reads the answers of the redeemed tokens among docs: their
// Secret and Links join the namespace's resources (a token's linkCost
// set on its Links). Only what takeAnswer takes is used, and nothing of
// an answer whose Secret or Links have the names of the input's (whose
// Links would then use the answer's credential). Answers of tokens that
// are gone are removed, unless some file could not be read (no evidence
// that they are gone).
func tokenDocs(dir namespace.Dir, docs []*resources.Document, complete bool) ([]*resources.Document, []resources.Problem) {
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
	files, _ := filepath.Glob(filepath.Join(dir.Join("runtime", "tokens"), "*.yaml"))
	var out []*resources.Document
	var probs []resources.Problem
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t := tokens[name]
		st, err := loadToken(dir, name)
		if t == nil || err != nil || st.Hash != tokenHash(t) || st.Redeemed.IsZero() {
			if t == nil && complete {
				dir.Files().Remove(f)
				dir.Files().Remove(tokenStatePath(dir, name))
			}
			continue
		}
		rel := "runtime/tokens/" + filepath.Base(f)
		data, err := readAnswer(f)
		if err == nil {
			data, err = takeAnswer(data)
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

// tokenView is what an AccessToken's status shows.
type tokenView struct {
	redeemed time.Time
	refused  string
	// lastErr is the last failure to reach the server, and when the
	// next try is
	lastErr error
	next    time.Time
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

// redeemTokens works out each token's state, starts the redemptions that
// are due and ends those of tokens that are gone or changed.
func (r *Reconciler) redeemTokens(s *siteState) {
	s.tokens = map[string]tokenView{}
	want := map[string]string{} // name → hash of the tokens to redeem
	if s.ns.Site != nil {
		for _, t := range s.ns.Tokens {
			name := t.Metadata.Name
			hash := tokenHash(t)
			st, err := loadToken(s.dir, name)
			if err == nil && st.Hash == hash && (!st.Redeemed.IsZero() || st.Refused != "") {
				s.tokens[name] = tokenView{redeemed: st.Redeemed, refused: st.Refused}
				continue
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.tokens[name] = tokenView{lastErr: fmt.Errorf("reading its state: %w", err)}
				continue
			}
			want[name] = hash
			s.tokens[name] = r.startRedeem(s.owner, t, hash, s.res.SiteID)
		}
	}
	s.owner.endRedemptions(want)
}

// endRedemptions ends the redemptions of tokens that are not in want (by
// name, with the hash of their content).
func (o *owner) endRedemptions(want map[string]string) {
	o.mu.Lock()
	var ended []*redeemer
	for name, rd := range o.redeeming {
		if want[name] != rd.hash {
			ended = append(ended, rd)
			delete(o.redeeming, name)
		}
	}
	o.mu.Unlock()
	for _, rd := range ended {
		rd.stop()
	}
}

// startRedeem runs the token's redemption unless it runs already, and
// returns how it stands.
func (r *Reconciler) startRedeem(o *owner, t *resources.AccessToken, hash, siteID string) tokenView {
	name, dir := t.Metadata.Name, o.dir
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return tokenView{}
	}
	if rd := o.redeeming[name]; rd != nil && rd.hash == hash {
		o.mu.Unlock()
		rd.mu.Lock()
		defer rd.mu.Unlock()
		return tokenView{lastErr: rd.lastErr, next: rd.next}
	}
	old := o.redeeming[name]
	ctx, cancel := context.WithCancel(context.Background())
	rd := &redeemer{hash: hash, cancel: cancel, done: make(chan struct{})}
	if o.redeeming == nil {
		o.redeeming = map[string]*redeemer{}
	}
	o.redeeming[name] = rd
	o.mu.Unlock()
	if old != nil {
		old.stop()
	}
	spec := t.Spec
	go func() {
		defer close(rd.done)
		defer func() {
			o.mu.Lock()
			if o.redeeming[name] == rd {
				delete(o.redeeming, name)
			}
			o.mu.Unlock()
		}()
		for attempt := 0; ; attempt++ {
			actx, acancel := context.WithTimeout(ctx, r.opts.RedeemTimeout)
			answer, err := grants.Redeem(actx, spec.URL, spec.Code, spec.CA, name, siteID)
			acancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				answer, err = takeAnswer(answer)
			}
			var st tokenState
			var bad *answerRefused
			switch {
			case err == nil:
				if _, err = dir.Files().WriteFile(tokenAnswerPath(dir, name), answer, 0o600, 0o700, true); err == nil {
					st = tokenState{Hash: hash, Redeemed: time.Now().UTC().Truncate(time.Second)}
				}
			case grants.IsRefused(err), errors.As(err, &bad):
				st = tokenState{Hash: hash, Refused: grants.OneLine(err.Error(), maxRefusal)}
			}
			if st.Hash != "" {
				if err := saveToken(dir, name, st); err == nil {
					r.requeue(dir.Name)
					return
				}
			}
			delay := retryDelay(attempt, err)
			rd.mu.Lock()
			rd.lastErr, rd.next = errors.New(grants.OneLine(err.Error(), maxRefusal)), time.Now().Add(delay)
			rd.mu.Unlock()
			r.requeue(dir.Name) // the status says why, and when again
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()
	return tokenView{}
}

// retryDelay is how long a redeemer waits after its attempt-th failure
// err: 1 s doubling to 5 minutes, or what a busy server asked (at most 5
// minutes).
func retryDelay(attempt int, err error) time.Duration {
	return min(5*time.Minute, max(time.Second<<min(attempt, 9), grants.RetryAfter(err)))
}

func (r *Reconciler) requeue(ns string) {
	if r.opts.Requeue != nil {
		r.opts.Requeue(ns)
	}
}
