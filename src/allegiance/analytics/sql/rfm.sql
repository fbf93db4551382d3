-- RFM per organization as of :as_of (a DATE parameter).
-- Input view `orders`: org, occurred_at (UTC timestamp), amount_minor (BIGINT).
-- Portable DuckDB / Spark SQL: no dialect-specific function; see engines.py.
--
-- recency_days   = :as_of - day of the org's last order up to :as_of (0 = ordered that day)
-- frequency      = orders placed on or before :as_of
-- monetary_minor = sum of their amount_minor
-- r/f/m_score    = NTILE(5) over all scored orgs, 5 = best (most recent, most orders, most money);
--                  ties are split by org id ascending (the lower id lands in the lower tile)
-- rfm_cell       = the three scores as a string, e.g. '545'
-- segment        = the R x F grid below (M is in the cell but not in the segment)
WITH eligible AS (
    SELECT org, CAST(occurred_at AS DATE) AS order_date, amount_minor
    FROM orders
    WHERE CAST(occurred_at AS DATE) <= CAST(:as_of AS DATE)
),
per_org AS (
    SELECT org,
           MIN(order_date) AS first_order_on,
           MAX(order_date) AS last_order_on,
           COUNT(*) AS frequency,
           CAST(SUM(amount_minor) AS BIGINT) AS monetary_minor
    FROM eligible
    GROUP BY org
),
measured AS (
    SELECT org, first_order_on, last_order_on,
           CAST(CAST(:as_of AS DATE) - last_order_on AS INT) AS recency_days,
           frequency, monetary_minor
    FROM per_org
),
scored AS (
    SELECT org, first_order_on, last_order_on, recency_days, frequency, monetary_minor,
           CAST(NTILE(5) OVER (ORDER BY recency_days DESC, org ASC) AS INT) AS r_score,
           CAST(NTILE(5) OVER (ORDER BY frequency ASC, org ASC) AS INT) AS f_score,
           CAST(NTILE(5) OVER (ORDER BY monetary_minor ASC, org ASC) AS INT) AS m_score
    FROM measured
)
SELECT org,
       first_order_on,
       last_order_on,
       recency_days,
       CAST(frequency AS BIGINT) AS frequency,
       monetary_minor,
       r_score,
       f_score,
       m_score,
       CAST(r_score AS STRING) || CAST(f_score AS STRING) || CAST(m_score AS STRING) AS rfm_cell,
       CASE
           WHEN r_score = 5 AND f_score >= 4 THEN 'champions'
           WHEN r_score >= 3 AND f_score >= 4 THEN 'loyal'
           WHEN r_score >= 4 AND f_score >= 2 THEN 'potential_loyalist'
           WHEN r_score = 5 THEN 'new'
           WHEN r_score = 4 THEN 'promising'
           WHEN r_score = 3 AND f_score = 3 THEN 'needs_attention'
           WHEN r_score = 3 THEN 'about_to_sleep'
           WHEN f_score = 5 THEN 'cannot_lose'
           WHEN f_score >= 3 THEN 'at_risk'
           ELSE 'hibernating'
       END AS segment
FROM scored
ORDER BY org
