package controller

import (
	"context"

	"github.com/site-controller/site-controller/pkg/live"
)

// applyLive brings the running router to the pass's configuration over
// its namespace's live session (package live).
func (r *Reconciler) applyLive(ctx context.Context, s *siteState, platform string) (*live.Live, error) {
	d := live.Desired{
		Config:         s.Result.Config,
		Platform:       platform,
		CredentialHash: s.Desired.CredentialHash,
		HasCredential: func(name string) bool {
			_, ok := s.Desired.Credentials[name]
			return ok
		},
	}
	if s.Result.Router != nil {
		d.RouterStarted = s.Result.Router.Started
	}
	d.Observed = s.owner.observing()
	return s.owner.session.Apply(ctx, d, r.opts.ManagementTimeout)
}
