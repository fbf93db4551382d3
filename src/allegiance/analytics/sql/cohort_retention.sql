-- Monthly acquisition cohorts and their retention.
-- Input view `orders`: org, occurred_at (UTC timestamp), amount_minor (BIGINT).
-- Portable DuckDB / Spark SQL: no dialect-specific function; see engines.py.
--
-- A month is the integer year * 12 + month - 1 of the order's UTC day; an org's cohort is the
-- month of its first order. For every cohort and every month offset k from 0 up to the last month
-- that has any order (k = 0 is the cohort month itself), one row, zero-activity months included:
--   cohort_size          orgs in the cohort
--   active_orgs          of those, orgs with >= 1 order in month cohort + k
--   retention_rate       active_orgs / cohort_size
--   revenue_minor        amount_minor of the cohort's orders in month cohort + k
--   cohort_revenue_minor the cohort's revenue in its month 0
--   revenue_retention    revenue_minor / cohort_revenue_minor (NULL when month 0 sums to 0)
-- Offsets stop at 999 months (the digits table below).
WITH org_month AS (
    SELECT org, year(order_date) * 12 + month(order_date) - 1 AS month_index,
           CAST(SUM(amount_minor) AS BIGINT) AS revenue_minor
    FROM (SELECT org, CAST(occurred_at AS DATE) AS order_date, amount_minor FROM orders) AS o
    GROUP BY org, year(order_date) * 12 + month(order_date) - 1
),
cohorts AS (
    SELECT org, MIN(month_index) AS cohort_index
    FROM org_month
    GROUP BY org
),
cells AS (
    SELECT c.cohort_index, m.month_index - c.cohort_index AS month_offset,
           COUNT(*) AS active_orgs, CAST(SUM(m.revenue_minor) AS BIGINT) AS revenue_minor
    FROM org_month AS m JOIN cohorts AS c ON c.org = m.org
    GROUP BY c.cohort_index, m.month_index - c.cohort_index
),
activity AS (
    SELECT cohort_index, month_offset, active_orgs, revenue_minor,
           MAX(cohort_index + month_offset) OVER () AS last_index
    FROM cells
),
digits AS (
    SELECT n FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS d(n)
),
offsets AS (
    SELECT a.n * 100 + b.n * 10 + c.n AS month_offset
    FROM digits AS a CROSS JOIN digits AS b CROSS JOIN digits AS c
),
grid AS (
    SELECT c.cohort_index, c.active_orgs AS cohort_size, c.revenue_minor AS cohort_revenue_minor, o.month_offset
    FROM activity AS c
    JOIN offsets AS o ON o.month_offset <= c.last_index - c.cohort_index
    WHERE c.month_offset = 0
)
SELECT make_date(CAST(FLOOR(g.cohort_index / 12) AS INT), CAST(g.cohort_index % 12 + 1 AS INT), 1) AS cohort_month,
       CAST(g.month_offset AS INT) AS month_offset,
       make_date(CAST(FLOOR((g.cohort_index + g.month_offset) / 12) AS INT),
                 CAST((g.cohort_index + g.month_offset) % 12 + 1 AS INT), 1) AS period_month,
       CAST(g.cohort_size AS BIGINT) AS cohort_size,
       CAST(COALESCE(a.active_orgs, 0) AS BIGINT) AS active_orgs,
       CAST(COALESCE(a.active_orgs, 0) AS DOUBLE) / CAST(g.cohort_size AS DOUBLE) AS retention_rate,
       CAST(COALESCE(a.revenue_minor, 0) AS BIGINT) AS revenue_minor,
       CAST(g.cohort_revenue_minor AS BIGINT) AS cohort_revenue_minor,
       CAST(COALESCE(a.revenue_minor, 0) AS DOUBLE) / NULLIF(CAST(g.cohort_revenue_minor AS DOUBLE), 0)
           AS revenue_retention
FROM grid AS g
LEFT JOIN activity AS a ON a.cohort_index = g.cohort_index AND a.month_offset = g.month_offset
ORDER BY cohort_month, month_offset
