-- queries.sql: the statements the application runs, as prepared statements. Keep each statement's
-- name, parameter types and output columns; rewrite its body.
--
--   psql -X -f queries.sql, then e.g.  EXECUTE my_orders(42, NULL, NULL);

-- #1 "My orders", one page of 20: the customer's orders except cancelled ones, newest first
-- (created_at DESC, then id DESC), each with its number of lines.
-- $1 customer id; $2, $3 the created_at and id of the last order of the previous page, or
-- NULL, NULL for the first page.
--
-- Keyset paging: the row comparison matches orders_customer_created_idx, so every page is a
-- backward index scan starting at the cursor; lines are counted for the 20 orders shown only.
-- Orders without lines stay excluded, as the original inner join excluded them.
PREPARE my_orders(bigint, timestamptz, bigint) AS
SELECT o.id, o.created_at, o.status, o.total_amount, o.currency, lines.item_count
FROM orders o
CROSS JOIN LATERAL (
    SELECT count(*) AS item_count FROM order_items oi WHERE oi.order_id = o.id
) lines
WHERE o.customer_id = $1
  AND o.status <> 'cancelled'
  AND ($2 IS NULL OR (o.created_at, o.id) < ($2, $3))
  AND lines.item_count > 0
ORDER BY o.created_at DESC, o.id DESC
LIMIT 20;

-- #2 Merchant revenue dashboard: revenue and order count per day (UK time), last 30 days.
-- $1 merchant id.
--
-- Unchanged text: with order_items_product_idx the plan becomes products_merchant_sku_key ->
-- index-only scan of the merchant's lines -> orders_pkey, instead of reading every order line.
PREPARE merchant_revenue(bigint) AS
SELECT date_trunc('day', o.created_at AT TIME ZONE 'Europe/London') AS day,
       sum(oi.quantity * oi.unit_price)                             AS revenue,
       count(DISTINCT o.id)                                         AS orders
FROM order_items oi
JOIN products p ON p.id = oi.product_id
JOIN orders o   ON o.id = oi.order_id
WHERE p.merchant_id = $1
  AND o.status IN ('paid', 'shipped', 'delivered')
  AND o.created_at >= now() - interval '30 days'
GROUP BY 1
ORDER BY 1;

-- #3 Login and password reset: emails are matched case-insensitively.
-- $1 the email as typed.
--
-- Unchanged text: lower(email) = lower($1) is now one probe of customers_lower_email_idx.
PREPARE customer_by_email(text) AS
SELECT id, full_name, country_code
FROM customers
WHERE lower(email) = lower($1);
