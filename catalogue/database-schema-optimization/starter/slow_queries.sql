-- Top statements by total execution time, pg_stat_statements, 7 days to 2 December (primary).
--
--   #   calls       mean      total     caller
--   1   1,310,422   1,184 ms  431 h     storefront: "My orders" page
--   2      61,882   9,870 ms  170 h     merchant-portal: revenue dashboard
--   3   3,402,117     212 ms  200 h     auth: login and password reset lookup

-- #1 "My orders". $2 = (page - 1) * 20; the UI shows "page N of M" and next/previous links.
SELECT o.id, o.created_at, o.status, o.total_amount, o.currency, count(*) AS item_count
FROM orders o
JOIN order_items oi ON oi.order_id = o.id
WHERE o.customer_id = $1
  AND o.status <> 'cancelled'
GROUP BY o.id
ORDER BY o.created_at DESC
LIMIT 20 OFFSET $2;

-- #2 Merchant revenue dashboard: revenue and order count per day (UK time), last 30 days.
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
SELECT id, full_name, country_code
FROM customers
WHERE lower(email) = lower($1);
