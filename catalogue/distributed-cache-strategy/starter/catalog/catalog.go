// Package catalog serves product data to the storefront.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrNotFound is returned by Database for an unknown product and by Cache on a miss.
var ErrNotFound = errors.New("not found")

// Product is what a product page shows, for one country.
type Product struct {
	SKU          string    `json:"sku"`
	Country      string    `json:"country"`
	Title        string    `json:"title"`
	Description  string    `json:"description"`
	PriceMinor   int64     `json:"price_minor"`
	Currency     string    `json:"currency"`
	PriceVersion int64     `json:"price_version"` // incremented by every price change
	Stock        int       `json:"stock"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Database is the PostgreSQL access layer. GetProduct reads from a replica that lags the primary
// by 50-800 ms; UpdatePrice writes to the primary.
type Database interface {
	GetProduct(ctx context.Context, sku, country string) (Product, error)
	UpdatePrice(ctx context.Context, sku, country string, priceMinor int64) (newVersion int64, err error)
}

// Cache wraps the Redis Cluster client. Keys are distributed over shards by hash slot.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, error)
	// GetEx returns the value and resets its TTL to ttl.
	GetEx(ctx context.Context, key string, ttl time.Duration) ([]byte, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) error
}

// PriceChanged is the payload of the pricing.price_changed.v1 topic (see docs/traffic.md).
type PriceChanged struct {
	SKU          string    `json:"sku"`
	Country      string    `json:"country"`
	PriceMinor   int64     `json:"price_minor"`
	Currency     string    `json:"currency"`
	PriceVersion int64     `json:"price_version"`
	ChangedAt    time.Time `json:"changed_at"`
}

// Clock is injected so that tests control time.
type Clock interface{ Now() time.Time }

const productTTL = 10 * time.Minute

// Service is the current implementation: cache-aside over Redis.
type Service struct {
	db    Database
	cache Cache
	clock Clock
	log   *slog.Logger
}

func NewService(db Database, cache Cache, clock Clock, log *slog.Logger) *Service {
	return &Service{db: db, cache: cache, clock: clock, log: log}
}

func key(sku, country string) string { return fmt.Sprintf("product:%s:%s", country, sku) }

// GetProduct serves the product page.
func (s *Service) GetProduct(ctx context.Context, sku, country string) (Product, error) {
	k := key(sku, country)
	// Keep popular products warm: every hit pushes the expiry back.
	raw, err := s.cache.GetEx(ctx, k, productTTL)
	switch {
	case err == nil:
		var p Product
		if err := json.Unmarshal(raw, &p); err == nil {
			return p, nil
		}
		s.log.Warn("corrupt cache entry", "key", k)
	case !errors.Is(err, ErrNotFound):
		return Product{}, fmt.Errorf("cache: %w", err)
	}

	p, err := s.db.GetProduct(ctx, sku, country)
	if err != nil {
		return Product{}, err
	}
	raw, _ = json.Marshal(p)
	if err := s.cache.Set(ctx, k, raw, productTTL); err != nil {
		s.log.Warn("cache set failed", "key", k, "err", err)
	}
	return p, nil
}

// UpdatePrice is called by the pricing back office.
func (s *Service) UpdatePrice(ctx context.Context, sku, country string, priceMinor int64) error {
	// Invalidate first so nobody reads the old price from the cache.
	if err := s.cache.Delete(ctx, key(sku, country)); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if _, err := s.db.UpdatePrice(ctx, sku, country, priceMinor); err != nil {
		return err
	}
	return nil
}

// OnPriceChanged is wired to the price_changed consumer but does nothing yet.
func (s *Service) OnPriceChanged(ctx context.Context, ev PriceChanged) error {
	return nil
}
