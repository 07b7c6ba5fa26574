// Package ratelimit decides whether a request may proceed.
//
// Reference solution (grader only): a token bucket per key in one atomic Lua script timed by
// Redis's own clock (EVALSHA with a NOSCRIPT fallback, every key with a TTL), in-flight leases in
// a sorted set that expire if an instance dies, and an in-process fallback behind a breaker when
// Redis fails.
package ratelimit

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
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

// Rule is a token bucket: Rate tokens per second, at most Burst.
type Rule struct {
	Rate  float64
	Burst int
}

const (
	redisTimeout = 100 * time.Millisecond
	breakerOpen  = 2 * time.Second
	leaseFor     = 30 * time.Second
)

type script struct {
	src, sha string
}

func newScript(src string) script {
	h := sha1.Sum([]byte(src))
	return script{src: src, sha: hex.EncodeToString(h[:])}
}

func (s script) run(ctx context.Context, rdb Redis, keys []string, args ...any) (any, error) {
	res, err := rdb.EvalSha(ctx, s.sha, keys, args...)
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
		res, err = rdb.Eval(ctx, s.src, keys, args...)
	}
	return res, err
}

var bucketScript = newScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1]) or burst
local ts = tonumber(v[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000000)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local retry = 0
if allowed == 0 then retry = math.ceil((1 - tokens) / rate * 1000) end
return {allowed, math.floor(tokens), retry, math.ceil((burst - tokens) / rate * 1000)}
`)

var acquireScript = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
  return 1
end
return 0
`)

var releaseScript = newScript(`return redis.call('ZREM', KEYS[1], ARGV[1])`)

// Store makes decisions in Redis and falls back to this process's memory while Redis fails.
type Store struct {
	rdb Redis

	mu        sync.Mutex
	openUntil time.Time
	buckets   map[string]*localBucket
	inflight  map[string]int
}

func NewStore(rdb Redis) *Store {
	return &Store{rdb: rdb, buckets: map[string]*localBucket{}, inflight: map[string]int{}}
}

func (s *Store) redisUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().After(s.openUntil)
}

func (s *Store) failed() {
	s.mu.Lock()
	s.openUntil = time.Now().Add(breakerOpen)
	s.mu.Unlock()
}

// Allow takes one token from key's bucket.
func (s *Store) Allow(ctx context.Context, key string, rule Rule) Decision {
	if s.redisUp() {
		rctx, cancel := context.WithTimeout(ctx, redisTimeout)
		res, err := bucketScript.run(rctx, s.rdb, []string{"rl:{" + key + "}:tb"}, rule.Rate, rule.Burst)
		cancel()
		if err == nil {
			if v, ok := res.([]any); ok && len(v) == 4 {
				n := func(i int) int64 { x, _ := v[i].(int64); return x }
				return Decision{Allowed: n(0) == 1, Limit: rule.Burst, Remaining: int(n(1)),
					RetryAfter: time.Duration(n(2)) * time.Millisecond,
					ResetAfter: time.Duration(n(3)) * time.Millisecond}
			}
		}
		s.failed()
	}
	return s.localAllow(key, rule)
}

type localBucket struct {
	tokens float64
	at     time.Time
}

func (s *Store) localAllow(key string, rule Rule) Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	b, ok := s.buckets[key]
	if !ok {
		b = &localBucket{tokens: float64(rule.Burst), at: now}
		s.buckets[key] = b
	}
	b.tokens = math.Min(float64(rule.Burst), b.tokens+now.Sub(b.at).Seconds()*rule.Rate)
	b.at = now
	d := Decision{Limit: rule.Burst}
	if b.tokens >= 1 {
		b.tokens--
		d.Allowed = true
	} else {
		d.RetryAfter = time.Duration((1 - b.tokens) / rule.Rate * float64(time.Second))
	}
	d.Remaining = int(b.tokens)
	d.ResetAfter = time.Duration((float64(rule.Burst) - b.tokens) / rule.Rate * float64(time.Second))
	return d
}

// Acquire takes an in-flight slot under key; release gives it back. Slots are leases that
// expire after 30 s, so an instance dying mid-request cannot leak them.
func (s *Store) Acquire(ctx context.Context, key string, limit int) (release func(), ok bool) {
	if s.redisUp() {
		var b [8]byte
		rand.Read(b[:])
		member := hex.EncodeToString(b[:])
		zkey := "rl:{" + key + "}:inflight"
		rctx, cancel := context.WithTimeout(ctx, redisTimeout)
		res, err := acquireScript.run(rctx, s.rdb, []string{zkey}, limit, leaseFor.Milliseconds(), member)
		cancel()
		if err == nil {
			if res != int64(1) {
				return nil, false
			}
			return func() {
				rctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
				defer cancel()
				if _, err := releaseScript.run(rctx, s.rdb, []string{zkey}, member); err != nil {
					s.failed() // the lease expires on its own
				}
			}, true
		}
		s.failed()
	}
	// Fallback: this instance's share of the limit.
	local := max(1, limit/6)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[key] >= local {
		return nil, false
	}
	s.inflight[key]++
	return func() {
		s.mu.Lock()
		s.inflight[key]--
		s.mu.Unlock()
	}, true
}

// FixedWindow is the hackathon prototype, kept for comparison.
type FixedWindow struct {
	Limit  int
	Window time.Duration

	mu      sync.Mutex
	counts  map[string]int
	resetAt time.Time
}

func (l *FixedWindow) Allow(ctx context.Context, key string) (Decision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
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

// ClientIP returns the address of the client that sent the request: the last X-Forwarded-For
// entry, which our load balancer appended (everything before it is whatever the client sent).
func ClientIP(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		parts := strings.Split(xff, ",")
		if ip := strings.TrimSpace(parts[len(parts)-1]); ip != "" {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Seconds rounds d up to whole seconds for headers.
func Seconds(d time.Duration) string {
	return fmt.Sprint(int(math.Ceil(d.Seconds())))
}
