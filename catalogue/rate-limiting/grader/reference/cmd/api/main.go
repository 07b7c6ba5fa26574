// Command api is the Parcelbase public API. Handlers are reduced to what matters for this
// exercise; users, carriers and API keys are fakes with realistic latency.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parcelbase/api/internal/ratelimit"
)

type Plan string

const (
	PlanStarter  Plan = "starter"
	PlanGrowth   Plan = "growth"
	PlanPlatform Plan = "platform"
)

// Account owns an API key.
type Account struct {
	ID   string
	Plan Plan
}

type accountKey struct{}

// AccountFrom returns the account authenticated by withAPIKey, if any.
func AccountFrom(ctx context.Context) (Account, bool) {
	a, ok := ctx.Value(accountKey{}).(Account)
	return a, ok
}

var errBadCredentials = errors.New("bad credentials")

// fakeKeys stands in for the accounts database (~3 ms per lookup in production).
type fakeKeys map[string]Account

func (k fakeKeys) Lookup(ctx context.Context, token string) (Account, error) {
	time.Sleep(3 * time.Millisecond)
	if a, ok := k[token]; ok {
		return a, nil
	}
	return Account{}, errors.New("unknown key")
}

// fakeUsers checks dashboard passwords. Production uses bcrypt at cost 12: ~80 ms of CPU.
type fakeUsers struct{}

func (fakeUsers) Authenticate(ctx context.Context, email, password string) (string, error) {
	time.Sleep(80 * time.Millisecond)
	if email == "ops@merchant.example" && password == "correct horse battery staple" {
		return "sess_2b7e151628aed2a6", nil
	}
	return "", errBadCredentials // same error for unknown emails and wrong passwords
}

// fakeCarriers asks four carrier APIs for prices. The carriers together accept about 600 quote
// requests/s from Parcelbase and throttle all of our traffic when we exceed that.
type fakeCarriers struct{}

func (fakeCarriers) Quote(ctx context.Context, from, to string, grams int) ([]map[string]any, error) {
	select {
	case <-time.After(400 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []map[string]any{{"carrier": "dpd", "service": "next_day", "price_minor": 689}}, nil
}

// KeyStore, Authenticator and Carriers are the dependencies the handlers use; main wires the
// fakes above, tests may wire their own.
type KeyStore interface {
	Lookup(ctx context.Context, token string) (Account, error)
}

type Authenticator interface {
	Authenticate(ctx context.Context, email, password string) (string, error)
}

type Carriers interface {
	Quote(ctx context.Context, from, to string, grams int) ([]map[string]any, error)
}

// Deps is what one API instance needs. Several instances share one Redis.
type Deps struct {
	Redis    ratelimit.Redis
	Keys     KeyStore
	Users    Authenticator
	Carriers Carriers
	Log      *slog.Logger
}

type server struct {
	keys     KeyStore
	users    Authenticator
	carriers Carriers
	log      *slog.Logger
	limits   *ratelimit.Store
}

var planRules = map[Plan]ratelimit.Rule{
	PlanStarter:  {Rate: 10, Burst: 20},
	PlanGrowth:   {Rate: 50, Burst: 100},
	PlanPlatform: {Rate: 200, Burst: 400},
}

var (
	loginPerIP      = ratelimit.Rule{Rate: 10.0 / 60, Burst: 10} // attempts per client address
	loginPerAccount = ratelimit.Rule{Rate: 5.0 / 60, Burst: 10}  // attempts per email
)

const (
	quotesPerKey = 20
	quotesGlobal = 150
)

// NewHandler builds one API instance. Keep this signature: the reviewers' load test builds two
// instances over one Redis with it, behind a load balancer that sets RemoteAddr to its own
// address and appends the client's address to X-Forwarded-For.
func NewHandler(d Deps) http.Handler {
	s := &server{keys: d.Keys, users: d.Users, carriers: d.Carriers, log: d.Log,
		limits: ratelimit.NewStore(d.Redis)}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sessions", s.handleLogin)
	mux.HandleFunc("POST /v1/rates", s.requireAccount(s.quotesInFlight(s.handleRates)))
	mux.HandleFunc("POST /v1/labels", s.requireAccount(s.handleCreateLabel))
	mux.HandleFunc("GET /v1/labels/{id}", s.requireAccount(s.handleGetLabel))
	return s.withAPIKey(s.perAccount(mux))
}

func setBudget(w http.ResponseWriter, d ratelimit.Decision) {
	h := w.Header()
	h.Set("RateLimit-Limit", fmt.Sprint(d.Limit))
	h.Set("RateLimit-Remaining", fmt.Sprint(d.Remaining))
	h.Set("RateLimit-Reset", ratelimit.Seconds(d.ResetAfter))
	if !d.Allowed {
		h.Set("Retry-After", ratelimit.Seconds(d.RetryAfter))
	}
}

// perAccount applies the plan's token bucket to authenticated requests.
func (s *server) perAccount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := AccountFrom(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		d := s.limits.Allow(r.Context(), "acct:"+a.ID, planRules[a.Plan])
		setBudget(w, d)
		if !d.Allowed {
			writeError(w, http.StatusTooManyRequests, "rate_limited", "Too many requests.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// quotesInFlight bounds concurrent quotes per key and overall; slots are released when the
// handler returns, including when the client disconnects.
func (s *server) quotesInFlight(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, _ := AccountFrom(r.Context())
		releaseGlobal, ok := s.limits.Acquire(r.Context(), "quotes", quotesGlobal)
		if !ok {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "too_many_quotes", "Too many quotes in flight.")
			return
		}
		defer releaseGlobal()
		release, ok := s.limits.Acquire(r.Context(), "quotes:"+a.ID, quotesPerKey)
		if !ok {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "too_many_quotes", "Too many quotes in flight for this key.")
			return
		}
		defer release()
		h(w, r)
	}
}

func main() {
	opts, err := redis.ParseURL(envOr("REDIS_URL", "redis://127.0.0.1:6379"))
	if err != nil {
		slog.Error("bad REDIS_URL", "err", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	handler := NewHandler(Deps{
		Redis: ratelimit.GoRedis(redis.NewClient(opts)),
		Keys: fakeKeys{
			"pb_live_starter_5f1c": {ID: "acct_1001", Plan: PlanStarter},
			"pb_live_growth_9a2e":  {ID: "acct_2002", Plan: PlanGrowth},
			"pb_live_platf_c07d":   {ID: "acct_3003", Plan: PlanPlatform},
		},
		Users:    fakeUsers{},
		Carriers: fakeCarriers{},
		Log:      log,
	})

	addr := envOr("ADDR", ":8080")
	log.Info("listening", "addr", addr)
	if err := http.ListenAndServe(addr, handler); err != nil {
		log.Error("server stopped", "err", err)
		os.Exit(1)
	}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// withAPIKey authenticates "Authorization: Bearer pb_live_..." keys. Requests without a key pass
// through unauthenticated; handlers that need an account use requireAccount.
func (s *server) withAPIKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			account, err := s.keys.Lookup(r.Context(), token)
			if err != nil {
				writeError(w, http.StatusUnauthorized, "invalid_api_key", "The API key is not valid.")
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), accountKey{}, account))
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) requireAccount(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := AccountFrom(r.Context()); !ok {
			writeError(w, http.StatusUnauthorized, "missing_api_key", "An API key is required.")
			return
		}
		h(w, r)
	}
}

func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_body", "Expected email and password.")
		return
	}
	for _, c := range []struct {
		key  string
		rule ratelimit.Rule
	}{{"login:ip:" + ratelimit.ClientIP(r), loginPerIP},
		{"login:acct:" + strings.ToLower(strings.TrimSpace(body.Email)), loginPerAccount}} {
		if d := s.limits.Allow(r.Context(), c.key, c.rule); !d.Allowed {
			w.Header().Set("Retry-After", ratelimit.Seconds(d.RetryAfter))
			writeError(w, http.StatusTooManyRequests, "too_many_attempts", "Too many sign-in attempts. Try again later.")
			return
		}
	}
	token, err := s.users.Authenticate(r.Context(), body.Email, body.Password)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "Email or password is incorrect.")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"session": token})
}

func (s *server) handleRates(w http.ResponseWriter, r *http.Request) {
	rates, err := s.carriers.Quote(r.Context(), "GB-EC1V", "DE-10115", 1200)
	if err != nil {
		writeError(w, http.StatusBadGateway, "carrier_error", "Carriers did not answer in time.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rates": rates})
}

func (s *server) handleCreateLabel(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusCreated, map[string]string{"id": "lbl_8c1f", "status": "created"})
}

func (s *server) handleGetLabel(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id"), "status": "in_transit"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"error": code, "message": message})
}
