-- Monthly repeat-purchase rate.
-- Input view `orders`: org, occurred_at (UTC timestamp).
-- Portable DuckDB / Spark SQL: no dialect-specific function; see engines.py.
--
-- For each calendar month (UTC) that has orders:
--   ordering_orgs  orgs with >= 1 order in the month
--   repeat_orgs    orgs with >= 2 orders in the month
--   repeat_rate    repeat_orgs / ordering_orgs
WITH org_month AS (
    SELECT org, year(order_date) * 12 + month(order_date) - 1 AS month_index, COUNT(*) AS orders_in_month
    FROM (SELECT org, CAST(occurred_at AS DATE) AS order_date FROM orders) AS o
    GROUP BY org, year(order_date) * 12 + month(order_date) - 1
),
monthly AS (
    SELECT month_index,
           COUNT(*) AS ordering_orgs,
           SUM(CASE WHEN orders_in_month >= 2 THEN 1 ELSE 0 END) AS repeat_orgs
    FROM org_month
    GROUP BY month_index
)
SELECT make_date(CAST(FLOOR(month_index / 12) AS INT), CAST(month_index % 12 + 1 AS INT), 1) AS month,
       CAST(ordering_orgs AS BIGINT) AS ordering_orgs,
       CAST(repeat_orgs AS BIGINT) AS repeat_orgs,
       CAST(repeat_orgs AS DOUBLE) / CAST(ordering_orgs AS DOUBLE) AS repeat_rate
FROM monthly
ORDER BY month
