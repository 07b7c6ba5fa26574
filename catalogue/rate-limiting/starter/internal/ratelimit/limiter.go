// Package ratelimit decides whether a request may proceed.
package ratelimit

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"
)

// Decision is the outcome of one check.
type Decision struct {
	Allowed    bool
	Limit      int           // requests allowed per window, or bucket capacity
	Remaining  int           // budget left
	ResetAfter time.Duration // until the budget is fully restored
	RetryAfter time.Duration // when not allowed: until a retry can succeed
}

// Limiter is what the middleware calls. Implementations must be safe for concurrent use.
type Limiter interface {
	Allow(ctx context.Context, key string) (Decision, error)
}

// FixedWindow is the hackathon prototype: Limit requests per Window per key, counted in this
// process.
type FixedWindow struct {
	Limit  int
	Window time.Duration

	counts  map[string]int
	resetAt time.Time
}

func (l *FixedWindow) Allow(ctx context.Context, key string) (Decision, error) {
	now := time.Now()
	if l.counts == nil || now.After(l.resetAt) {
		l.counts = map[string]int{}
		l.resetAt = now.Add(l.Window)
	}
	l.counts[key]++
	remaining := l.Limit - l.counts[key]
	if remaining < 0 {
		return Decision{Allowed: false, Limit: l.Limit, RetryAfter: l.resetAt.Sub(now)}, nil
	}
	return Decision{Allowed: true, Limit: l.Limit, Remaining: remaining, ResetAfter: l.resetAt.Sub(now)}, nil
}

// ClientIP returns the address of the client that sent the request.
func ClientIP(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		return strings.TrimSpace(strings.Split(xff, ",")[0])
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
