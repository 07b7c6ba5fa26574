-- Deterministic test data for schema.sql, shaped like stats.md at a much smaller size.
--
--   psql -X -v ON_ERROR_STOP=1 -v scale=1 -f seed.sql      (scale defaults to 1)
--
-- At scale 1: 1,000 merchants, 20,000 customers, 10,000 products, 200,000 orders, ~600,000 order
-- lines, in a few seconds. Every value is a hash of the row's number (and :salt), so a given
-- scale and salt always produce the same rows; dates are relative to now().
--
-- Shapes that matter for the statements in slow_queries.sql:
--   * customer 1 is the reseller: 2,000 orders per unit of scale, placed in bulk batches of five
--     that share one created_at; other customers have ~10 orders each;
--   * merchant 1 is the large merchant: 30 products per unit of scale where others have ~10, and
--     like merchant 7731 in production ~0.3 % of all order lines;
--   * order statuses follow stats.md (78 % delivered, ~10 % cancelled, ...), dates span two years;
--   * a few customers differ from another only by the case of their email, as in production;
--   * every order has one to five lines, and total_amount is the sum of its lines.
-- Foreign keys are not checked while loading (session_replication_role = replica): the generator
-- only produces references to rows it creates. Run it once, on an empty database from schema.sql.

\if :{?scale}
\else
  \set scale 1
\endif
\if :{?salt}
\else
  \set salt 0
\endif

SET session_replication_role = replica;
-- No autovacuum while loading: its ANALYZE would hold back the VACUUM at the end, which must mark
-- every page all-visible (index-only scans) as on a long-lived production table.
ALTER TABLE merchants SET (autovacuum_enabled = off);
ALTER TABLE customers SET (autovacuum_enabled = off);
ALTER TABLE products SET (autovacuum_enabled = off);
ALTER TABLE orders SET (autovacuum_enabled = off);
ALTER TABLE order_items SET (autovacuum_enabled = off);
SET synchronous_commit = off;
SET jit = off;
SET work_mem = '64MB';

CREATE TEMP TABLE seed_params AS
SELECT :scale::int                 AS scale,
       :salt::bigint               AS salt,
       1000  * :scale::int         AS n_merchants,
       20000 * :scale::int         AS n_customers,
       10000 * :scale::int         AS n_products,
       30    * :scale::int         AS n_big_merchant_products,
       200000 * :scale::int        AS n_orders,
       2000  * :scale::int         AS n_reseller_orders,
       date_trunc('second', now()) AS t0;

-- h(x, k): a deterministic non-negative hash of row number x for purpose k.
CREATE FUNCTION pg_temp.h(x bigint, k int) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT abs(hashint8extended(x * 64 + k, 0)) $$;
-- A product's list price, in pounds with whole pence.
CREATE FUNCTION pg_temp.price(product bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (99 + pg_temp.h(product, 1) % 19900) / 100.0::double precision $$;

INSERT INTO merchants (id, name, plan, created_at)
OVERRIDING SYSTEM VALUE
SELECT i,
       'Merchant ' || i,
       CASE WHEN i = 1 OR pg_temp.h(i + p.salt, 2) % 10 = 0 THEN 'pro' ELSE 'standard' END,
       p.t0 - make_interval(days => (1000 + pg_temp.h(i + p.salt, 3) % 1500)::int)
FROM seed_params p, generate_series(1, p.n_merchants) i;

INSERT INTO customers (id, email, full_name, country_code, created_at)
OVERRIDING SYSTEM VALUE
SELECT i,
       CASE WHEN i % 7 = 0 THEN initcap(n.first) || '.' || initcap(n.last) || i || '@' || initcap(n.domain)
            ELSE n.first || '.' || n.last || i || '@' || n.domain END,
       initcap(n.first) || ' ' || initcap(n.last),
       (ARRAY['GB','GB','GB','GB','IE','FR','DE','NL'])[1 + pg_temp.h(i + p.salt, 4) % 8],
       p.t0 - make_interval(days => (800 + pg_temp.h(i + p.salt, 5) % 900)::int)
FROM seed_params p, generate_series(1, p.n_customers) i,
LATERAL (SELECT (ARRAY['ann','ben','chloe','dev','ema','femi','grace','hugo','isla','jack','kiran','lena'])
                    [1 + pg_temp.h(i + p.salt, 6) % 12] AS first,
                (ARRAY['okafor','smith','jones','patel','nowak','murphy','evans','khan','silva','brown'])
                    [1 + pg_temp.h(i + p.salt, 7) % 10] AS last,
                (ARRAY['example.com','example.net','example.org','mail.test'])
                    [1 + pg_temp.h(i + p.salt, 8) % 4] AS domain) n;

-- Customers who signed up twice with the same address in a different case.
INSERT INTO customers (id, email, full_name, country_code, created_at)
OVERRIDING SYSTEM VALUE
SELECT p.n_customers + row_number() OVER (ORDER BY c.id), upper(c.email), c.full_name, c.country_code,
       c.created_at + interval '400 days'
FROM seed_params p
JOIN customers c ON c.id % 2500 = 17;

INSERT INTO products (id, merchant_id, sku, title, unit_price, active, created_at)
OVERRIDING SYSTEM VALUE
SELECT i,
       CASE WHEN i <= p.n_big_merchant_products THEN 1
            ELSE 2 + pg_temp.h(i + p.salt, 9) % (p.n_merchants - 1) END,
       'SKU-' || lpad(i::text, 8, '0'),
       (ARRAY['Oak','Linen','Stoneware','Brass','Wool','Rattan','Glass','Copper'])[1 + pg_temp.h(i, 10) % 8]
         || ' ' ||
       (ARRAY['lamp','throw','mug','vase','cushion','bowl','mirror','candle','rug','planter'])[1 + pg_temp.h(i, 11) % 10],
       pg_temp.price(i),
       pg_temp.h(i + p.salt, 12) % 20 <> 0,
       p.t0 - make_interval(days => (900 + pg_temp.h(i + p.salt, 13) % 300)::int)
FROM seed_params p, generate_series(1, p.n_products) i;

-- Order i's lines 1..n (n from 1 to 5): a product and a quantity each, at the product's price.
CREATE TEMP TABLE seed_lines AS
SELECT i AS order_id, j AS line_no,
       1 + pg_temp.h(i * 8 + j + p.salt, 14) % p.n_products AS product_id,
       CASE WHEN pg_temp.h(i * 8 + j, 15) % 10 < 8 THEN 1 ELSE 2 + pg_temp.h(i * 8 + j, 16) % 3 END AS quantity
FROM seed_params p, generate_series(1, p.n_orders) i,
     generate_series(1, (1 + pg_temp.h(i + p.salt, 17) % 5)::int) j;

INSERT INTO orders (id, customer_id, status, total_amount, currency, shipping_address, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT i, o.customer_id, o.status, t.total, o.currency,
       jsonb_build_object('line1', (1 + pg_temp.h(o.customer_id, 18) % 240) || ' ' ||
                                   (ARRAY['High Street','Station Road','Church Lane','Mill Road','Park Avenue'])[1 + pg_temp.h(o.customer_id, 19) % 5],
                          'city', (ARRAY['London','Leeds','Bristol','Glasgow','Cardiff','Norwich','York','Dublin'])[1 + pg_temp.h(o.customer_id, 20) % 8],
                          'postcode', chr(65 + (pg_temp.h(o.customer_id, 21) % 26)::int) || chr(65 + (pg_temp.h(o.customer_id, 22) % 26)::int)
                                      || (1 + pg_temp.h(o.customer_id, 23) % 20) || ' ' || (pg_temp.h(o.customer_id, 24) % 10)
                                      || chr(65 + (pg_temp.h(o.customer_id, 25) % 26)::int) || chr(65 + (pg_temp.h(o.customer_id, 26) % 26)::int)),
       o.created_at, o.created_at
FROM seed_params p, generate_series(1, p.n_orders) i,
LATERAL (SELECT CASE WHEN i <= p.n_reseller_orders THEN 1
                     ELSE 2 + pg_temp.h(i + p.salt, 27) % (p.n_customers - 1) END AS customer_id,
                CASE WHEN i <= p.n_reseller_orders
                     -- bulk batches of five orders sharing one timestamp, spread over two years
                     THEN p.t0 - make_interval(secs => ((i - 1) / 5 + 1) * (63072000 / (p.n_reseller_orders / 5)))
                     ELSE p.t0 - make_interval(secs => (pg_temp.h(i + p.salt, 28) % 63072000000000) / 1e6)
                END AS created_at,
                CASE WHEN s < 782 THEN 'delivered' WHEN s < 878 THEN 'cancelled' WHEN s < 936 THEN 'refunded'
                     WHEN s < 977 THEN 'shipped' WHEN s < 997 THEN 'paid' ELSE 'pending' END AS status,
                CASE WHEN pg_temp.h(i, 30) % 50 = 0 THEN 'EUR' ELSE 'GBP' END AS currency
         FROM (SELECT pg_temp.h(i + p.salt, 29) % 1000 AS s) st) o,
     (SELECT order_id, sum(quantity * pg_temp.price(product_id)) AS total
      FROM seed_lines GROUP BY order_id) t
WHERE t.order_id = i
ORDER BY i;

INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price)
SELECT order_id, line_no, product_id, quantity, pg_temp.price(product_id)
FROM seed_lines
ORDER BY order_id, line_no;

-- From here commits wait for their WAL flush: VACUUM below marks a page all-visible only once
-- the commits that loaded it are flushed (this DROP's commit flushes them all).
SET synchronous_commit = on;
DROP TABLE seed_lines;

-- New rows get ids after the seeded ones.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['merchants', 'customers', 'products', 'orders'] LOOP
        EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, ''id''), (SELECT max(id) FROM %I))', t, t);
    END LOOP;
END
$$;

RESET session_replication_role;
VACUUM (ANALYZE) merchants, customers, products, orders, order_items;
ALTER TABLE merchants RESET (autovacuum_enabled);
ALTER TABLE customers RESET (autovacuum_enabled);
ALTER TABLE products RESET (autovacuum_enabled);
ALTER TABLE orders RESET (autovacuum_enabled);
ALTER TABLE order_items RESET (autovacuum_enabled);
