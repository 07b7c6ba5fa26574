package catalog

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 11, 29, 8, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeDB behaves like a primary plus a lagging replica: a write becomes visible to GetProduct
// only once replicaLag has passed on the clock. Loads counts GetProduct calls. When Gate is
// non-nil, GetProduct blocks until it is closed, which lets a test hold a load in flight.
type fakeDB struct {
	mu         sync.Mutex
	clock      *fakeClock
	replicaLag time.Duration
	history    map[string][]write // key -> writes, oldest first
	Loads      atomic.Int64
	Gate       chan struct{}
}

type write struct {
	p  Product
	at time.Time
}

func newFakeDB(clock *fakeClock, replicaLag time.Duration, products ...Product) *fakeDB {
	db := &fakeDB{clock: clock, replicaLag: replicaLag, history: map[string][]write{}}
	for _, p := range products {
		k := key(p.SKU, p.Country)
		db.history[k] = append(db.history[k], write{p: p, at: clock.Now().Add(-time.Hour)})
	}
	return db
}

func (db *fakeDB) GetProduct(ctx context.Context, sku, country string) (Product, error) {
	db.Loads.Add(1)
	if db.Gate != nil {
		select {
		case <-db.Gate:
		case <-ctx.Done():
			return Product{}, ctx.Err()
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	visibleUpTo := db.clock.Now().Add(-db.replicaLag)
	writes := db.history[key(sku, country)]
	for i := len(writes) - 1; i >= 0; i-- {
		if !writes[i].at.After(visibleUpTo) {
			return writes[i].p, nil
		}
	}
	return Product{}, ErrNotFound
}

func (db *fakeDB) UpdatePrice(ctx context.Context, sku, country string, priceMinor int64) (int64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	k := key(sku, country)
	writes := db.history[k]
	if len(writes) == 0 {
		return 0, ErrNotFound
	}
	p := writes[len(writes)-1].p
	p.PriceMinor = priceMinor
	p.PriceVersion++
	p.UpdatedAt = db.clock.Now()
	db.history[k] = append(writes, write{p: p, at: db.clock.Now()})
	return p.PriceVersion, nil
}

var errRedisUnavailable = errors.New("dial tcp 10.0.3.17:6379: connect: connection refused")

// fakeCache is an in-memory stand-in for Redis with expiry on the fake clock. Set Failing to
// simulate an outage; Calls counts every operation.
type fakeCache struct {
	mu      sync.Mutex
	clock   *fakeClock
	entries map[string]entry
	Failing atomic.Bool
	Calls   atomic.Int64
}

type entry struct {
	value   []byte
	expires time.Time
}

func newFakeCache(clock *fakeClock) *fakeCache {
	return &fakeCache{clock: clock, entries: map[string]entry{}}
}

func (c *fakeCache) Get(ctx context.Context, k string) ([]byte, error) {
	return c.get(k, 0)
}

func (c *fakeCache) GetEx(ctx context.Context, k string, ttl time.Duration) ([]byte, error) {
	return c.get(k, ttl)
}

func (c *fakeCache) get(k string, resetTTL time.Duration) ([]byte, error) {
	c.Calls.Add(1)
	if c.Failing.Load() {
		return nil, errRedisUnavailable
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.clock.Now().Before(e.expires) {
		delete(c.entries, k)
		return nil, ErrNotFound
	}
	if resetTTL > 0 {
		e.expires = c.clock.Now().Add(resetTTL)
		c.entries[k] = e
	}
	return append([]byte(nil), e.value...), nil
}

func (c *fakeCache) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	c.Calls.Add(1)
	if c.Failing.Load() {
		return errRedisUnavailable
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[k] = entry{value: append([]byte(nil), v...), expires: c.clock.Now().Add(ttl)}
	return nil
}

func (c *fakeCache) Delete(ctx context.Context, k string) error {
	c.Calls.Add(1)
	if c.Failing.Load() {
		return errRedisUnavailable
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
	return nil
}
