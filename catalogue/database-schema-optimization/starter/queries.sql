-- queries.sql: the statements the application runs, as prepared statements. Keep each statement's
-- name, parameter types and output columns; rewrite its body.
--
--   psql -X -f queries.sql, then e.g.  EXECUTE my_orders(42, NULL, NULL);

-- #1 "My orders", one page of 20: the customer's orders except cancelled ones, newest first
-- (created_at DESC, then id DESC), each with its number of lines.
-- $1 customer id; $2, $3 the created_at and id of the last order of the previous page, or
-- NULL, NULL for the first page.
PREPARE my_orders(bigint, timestamptz, bigint) AS
SELECT *
FROM (
    SELECT o.id, o.created_at, o.status, o.total_amount, o.currency, count(*) AS item_count
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.id
    WHERE o.customer_id = $1
      AND o.status <> 'cancelled'
    GROUP BY o.id
) history
WHERE $2 IS NULL OR (history.created_at, history.id) < ($2, $3)
ORDER BY history.created_at DESC, history.id DESC
LIMIT 20;

-- #2 Merchant revenue dashboard: revenue and order count per day (UK time), last 30 days.
-- $1 merchant id.
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
PREPARE customer_by_email(text) AS
SELECT id, full_name, country_code
FROM customers
WHERE lower(email) = lower($1);
