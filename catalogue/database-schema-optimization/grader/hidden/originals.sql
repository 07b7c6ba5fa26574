-- The original statements (slow_queries.sql), prepared under names the candidate does not use.
-- clarity_orig_my_orders_all: #1 without LIMIT/OFFSET, every page at once, ties ordered by id DESC
-- (the page order queries.sql promises); clarity_orig_my_orders_offset: #1 exactly as it runs today.
PREPARE clarity_orig_my_orders_all(bigint) AS
SELECT *
FROM (
    SELECT o.id, o.created_at, o.status, o.total_amount, o.currency, count(*) AS item_count
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.id
    WHERE o.customer_id = $1
      AND o.status <> 'cancelled'
    GROUP BY o.id
) history
ORDER BY history.created_at DESC, history.id DESC;

PREPARE clarity_orig_my_orders_offset(bigint, bigint) AS
SELECT o.id, o.created_at, o.status, o.total_amount, o.currency, count(*) AS item_count
FROM orders o
JOIN order_items oi ON oi.order_id = o.id
WHERE o.customer_id = $1
  AND o.status <> 'cancelled'
GROUP BY o.id
ORDER BY o.created_at DESC
LIMIT 20 OFFSET $2;

PREPARE clarity_orig_merchant_revenue(bigint) AS
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

PREPARE clarity_orig_customer_by_email(text) AS
SELECT id, full_name, country_code
FROM customers
WHERE lower(email) = lower($1);
