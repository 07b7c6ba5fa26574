package ratelimit

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
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

// GoRedis adapts a go-redis client (redis.NewClient, or redis.NewClusterClient in production)
// to Redis. Script results come back as go-redis returns them: int64, string, []any, or nil
// with redis.Nil as the error.
func GoRedis(c redis.UniversalClient) Redis { return goRedis{c} }

type goRedis struct{ c redis.UniversalClient }

func (g goRedis) Eval(ctx context.Context, script string, keys []string, args ...any) (any, error) {
	return g.c.Eval(ctx, script, keys, args...).Result()
}

func (g goRedis) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) (any, error) {
	return g.c.EvalSha(ctx, sha1, keys, args...).Result()
}

func (g goRedis) ScriptLoad(ctx context.Context, script string) (string, error) {
	return g.c.ScriptLoad(ctx, script).Result()
}

func (g goRedis) Time(ctx context.Context) (time.Time, error) {
	return g.c.Time(ctx).Result()
}
