// Package redistest provides a fake Redis for tests: miniredis, an in-process Redis server that
// runs Lua scripts atomically like the real one (EVAL, EVALSHA, SCRIPT LOAD, TIME, TTLs), reached
// through the same go-redis adapter as production. No network beyond the loopback.
package redistest

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/parcelbase/api/internal/ratelimit"
)

// New starts a fake Redis for the test and returns a client for it and the server, whose clock
// and keys a test can control: srv.FastForward(d) expires keys, srv.SetTime(t) sets what TIME
// returns, srv.Close() simulates Redis going away. Call New again with the same server
// (Client(t, srv)) for a second API instance sharing it.
func New(t testing.TB) (ratelimit.Redis, *miniredis.Miniredis) {
	t.Helper()
	srv := miniredis.RunT(t)
	return Client(t, srv), srv
}

// Client returns another client of srv, as a second instance would have.
func Client(t testing.TB, srv *miniredis.Miniredis) ratelimit.Redis {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return ratelimit.GoRedis(c)
}
