"""``allegiance analytics``: run the analytics job, read its results, keep settings and segments as files.

``--format csv|json|parquet`` writes a result's rows (the main frame of its document) to
``--output FILE``, or to stdout for csv and json. The commands live by theme: `job` (run),
`results` (metrics, cohorts, rfm, clv, health, organization), `models` (churn, recommend), `files`
(settings, segments); importing this package registers them all on `analytics_app`.
"""

from allegiance.cli.analytics import files, job, models, results  # noqa: F401 - registers the commands
from allegiance.cli.analytics.common import analytics_app
from allegiance.cli.analytics.job import demo_run

__all__ = ["analytics_app", "demo_run"]
