package controller

import "github.com/site-controller/site-controller/pkg/status"

// writeStatus writes the status of every resource as the pass works it out
// (pass.Statuses), with the site's network as its observer last saw it,
// and removes the status files of resources that are gone.
func (r *Reconciler) writeStatus(s *siteState) ([]string, error) {
	s.View = s.owner.view() // one reading for every status
	// without every file read, a missing resource may only be unreadable
	w := status.Writer{Dir: s.Dir, Now: r.opts.Now, KeepStale: len(s.Incomplete) > 0, Memo: &s.cache.status}
	return w.Write(s.Statuses())
}
