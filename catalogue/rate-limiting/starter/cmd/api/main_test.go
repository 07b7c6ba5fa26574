package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/parcelbase/api/internal/ratelimit/redistest"
)

// Two API instances over one fake Redis, as in production. The first test passes on the
// prototype; the other two describe requirements 1 and 5 and fail until they are met.

func twoInstances(t *testing.T) [2]http.Handler {
	rdb, srv := redistest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys := fakeKeys{"pb_test_starter": {ID: "acct_1001", Plan: PlanStarter}}
	a := NewHandler(Deps{Redis: rdb, Keys: keys, Users: fakeUsers{}, Carriers: fakeCarriers{}, Log: log})
	b := NewHandler(Deps{Redis: redistest.Client(t, srv), Keys: keys, Users: fakeUsers{}, Carriers: fakeCarriers{}, Log: log})
	return [2]http.Handler{a, b}
}

func getLabel(h http.Handler, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/v1/labels/lbl_8c1f", nil)
	r.RemoteAddr = "10.0.0.2:41000" // the load balancer
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	r.Header.Set("Authorization", "Bearer "+key)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestLabelIsServedWithAnAPIKey(t *testing.T) {
	api := twoInstances(t)
	if w := getLabel(api[0], "pb_test_starter"); w.Code != http.StatusOK {
		t.Fatalf("GET /v1/labels/lbl_8c1f: %d %s", w.Code, w.Body)
	}
}

func TestStarterBurstIsSharedByTheInstances(t *testing.T) {
	api := twoInstances(t)
	allowed := 0
	for i := 0; i < 60; i++ {
		if getLabel(api[i%2], "pb_test_starter").Code == http.StatusOK {
			allowed++
		}
	}
	// Burst 20 plus whatever 10 requests/s refilled while the loop ran (well under a second).
	if allowed < 20 || allowed > 25 {
		t.Fatalf("60 quick requests on a starter key over two instances: %d allowed, want 20 to 25", allowed)
	}
}

func TestRejectionIs429WithRetryAfter(t *testing.T) {
	api := twoInstances(t)
	for i := 0; i < 40; i++ {
		w := getLabel(api[i%2], "pb_test_starter")
		if w.Code == http.StatusOK {
			continue
		}
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("a rejected request got %d, want 429", w.Code)
		}
		if w.Header().Get("Retry-After") == "" {
			t.Fatalf("a 429 has no Retry-After header")
		}
		return
	}
	t.Fatalf("40 quick requests on a starter key (burst 20) were all allowed")
}
