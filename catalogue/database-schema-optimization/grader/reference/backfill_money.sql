-- Money step 3: backfill the exact columns in batches, outside any long transaction. Run by a job,
-- not by migration.sql: `psql -X -v ON_ERROR_STOP=1 -f backfill_money.sql`. Each batch commits,
-- touches 10,000 rows and sleeps, so replicas and autovacuum keep up; rerunnable (only NULLs).
DO $$
DECLARE lo bigint := 0; hi bigint;
BEGIN
    SELECT max(id) INTO hi FROM orders;
    WHILE lo <= hi LOOP
        UPDATE orders SET total_amount_exact = round(total_amount::numeric, 2)
        WHERE id > lo AND id <= lo + 10000 AND total_amount_exact IS NULL;
        UPDATE order_items SET unit_price_exact = round(unit_price::numeric, 2)
        WHERE order_id > lo AND order_id <= lo + 10000 AND unit_price_exact IS NULL;
        COMMIT;
        PERFORM pg_sleep(0.05);
        lo := lo + 10000;
    END LOOP;
END
$$;
UPDATE products SET unit_price_exact = round(unit_price::numeric, 2) WHERE unit_price_exact IS NULL;

-- Reconciliation before switching reads: orders whose exact total differs from the sum of their
-- exact lines. Finance decides each one before the double precision columns go.
SELECT o.id, o.total_amount_exact, sum(oi.quantity * oi.unit_price_exact) AS lines_total
FROM orders o JOIN order_items oi ON oi.order_id = o.id
GROUP BY o.id
HAVING o.total_amount_exact IS DISTINCT FROM sum(oi.quantity * oi.unit_price_exact);
