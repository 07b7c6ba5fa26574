package main

// Hidden checks for the rate-limiting task: two API instances built with NewHandler over one
// real Redis ($REDIS_URL, a fresh redis-server per run), each through its own TCP proxy so that
// a test can stop Redis for one instance. Relies only on what the starter fixes: NewHandler,
// Deps, Account, Plan*, the KeyStore/Authenticator/Carriers interfaces, ratelimit.Redis and
// ratelimit.ClientIP. Each test uses its own Redis database number, so tests running at the same
// time do not share counters.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parcelbase/api/internal/ratelimit"
)

// ---- Redis access ---------------------------------------------------------------------------

type graderRedis struct{ c *redis.Client }

func (g graderRedis) Eval(ctx context.Context, s string, k []string, a ...any) (any, error) {
	return g.c.Eval(ctx, s, k, a...).Result()
}
func (g graderRedis) EvalSha(ctx context.Context, s string, k []string, a ...any) (any, error) {
	return g.c.EvalSha(ctx, s, k, a...).Result()
}
func (g graderRedis) ScriptLoad(ctx context.Context, s string) (string, error) {
	return g.c.ScriptLoad(ctx, s).Result()
}
func (g graderRedis) Time(ctx context.Context) (time.Time, error) { return g.c.Time(ctx).Result() }

var _ ratelimit.Redis = graderRedis{}

// graderProxy forwards TCP to Redis until Stop, after which connections are refused.
type graderProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   []net.Conn
	stopped bool
}

func newGraderProxy(t *testing.T, target string) *graderProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &graderProxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.stopped {
				p.mu.Unlock()
				c.Close()
				u.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.Stop)
	return p
}

func (p *graderProxy) Addr() string { return p.ln.Addr().String() }

func (p *graderProxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// ---- fakes ----------------------------------------------------------------------------------

type graderKeys map[string]Account

func (k graderKeys) Lookup(ctx context.Context, token string) (Account, error) {
	if a, ok := k[token]; ok {
		return a, nil
	}
	return Account{}, errors.New("unknown key")
}

type graderUsers struct{}

func (graderUsers) Authenticate(ctx context.Context, email, password string) (string, error) {
	if password == "correct horse battery staple" {
		return "sess_" + email, nil
	}
	return "", errors.New("bad credentials")
}

// graderCarriers counts quotes in flight; when gate is set, quotes wait for it.
type graderCarriers struct {
	mu       sync.Mutex
	inFlight int
	max      int
	gate     chan struct{}
}

func (c *graderCarriers) Quote(ctx context.Context, from, to string, grams int) ([]map[string]any, error) {
	c.mu.Lock()
	c.inFlight++
	c.max = max(c.max, c.inFlight)
	gate := c.gate
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return []map[string]any{{"carrier": "dpd", "price_minor": 689}}, nil
}

func (c *graderCarriers) Max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}

func (c *graderCarriers) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight
}

// ---- the two instances ----------------------------------------------------------------------

type graderEnv struct {
	api      [2]http.Handler
	proxies  [2]*graderProxy
	carriers *graderCarriers
	keys     graderKeys
}

func newGraderEnv(t *testing.T, db int) *graderEnv {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: opts.Addr, DB: db})
	if err := admin.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("the grader's Redis is not reachable: %v", err)
	}
	admin.Close()
	env := &graderEnv{carriers: &graderCarriers{}, keys: graderKeys{}}
	plans := []Plan{PlanStarter, PlanGrowth, PlanPlatform}
	for i := 0; i < 30; i++ {
		plan := plans[i%3]
		env.keys[fmt.Sprintf("pb_test_%s_%d", plan, i/3)] = Account{ID: fmt.Sprintf("acct_%d_%d", db, i), Plan: plan}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range env.api {
		env.proxies[i] = newGraderProxy(t, opts.Addr)
		c := redis.NewClient(&redis.Options{Addr: env.proxies[i].Addr(), DB: db,
			DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
			WriteTimeout: 200 * time.Millisecond, PoolSize: 256})
		t.Cleanup(func() { c.Close() })
		env.api[i] = NewHandler(Deps{Redis: graderRedis{c}, Keys: env.keys, Users: graderUsers{},
			Carriers: env.carriers, Log: log})
	}
	// One request each, so that lazily prepared scripts are loaded before anything is timed.
	for i := range env.api {
		env.do(i, "GET", "/v1/labels/warmup", "pb_test_platform_9", "198.51.100.250", "")
	}
	return env
}

func graderKey(plan Plan, n int) string { return fmt.Sprintf("pb_test_%s_%d", plan, n) }

// do sends one request to instance i as the load balancer would forward it: RemoteAddr is the
// balancer, X-Forwarded-For ends with the client's address.
func (e *graderEnv) do(i int, method, path, apiKey, clientIP, forged string) *httptest.ResponseRecorder {
	return e.doCtx(context.Background(), i, method, path, apiKey, clientIP, forged, "")
}

func (e *graderEnv) doCtx(ctx context.Context, i int, method, path, apiKey, clientIP, forged, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body)).WithContext(ctx)
	r.RemoteAddr = "10.0.0.2:41000"
	xff := clientIP
	if forged != "" {
		xff = forged + ", " + clientIP
	}
	r.Header.Set("X-Forwarded-For", xff)
	if apiKey != "" {
		r.Header.Set("Authorization", "Bearer "+apiKey)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.api[i%2].ServeHTTP(w, r)
	return w
}

// burst sends n requests as fast as possible over both instances (8 at a time) and returns how
// many were allowed (2xx), rejected with 429, and anything else, and how long it took.
func (e *graderEnv) burst(n int, apiKey string) (ok, limited, other int, took time.Duration) {
	var okN, limN, othN atomic.Int64
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			w := e.do(i, "GET", "/v1/labels/lbl_8c1f", apiKey, "203.0.113.7", "")
			switch {
			case w.Code < 300:
				okN.Add(1)
			case w.Code == http.StatusTooManyRequests:
				limN.Add(1)
			default:
				othN.Add(1)
			}
		}(i)
	}
	wg.Wait()
	return int(okN.Load()), int(limN.Load()), int(othN.Load()), time.Since(start)
}

func checkBurst(t *testing.T, db int, plan Plan, rate, burstSize, n int) {
	env := newGraderEnv(t, db)
	ok, limited, other, took := env.burst(n, graderKey(plan, 0))
	hi := burstSize + int(float64(rate)*took.Seconds()) + 2
	lo := burstSize - 2
	if ok < lo || ok > hi || other > 0 {
		t.Errorf("%d requests in %v on a %s key (%d/s, burst %d) over two instances: %d allowed (expected %d to %d), %d rejected with 429, %d other statuses",
			n, took.Round(time.Millisecond), plan, rate, burstSize, ok, lo, hi, limited, other)
	}
}

// ---- bursts and rates -----------------------------------------------------------------------

func TestGraderBurstStarter(t *testing.T)  { checkBurst(t, 1, PlanStarter, 10, 20, 60) }
func TestGraderBurstGrowth(t *testing.T)   { checkBurst(t, 2, PlanGrowth, 50, 100, 250) }
func TestGraderBurstPlatform(t *testing.T) { checkBurst(t, 3, PlanPlatform, 200, 400, 700) }

func TestGraderSustainedRate(t *testing.T) {
	env := newGraderEnv(t, 4)
	k := graderKey(PlanStarter, 1)
	env.burst(40, k) // use up the burst
	// Then 40 requests/s for 2 s, alternating instances: about 10/s may pass.
	allowed := 0
	start := time.Now()
	for i := 0; i < 80; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 25 * time.Millisecond)))
		if env.do(i, "GET", "/v1/labels/lbl_8c1f", k, "203.0.113.7", "").Code < 300 {
			allowed++
		}
	}
	took := time.Since(start)
	expect := 10 * took.Seconds()
	if float64(allowed) < expect-5 || float64(allowed) > expect+5 {
		t.Errorf("after its burst was used, a starter key sending 40 requests/s for %v had %d allowed (expected about %.0f at 10/s)",
			took.Round(time.Millisecond), allowed, expect)
	}
}

func TestGraderKeysIndependent(t *testing.T) {
	env := newGraderEnv(t, 5)
	env.burst(60, graderKey(PlanStarter, 2))
	ok, _, _, _ := env.burst(15, graderKey(PlanStarter, 3))
	if ok != 15 {
		t.Errorf("after one starter key used up its budget, another starter key from the same address had %d of 15 requests allowed (limits must be per API key)", ok)
	}
}

func TestGraderHeaders(t *testing.T) {
	env := newGraderEnv(t, 6)
	k := graderKey(PlanStarter, 4)
	remaining := func(h http.Header) string {
		for _, name := range []string{"RateLimit-Remaining", "X-RateLimit-Remaining", "RateLimit"} {
			if v := h.Get(name); v != "" {
				return name + ": " + v
			}
		}
		return ""
	}
	w1 := env.do(0, "GET", "/v1/labels/lbl_8c1f", k, "203.0.113.7", "")
	w2 := env.do(1, "GET", "/v1/labels/lbl_8c1f", k, "203.0.113.7", "")
	if w1.Code != http.StatusOK {
		t.Fatalf("the first request on a fresh starter key got %d", w1.Code)
	}
	r1, r2 := remaining(w1.Header()), remaining(w2.Header())
	if r1 == "" {
		t.Errorf("an allowed response carries no remaining-budget header (RateLimit-Remaining, X-RateLimit-Remaining or RateLimit); headers: %v", w1.Header())
	} else if r1 == r2 {
		t.Errorf("the remaining budget did not change between two requests on two instances (%q, then %q)", r1, r2)
	}
	var rejected *httptest.ResponseRecorder
	for i := 0; i < 60 && rejected == nil; i++ {
		if w := env.do(i, "GET", "/v1/labels/lbl_8c1f", k, "203.0.113.7", ""); w.Code >= 300 {
			rejected = w
		}
	}
	if rejected == nil {
		t.Fatalf("62 quick requests on a starter key (burst 20) were all allowed")
	}
	if rejected.Code != http.StatusTooManyRequests {
		t.Errorf("a rejected request got %d, expected 429", rejected.Code)
	}
	ra := rejected.Header().Get("Retry-After")
	var secs int
	if _, err := fmt.Sscanf(ra, "%d", &secs); err != nil || secs < 0 || secs > 60 {
		t.Errorf("a rejected request has Retry-After %q (expected a number of seconds, at most a few for a 10/s plan)", ra)
	}
}

// ---- quotes in flight -----------------------------------------------------------------------

// quotes starts n quote requests on the given keys (round robin) with carriers held, waits until
// nothing more is admitted, and returns how many were rejected with 429 and a release function.
func (e *graderEnv) quotes(n int, keys []string) (release func() (ok, limited, other int), ctxs []context.CancelFunc) {
	e.carriers.mu.Lock()
	gate := make(chan struct{})
	e.carriers.gate = gate
	e.carriers.mu.Unlock()
	var okN, limN, othN atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs = append(ctxs, cancel)
		if i > 0 {
			time.Sleep(2 * time.Millisecond) // a steep ramp rather than every request in one instant
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w := e.doCtx(ctx, i, "POST", "/v1/rates", keys[i%len(keys)], "203.0.113.7", "",
				`{"from":"GB-EC1V","to":"DE-10115","grams":1200}`)
			switch {
			case w.Code < 300:
				okN.Add(1)
			case w.Code == http.StatusTooManyRequests:
				limN.Add(1)
			default:
				othN.Add(1)
			}
		}(i)
	}
	// Wait until every request is either at the carriers or answered.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if e.carriers.InFlight()+int(limN.Load()+othN.Load()) >= n {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	return func() (int, int, int) {
		close(gate)
		wg.Wait()
		return int(okN.Load()), int(limN.Load()), int(othN.Load())
	}, ctxs
}

func TestGraderQuotesInFlightPerKey(t *testing.T) {
	env := newGraderEnv(t, 7)
	k := graderKey(PlanPlatform, 0)
	release, _ := env.quotes(30, []string{k})
	held := env.carriers.InFlight()
	ok, limited, other := release()
	if env.carriers.Max() > 20 || held > 20 {
		t.Errorf("30 concurrent quotes on one API key over two instances: %d reached the carriers at once (at most 20 in flight per key)", env.carriers.Max())
	}
	if held < 18 {
		t.Errorf("30 concurrent quotes on one API key: only %d were let through (20 in flight per key are allowed)", held)
	}
	if other > 0 || limited == 0 {
		t.Errorf("30 concurrent quotes on one API key: %d allowed, %d rejected with 429, %d other statuses", ok, limited, other)
	}
	// The slots come back when the quotes complete.
	env.carriers.mu.Lock()
	env.carriers.max = 0
	env.carriers.mu.Unlock()
	release, _ = env.quotes(20, []string{k})
	held = env.carriers.InFlight()
	release()
	if held < 18 {
		t.Errorf("after the first quotes completed, only %d of 20 new concurrent quotes on that key were let through (slots not released?)", held)
	}
}

func TestGraderQuotesInFlightGlobal(t *testing.T) {
	env := newGraderEnv(t, 8)
	var keys []string
	for i := 0; i < 10; i++ {
		keys = append(keys, graderKey(PlanPlatform, i))
	}
	release, _ := env.quotes(180, keys) // 18 per key, within the per-key limit
	held := env.carriers.InFlight()
	_, limited, other := release()
	if env.carriers.Max() > 150 {
		t.Errorf("180 concurrent quotes over 10 API keys: %d reached the carriers at once (at most 150 in flight across all keys)", env.carriers.Max())
	}
	if held < 140 {
		t.Errorf("180 concurrent quotes over 10 API keys: only %d were let through (150 in flight are allowed)", held)
	}
	if other > 0 || limited == 0 {
		t.Errorf("180 concurrent quotes over 10 API keys: %d rejected with 429, %d other statuses", limited, other)
	}
}

func TestGraderQuotesReleasedOnDisconnect(t *testing.T) {
	env := newGraderEnv(t, 9)
	k := graderKey(PlanPlatform, 1)
	release, cancels := env.quotes(20, []string{k})
	for _, c := range cancels {
		c() // the clients hang up
	}
	deadline := time.Now().Add(2 * time.Second)
	for env.carriers.InFlight() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	release()
	time.Sleep(50 * time.Millisecond)
	release, _ = env.quotes(20, []string{k})
	held := env.carriers.InFlight()
	release()
	if held < 18 {
		t.Errorf("after 20 clients hung up mid-quote, only %d of 20 new concurrent quotes on that key were let through (slots leaked on disconnect)", held)
	}
}

// ---- login ----------------------------------------------------------------------------------

func (e *graderEnv) login(i int, email, password, clientIP, forged string) int {
	body := fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
	return e.doCtx(context.Background(), i, "POST", "/v1/sessions", "", clientIP, forged, body).Code
}

func TestGraderLoginOneIPManyAccounts(t *testing.T) {
	env := newGraderEnv(t, 10)
	limited := 0
	for i := 0; i < 100; i++ {
		if env.login(i, fmt.Sprintf("victim%d@merchant.example", i), "hunter2", "198.51.100.7", "") == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Errorf("100 failed logins against 100 accounts from one address were all answered (no 429): credential stuffing from one address is not slowed")
	}
}

func TestGraderLoginManyIPsOneAccount(t *testing.T) {
	env := newGraderEnv(t, 11)
	limited := 0
	for i := 0; i < 100; i++ {
		if env.login(i, "ops@merchant.example", "guess"+fmt.Sprint(i), fmt.Sprintf("198.51.%d.%d", 100+i/200, i%200+1), "") == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Errorf("100 failed logins against one account from 100 addresses were all answered (no 429): a distributed attack on one account is not slowed")
	}
}

func TestGraderLoginAttackContained(t *testing.T) {
	env := newGraderEnv(t, 12)
	for i := 0; i < 100; i++ {
		env.login(i, "target@merchant.example", "guess", fmt.Sprintf("198.51.%d.%d", 100+i/200, i%200+1), "")
	}
	for i := 0; i < 3; i++ {
		if code := env.login(i, fmt.Sprintf("someone%d@merchant.example", i), "correct horse battery staple", fmt.Sprintf("203.0.113.%d", 50+i), ""); code != http.StatusCreated {
			t.Errorf("during an attack on one account, another user logging in correctly from their own address got %d (expected 201)", code)
		}
	}
}

func TestGraderForgedXFF(t *testing.T) {
	env := newGraderEnv(t, 13)
	limited := 0
	for i := 0; i < 100; i++ {
		forged := fmt.Sprintf("%d.%d.%d.%d", 1+i%200, i%250, (i*7)%250, (i*13)%250)
		if env.login(i, fmt.Sprintf("user%d@merchant.example", i), "hunter2", "198.51.100.9", forged) == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Errorf("100 failed logins from one address that forged a different X-Forwarded-For each time were all answered: limits follow the forged address")
	}
}

func TestGraderClientIP(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:41000"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.7")
	if got := ratelimit.ClientIP(r); got != "203.0.113.7" {
		t.Errorf("ClientIP with X-Forwarded-For %q (the balancer appended 203.0.113.7) returned %q", "6.6.6.6, 203.0.113.7", got)
	}
}

// ---- Redis failures -------------------------------------------------------------------------

func TestGraderRedisDownAvailable(t *testing.T) {
	env := newGraderEnv(t, 14)
	k := graderKey(PlanGrowth, 5)
	env.burst(5, k)
	env.proxies[0].Stop()
	env.proxies[1].Stop()
	var worst time.Duration
	codes := map[int]int{}
	for i := 0; i < 20; i++ {
		start := time.Now()
		w := env.do(i, "GET", "/v1/labels/lbl_8c1f", k, "203.0.113.7", "")
		worst = max(worst, time.Since(start))
		codes[w.Code]++
	}
	if codes[http.StatusOK] == 0 {
		t.Errorf("with Redis stopped, 20 label reads on a growth key (well within its limit) got statuses %v and none was served", codes)
	}
	if worst > 500*time.Millisecond {
		t.Errorf("with Redis stopped, a label read took %v (the API must not hang on Redis)", worst.Round(time.Millisecond))
	}
}

func TestGraderRedisDownStillLimited(t *testing.T) {
	env := newGraderEnv(t, 15)
	env.proxies[0].Stop()
	env.proxies[1].Stop()
	ok, limited, other, took := env.burst(300, graderKey(PlanStarter, 6))
	if ok > 100 {
		t.Errorf("with Redis stopped, %d of 300 requests in %v on a starter key (10/s, burst 20) were allowed (%d rejected, %d other): no fallback limit",
			ok, took.Round(time.Millisecond), limited, other)
	}
}
