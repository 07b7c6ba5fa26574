package catalog

// Hidden checks for the catalogue caching task. Copied into the candidate's package by the
// grader (runner/harness/go_test.py grade) after the candidate's own *_test.go files are removed;
// it relies only on what catalog.go fixes: Product, Database, Cache, Clock, PriceChanged,
// ErrNotFound, NewService and the Service methods. Its fakes are its own (prefixed grader) so
// that a candidate's edits to fakes_test.go cannot change what is measured.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ---- fakes ---------------------------------------------------------------------------------

type graderClock struct {
	mu  sync.Mutex
	now time.Time
}

func newGraderClock() *graderClock {
	return &graderClock{now: time.Date(2024, 11, 29, 8, 0, 0, 0, time.UTC)}
}

func (c *graderClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *graderClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type graderWrite struct {
	p  Product
	at time.Time
}

// graderDB: a primary plus a replica lagging by lag on the clock. Loads are counted per key;
// gates hold loads of one key in flight.
type graderDB struct {
	mu       sync.Mutex
	clock    *graderClock
	lag      time.Duration
	history  map[string][]graderWrite
	loads    map[string]int
	inFlight map[string]int
	maxIn    map[string]int
	gates    map[string]chan struct{}
	total    atomic.Int64
	delay    atomic.Int64 // real time each load takes, in ns
}

func gk(sku, country string) string { return country + "/" + sku }

func newGraderDB(clock *graderClock, lag time.Duration, products ...Product) *graderDB {
	db := &graderDB{clock: clock, lag: lag, history: map[string][]graderWrite{},
		loads: map[string]int{}, inFlight: map[string]int{}, maxIn: map[string]int{},
		gates: map[string]chan struct{}{}}
	for _, p := range products {
		db.history[gk(p.SKU, p.Country)] = []graderWrite{{p: p, at: clock.Now().Add(-time.Hour)}}
	}
	return db
}

func (db *graderDB) GetProduct(ctx context.Context, sku, country string) (Product, error) {
	k := gk(sku, country)
	db.total.Add(1)
	db.mu.Lock()
	db.loads[k]++
	db.inFlight[k]++
	if db.inFlight[k] > db.maxIn[k] {
		db.maxIn[k] = db.inFlight[k]
	}
	gate := db.gates[k]
	db.mu.Unlock()
	defer func() {
		db.mu.Lock()
		db.inFlight[k]--
		db.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return Product{}, ctx.Err()
		}
	}
	if d := db.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	visible := db.clock.Now().Add(-db.lag)
	writes := db.history[k]
	for i := len(writes) - 1; i >= 0; i-- {
		if !writes[i].at.After(visible) {
			return writes[i].p, nil
		}
	}
	return Product{}, ErrNotFound
}

// change applies f to the latest version of a product on the primary, at the clock's time.
func (db *graderDB) change(sku, country string, f func(*Product)) Product {
	db.mu.Lock()
	defer db.mu.Unlock()
	k := gk(sku, country)
	writes := db.history[k]
	p := writes[len(writes)-1].p
	f(&p)
	p.UpdatedAt = db.clock.Now()
	db.history[k] = append(writes, graderWrite{p: p, at: db.clock.Now()})
	return p
}

func (db *graderDB) UpdatePrice(ctx context.Context, sku, country string, priceMinor int64) (int64, error) {
	p := db.change(sku, country, func(p *Product) { p.PriceMinor = priceMinor; p.PriceVersion++ })
	return p.PriceVersion, nil
}

func (db *graderDB) Loads(sku, country string) int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.loads[gk(sku, country)]
}

func (db *graderDB) MaxInFlight(sku, country string) int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.maxIn[gk(sku, country)]
}

func (db *graderDB) Hold(sku, country string) chan struct{} {
	g := make(chan struct{})
	db.mu.Lock()
	db.gates[gk(sku, country)] = g
	db.mu.Unlock()
	return g
}

var errGraderRedisDown = errors.New("dial tcp 10.0.3.17:6379: connect: connection refused")

const (
	graderUp = iota
	graderDown
	graderSlow
)

// graderCache: Redis with expiry on the fake clock; mode switches between healthy, refusing
// connections and hanging (until the caller's context ends or 3 s pass, then an i/o timeout).
type graderCache struct {
	mu      sync.Mutex
	clock   *graderClock
	entries map[string]graderEntry
	mode    atomic.Int32
}

type graderEntry struct {
	v       []byte
	expires time.Time
}

func newGraderCache(clock *graderClock) *graderCache {
	return &graderCache{clock: clock, entries: map[string]graderEntry{}}
}

func (c *graderCache) fault(ctx context.Context) error {
	switch c.mode.Load() {
	case graderDown:
		return errGraderRedisDown
	case graderSlow:
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(3 * time.Second):
			return errors.New("read tcp 10.0.3.17:6379: i/o timeout")
		}
	}
	return nil
}

func (c *graderCache) Get(ctx context.Context, k string) ([]byte, error) { return c.get(ctx, k, 0) }
func (c *graderCache) GetEx(ctx context.Context, k string, ttl time.Duration) ([]byte, error) {
	return c.get(ctx, k, ttl)
}

func (c *graderCache) get(ctx context.Context, k string, ttl time.Duration) ([]byte, error) {
	if err := c.fault(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.clock.Now().Before(e.expires) {
		delete(c.entries, k)
		return nil, ErrNotFound
	}
	if ttl > 0 {
		e.expires = c.clock.Now().Add(ttl)
		c.entries[k] = e
	}
	return append([]byte(nil), e.v...), nil
}

func (c *graderCache) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if err := c.fault(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ttl <= 0 {
		ttl = 100 * 365 * 24 * time.Hour // no expiry
	}
	c.entries[k] = graderEntry{v: append([]byte(nil), v...), expires: c.clock.Now().Add(ttl)}
	return nil
}

func (c *graderCache) Delete(ctx context.Context, k string) error {
	if err := c.fault(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
	return nil
}

func (c *graderCache) Flush() {
	c.mu.Lock()
	c.entries = map[string]graderEntry{}
	c.mu.Unlock()
}

// ---- helpers -------------------------------------------------------------------------------

func graderProduct(i int) Product {
	return Product{SKU: fmt.Sprintf("KJ-%04d-M", i), Country: "GB", Title: fmt.Sprintf("Jacket %d", i),
		Description: "Waterproof shell.", PriceMinor: 10000 + int64(i), Currency: "GBP",
		PriceVersion: 1, Stock: 100 + i}
}

func graderService(db *graderDB, cache *graderCache, clock *graderClock) *Service {
	return NewService(db, cache, clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func graderCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// settle lets goroutines started by the service (background refreshes) run.
func settle() {
	for i := 0; i < 3; i++ {
		runtime.Gosched()
	}
	time.Sleep(200 * time.Microsecond)
}

func waitFor(cond func() bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return cond()
}

// ---- stampedes -----------------------------------------------------------------------------

func TestGraderStampedeOneLoad(t *testing.T) {
	clock := newGraderClock()
	p := graderProduct(1)
	db := newGraderDB(clock, 500*time.Millisecond, p)
	gate := db.Hold(p.SKU, p.Country)
	s := graderService(db, newGraderCache(clock), clock)
	ctx := graderCtx(t)

	const readers = 50
	var wg sync.WaitGroup
	var failed, wrong atomic.Int64
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.GetProduct(ctx, p.SKU, p.Country)
			if err != nil {
				failed.Add(1)
			} else if got.PriceMinor != p.PriceMinor {
				wrong.Add(1)
			}
		}()
	}
	if !waitFor(func() bool { return db.Loads(p.SKU, p.Country) > 0 }, 5*time.Second) {
		close(gate)
		wg.Wait()
		t.Fatalf("no database load started within 5 s of %d concurrent misses", readers)
	}
	time.Sleep(300 * time.Millisecond) // every reader is now waiting
	loadsWhileHeld := db.Loads(p.SKU, p.Country)
	close(gate)
	wg.Wait()
	if loadsWhileHeld != 1 {
		t.Errorf("%d concurrent misses on one key started %d database loads while the first was in flight (expected 1)",
			readers, loadsWhileHeld)
	}
	if n := db.Loads(p.SKU, p.Country); n > 1 && loadsWhileHeld == 1 {
		t.Errorf("%d concurrent misses caused %d database loads in total (expected 1)", readers, n)
	}
	if failed.Load() > 0 || wrong.Load() > 0 {
		t.Errorf("of %d concurrent readers %d got an error and %d a wrong product", readers, failed.Load(), wrong.Load())
	}
}

func TestGraderStampedeKeysIndependent(t *testing.T) {
	clock := newGraderClock()
	a, b := graderProduct(1), graderProduct(2)
	db := newGraderDB(clock, 0, a, b)
	gate := db.Hold(a.SKU, a.Country)
	defer close(gate)
	s := graderService(db, newGraderCache(clock), clock)
	ctx := graderCtx(t)

	go s.GetProduct(ctx, a.SKU, a.Country)
	waitFor(func() bool { return db.Loads(a.SKU, a.Country) > 0 }, 2*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := s.GetProduct(ctx, b.SKU, b.Country)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("reading product B while a load of A was in flight failed: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Errorf("reading product B waited for an unrelated in-flight load of product A (coalescing is not per key)")
	}
}

func TestGraderWaiterCancellation(t *testing.T) {
	clock := newGraderClock()
	p := graderProduct(1)
	db := newGraderDB(clock, 0, p)
	gate := db.Hold(p.SKU, p.Country)
	s := graderService(db, newGraderCache(clock), clock)
	ctx := graderCtx(t)

	first := make(chan error, 1)
	go func() {
		_, err := s.GetProduct(ctx, p.SKU, p.Country)
		first <- err
	}()
	waitFor(func() bool { return db.Loads(p.SKU, p.Country) > 0 }, 2*time.Second)
	wctx, cancel := context.WithCancel(ctx)
	waiter := make(chan error, 1)
	go func() {
		_, err := s.GetProduct(wctx, p.SKU, p.Country)
		waiter <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-waiter:
		if err == nil {
			t.Errorf("a reader whose context was cancelled while waiting for a shared load returned no error")
		}
	case <-time.After(time.Second):
		t.Errorf("a reader whose context was cancelled was still waiting for the shared load 1 s later")
	}
	close(gate)
	select {
	case err := <-first:
		if err != nil {
			t.Errorf("the reader that started the load failed after another reader was cancelled: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("the reader that started the load never returned")
	}
}

// ---- expiry jitter -------------------------------------------------------------------------

func TestGraderExpiryJitter(t *testing.T) {
	clock := newGraderClock()
	const n = 40
	var products []Product
	for i := 0; i < n; i++ {
		products = append(products, graderProduct(i))
	}
	db := newGraderDB(clock, 0, products...)
	s := graderService(db, newGraderCache(clock), clock)
	ctx := graderCtx(t)
	for _, p := range products {
		if _, err := s.GetProduct(ctx, p.SKU, p.Country); err != nil {
			t.Fatalf("warming %s: %v", p.SKU, err)
		}
	}
	settle()
	base := map[string]int{}
	for _, p := range products {
		base[p.SKU] = db.Loads(p.SKU, p.Country)
	}
	// All 40 popular keys were filled at the same instant; read each of them every 200 ms and note
	// when each first goes back to the database.
	const step = 200 * time.Millisecond
	reloadedAt := map[string]time.Duration{}
	for elapsed := step; elapsed <= 11*time.Minute && len(reloadedAt) < n; elapsed += step {
		clock.Advance(step)
		for _, p := range products {
			if _, ok := reloadedAt[p.SKU]; ok {
				continue
			}
			if _, err := s.GetProduct(ctx, p.SKU, p.Country); err != nil {
				t.Fatalf("%v: reading %s: %v", elapsed, p.SKU, err)
			}
		}
		runtime.Gosched()
		for _, p := range products {
			if _, ok := reloadedAt[p.SKU]; !ok && db.Loads(p.SKU, p.Country) > base[p.SKU] {
				reloadedAt[p.SKU] = elapsed
			}
		}
	}
	if len(reloadedAt) < n {
		t.Fatalf("%d of %d keys read every 200 ms were never reloaded from the database within 11 minutes (titles may be 10 minutes stale at most)",
			n-len(reloadedAt), n)
	}
	groups := map[time.Duration]int{}
	var times []time.Duration
	for _, at := range reloadedAt {
		groups[at]++
		times = append(times, at)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	largest := 0
	for _, c := range groups {
		largest = max(largest, c)
	}
	spread := times[len(times)-1] - times[0]
	if largest > n/2 || spread < 2*step {
		t.Errorf("expiries line up: of %d keys filled at the same instant, %d were reloaded in the same 200 ms step (first reload after %v, last after %v)",
			n, largest, times[0], times[len(times)-1])
	}
}

// ---- freshness -----------------------------------------------------------------------------

// readEvery reads sku on every service each tick until horizon and reports the first read at or
// after deadline whose value does not satisfy ok.
func readEvery(t *testing.T, clock *graderClock, services []*Service, p Product, tick, deadline, horizon time.Duration,
	ok func(Product) bool) (bad time.Duration, got Product, found bool) {
	ctx := graderCtx(t)
	for elapsed := time.Duration(0); elapsed <= horizon; elapsed += tick {
		for _, s := range services {
			q, err := s.GetProduct(ctx, p.SKU, p.Country)
			if err != nil {
				t.Fatalf("%v after the change a read failed: %v", elapsed, err)
			}
			if elapsed >= deadline && !ok(q) {
				return elapsed, q, true
			}
		}
		settle()
		clock.Advance(tick)
	}
	return 0, Product{}, false
}

func TestGraderPriceFreshAfterEvent(t *testing.T) {
	clock := newGraderClock()
	p := graderProduct(7)
	db := newGraderDB(clock, 800*time.Millisecond, p)
	cache := newGraderCache(clock)
	a, b := graderService(db, cache, clock), graderService(db, cache, clock)
	ctx := graderCtx(t)
	for _, s := range []*Service{a, b} {
		if _, err := s.GetProduct(ctx, p.SKU, p.Country); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(3 * time.Second)
	// The pricing back office commits a new price on the primary; both instances keep reading.
	newP := db.change(p.SKU, p.Country, func(q *Product) { q.PriceMinor = 8900; q.PriceVersion = 2 })
	for _, s := range []*Service{a, b} {
		s.GetProduct(ctx, p.SKU, p.Country)
	}
	clock.Advance(200 * time.Millisecond)
	ev := PriceChanged{SKU: p.SKU, Country: p.Country, PriceMinor: 8900, Currency: "GBP", PriceVersion: 2,
		ChangedAt: newP.UpdatedAt}
	for _, s := range []*Service{a, b} {
		if err := s.OnPriceChanged(ctx, ev); err != nil {
			t.Fatalf("OnPriceChanged: %v", err)
		}
	}
	at, q, bad := readEvery(t, clock, []*Service{a, b}, p, 100*time.Millisecond, 4800*time.Millisecond, 3*time.Minute,
		func(q Product) bool { return q.PriceMinor == 8900 })
	if bad {
		t.Errorf("a price committed at t=0 (event delivered to every instance at 200 ms, replicas 800 ms behind) was still shown as %d instead of 8900 at %v",
			q.PriceMinor, at+200*time.Millisecond)
	}
}

func TestGraderNoStaleForeverAfterUpdate(t *testing.T) {
	clock := newGraderClock()
	p := graderProduct(8)
	db := newGraderDB(clock, 800*time.Millisecond, p)
	cache := newGraderCache(clock)
	a, b := graderService(db, cache, clock), graderService(db, cache, clock)
	ctx := graderCtx(t)
	for _, s := range []*Service{a, b} {
		if _, err := s.GetProduct(ctx, p.SKU, p.Country); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Second)
	changedAt := clock.Now()
	// INC-419: instance A takes a price update; instance B serves a page at once, from a replica
	// that has not seen the write yet; then the page is popular (a read every second).
	if err := a.UpdatePrice(ctx, p.SKU, p.Country, 7900); err != nil {
		t.Fatalf("UpdatePrice: %v", err)
	}
	if _, err := b.GetProduct(ctx, p.SKU, p.Country); err != nil {
		t.Fatal(err)
	}
	clock.Advance(200 * time.Millisecond)
	ev := PriceChanged{SKU: p.SKU, Country: p.Country, PriceMinor: 7900, Currency: "GBP", PriceVersion: 2,
		ChangedAt: changedAt}
	for _, s := range []*Service{a, b} {
		if err := s.OnPriceChanged(ctx, ev); err != nil {
			t.Fatalf("OnPriceChanged: %v", err)
		}
	}
	at, q, bad := readEvery(t, clock, []*Service{b, a}, p, time.Second, 5*time.Second, 20*time.Minute,
		func(q Product) bool { return q.PriceMinor == 7900 })
	if bad {
		t.Errorf("after UpdatePrice on one instance and a read on another before the replica caught up, the old price %d was still shown %v later (expected 7900 within 5 s)",
			q.PriceMinor, at+200*time.Millisecond)
	}
}

func TestGraderEventsOutOfOrder(t *testing.T) {
	clock := newGraderClock()
	p := graderProduct(9)
	db := newGraderDB(clock, 800*time.Millisecond, p)
	s := graderService(db, newGraderCache(clock), clock)
	ctx := graderCtx(t)
	if _, err := s.GetProduct(ctx, p.SKU, p.Country); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	db.change(p.SKU, p.Country, func(q *Product) { q.PriceMinor = 9500; q.PriceVersion = 2 })
	db.change(p.SKU, p.Country, func(q *Product) { q.PriceMinor = 9100; q.PriceVersion = 3 })
	clock.Advance(200 * time.Millisecond)
	ev := func(v, price int64) PriceChanged {
		return PriceChanged{SKU: p.SKU, Country: p.Country, PriceMinor: price, Currency: "GBP", PriceVersion: v,
			ChangedAt: clock.Now()}
	}
	// At-least-once delivery: version 2, version 3, then version 2 again (redelivered after a
	// rebalance).
	for _, e := range []PriceChanged{ev(2, 9500), ev(3, 9100), ev(2, 9500)} {
		if err := s.OnPriceChanged(ctx, e); err != nil {
			t.Fatalf("OnPriceChanged(version %d): %v", e.PriceVersion, err)
		}
		s.GetProduct(ctx, p.SKU, p.Country)
	}
	at, q, bad := readEvery(t, clock, []*Service{s}, p, 500*time.Millisecond, 4800*time.Millisecond, 2*time.Minute,
		func(q Product) bool { return q.PriceMinor == 9100 })
	if bad {
		t.Errorf("after events for versions 2, 3 and a redelivered 2, the page showed %d (version %d) at %v instead of version 3's 9100",
			q.PriceMinor, q.PriceVersion, at+200*time.Millisecond)
	}
}

func TestGraderStockFreshness(t *testing.T) {
	clock := newGraderClock()
	p := graderProduct(10)
	db := newGraderDB(clock, 800*time.Millisecond, p)
	cache := newGraderCache(clock)
	a, b := graderService(db, cache, clock), graderService(db, cache, clock)
	ctx := graderCtx(t)
	for _, s := range []*Service{a, b} {
		s.GetProduct(ctx, p.SKU, p.Country)
	}
	clock.Advance(time.Second)
	db.change(p.SKU, p.Country, func(q *Product) { q.Stock = 3 })
	// No event exists for stock: it may be 30 s stale (plus the replica's lag).
	at, q, bad := readEvery(t, clock, []*Service{a, b}, p, 500*time.Millisecond, 31*time.Second, 3*time.Minute,
		func(q Product) bool { return q.Stock == 3 })
	if bad {
		t.Errorf("a stock change was still not shown %v later (stock %d, expected 3 within 30 s plus replica lag)", at, q.Stock)
	}
}

func TestGraderTitleFreshness(t *testing.T) {
	clock := newGraderClock()
	p := graderProduct(11)
	db := newGraderDB(clock, 800*time.Millisecond, p)
	s := graderService(db, newGraderCache(clock), clock)
	ctx := graderCtx(t)
	s.GetProduct(ctx, p.SKU, p.Country)
	clock.Advance(time.Second)
	db.change(p.SKU, p.Country, func(q *Product) { q.Title = "Kestrel Ridge Jacket (2025)" })
	at, q, bad := readEvery(t, clock, []*Service{s}, p, 5*time.Second, 10*time.Minute+5*time.Second, 15*time.Minute,
		func(q Product) bool { return q.Title == "Kestrel Ridge Jacket (2025)" })
	if bad {
		t.Errorf("a title change was still not shown %v later (title %q, expected within 10 minutes)", at, q.Title)
	}
}

// ---- failures ------------------------------------------------------------------------------

func TestGraderRedisDownServes(t *testing.T) {
	clock := newGraderClock()
	warm, cold := graderProduct(20), graderProduct(21)
	db := newGraderDB(clock, 0, warm, cold)
	cache := newGraderCache(clock)
	s := graderService(db, cache, clock)
	ctx := graderCtx(t)
	if _, err := s.GetProduct(ctx, warm.SKU, warm.Country); err != nil {
		t.Fatal(err)
	}
	cache.mode.Store(graderDown)
	clock.Advance(2 * time.Second)
	for _, p := range []Product{warm, cold} {
		got, err := s.GetProduct(ctx, p.SKU, p.Country)
		if err != nil {
			t.Errorf("with Redis refusing connections, reading %s failed: %v", p.SKU, err)
		} else if got.PriceMinor != p.PriceMinor {
			t.Errorf("with Redis refusing connections, %s came back with price %d (expected %d)", p.SKU, got.PriceMinor, p.PriceMinor)
		}
	}
}

func TestGraderRedisDownBoundedLoad(t *testing.T) {
	clock := newGraderClock()
	hot := graderProduct(30)
	db := newGraderDB(clock, 0, hot)
	cache := newGraderCache(clock)
	s := graderService(db, cache, clock)
	ctx := graderCtx(t)
	s.GetProduct(ctx, hot.SKU, hot.Country)
	before := db.Loads(hot.SKU, hot.Country)
	cache.mode.Store(graderDown)
	// 10 rounds of 50 concurrent reads of the hot key, 100 ms apart: 500 reads in one second.
	var errs atomic.Int64
	for round := 0; round < 10; round++ {
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.GetProduct(ctx, hot.SKU, hot.Country); err != nil {
					errs.Add(1)
				}
			}()
		}
		wg.Wait()
		clock.Advance(100 * time.Millisecond)
	}
	loads := db.Loads(hot.SKU, hot.Country) - before
	if loads > 5 {
		t.Errorf("with Redis down, 500 reads of one hot key within one second caused %d database loads on one instance (at most 5 expected: the replicas take ~3,000 reads/s for all 24 instances)", loads)
	}
	if errs.Load() > 0 {
		t.Errorf("with Redis down, %d of 500 reads of a hot key failed", errs.Load())
	}
}

func TestGraderFailoverEmptyShard(t *testing.T) {
	clock := newGraderClock()
	var products []Product
	for i := 0; i < 20; i++ {
		products = append(products, graderProduct(40+i))
	}
	db := newGraderDB(clock, 0, products...)
	cache := newGraderCache(clock)
	s := graderService(db, cache, clock)
	ctx := graderCtx(t)
	for _, p := range products {
		s.GetProduct(ctx, p.SKU, p.Country)
	}
	db.delay.Store(int64(20 * time.Millisecond)) // replicas under load
	before := db.total.Load()
	// The shard fails over and comes back empty; 10 concurrent readers per product follow.
	cache.Flush()
	clock.Advance(500 * time.Millisecond)
	var wg sync.WaitGroup
	var errs atomic.Int64
	for _, p := range products {
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func(p Product) {
				defer wg.Done()
				if _, err := s.GetProduct(ctx, p.SKU, p.Country); err != nil {
					errs.Add(1)
				}
			}(p)
		}
	}
	wg.Wait()
	loads := db.total.Load() - before
	if loads > int64(len(products)) {
		t.Errorf("after the shard came back empty, 200 concurrent reads of 20 products caused %d database loads (at most one per product expected)", loads)
	}
	if errs.Load() > 0 {
		t.Errorf("after the shard came back empty, %d of 200 reads failed", errs.Load())
	}
}

func TestGraderRedisSlow(t *testing.T) {
	clock := newGraderClock()
	p := graderProduct(60)
	db := newGraderDB(clock, 0, p)
	cache := newGraderCache(clock)
	s := graderService(db, cache, clock)
	cache.mode.Store(graderSlow)
	ctx := graderCtx(t)
	started := time.Now()
	got, err := s.GetProduct(ctx, p.SKU, p.Country)
	took := time.Since(started)
	if err != nil {
		t.Errorf("with Redis hanging, a product read failed after %v: %v", took.Round(time.Millisecond), err)
	} else if got.PriceMinor != p.PriceMinor {
		t.Errorf("with Redis hanging, the product came back with price %d (expected %d)", got.PriceMinor, p.PriceMinor)
	}
	if took > time.Second {
		t.Errorf("with Redis hanging, a product read took %v (a tight Redis timeout should keep it well under 1 s)", took.Round(time.Millisecond))
	}
}
