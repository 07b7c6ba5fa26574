package ratelimit

import (
	"context"
	"time"
)

// Redis is the part of the Redis Cluster client the limiter may use (an adapter over
// go-redis's ClusterClient in production). Keys touched by one script must hash to the same
// slot: use a hash tag, e.g. "rl:{acct_1001}:tokens" and "rl:{acct_1001}:ts".
type Redis interface {
	// Eval runs a Lua script atomically on the shard that owns keys.
	Eval(ctx context.Context, script string, keys []string, args ...any) (any, error)
	// EvalSha runs a script loaded with ScriptLoad. The error contains "NOSCRIPT" when the
	// shard does not have it (e.g. after a failover).
	EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) (any, error)
	ScriptLoad(ctx context.Context, script string) (string, error)
	// Time returns the clock of the shard that answers (TIME).
	Time(ctx context.Context) (time.Time, error)
}
