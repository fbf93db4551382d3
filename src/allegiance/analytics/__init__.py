"""Analytics: retention metrics, lifetime value, scoring, churn risk and cross-sell.

Every metric is a pure function over the frames declared in `frames` (Polars DataFrames with
fixed column names and types). Adapters build those frames from the operational database
(`allegiance.storage.analytics_frames`) or from a synthetic program (`frames.from_synthetic`),
so the same code answers the operator, the tests and the benchmarks.
"""
