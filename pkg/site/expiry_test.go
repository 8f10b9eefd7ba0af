package site

import (
	"testing"
	"time"
)

// TestExpiryChange: when a user credential's expiry warning next changes.
func TestExpiryChange(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name      string
		end, want time.Time
	}{
		{"far off: the warning begins", now.Add(40 * day), now.Add(10 * day)},
		{"warned: the days left move", now.Add(10*day + 5*time.Hour), now.Add(5 * time.Hour)},
		{"the last day: it expires", now.Add(5 * time.Hour), now.Add(5 * time.Hour)},
		{"expired: nothing more", now.Add(-time.Hour), time.Time{}},
	} {
		if got := expiryChange(tc.end, now); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
