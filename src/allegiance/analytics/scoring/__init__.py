"""Customer scoring: a configurable, explainable health score and its backtest.

RFM segmentation lives elsewhere; this package holds the weighted health score
(`health.HealthScoreConfig`, `health.health_scores`, `health.backtest_score`).
"""

from .health import (
    COMPONENTS,
    DEFAULT_WEIGHTS,
    HealthScoreConfig,
    ScoreBacktest,
    backtest_score,
    health_scores,
    health_scores_from_features,
)

__all__ = [
    "COMPONENTS",
    "DEFAULT_WEIGHTS",
    "HealthScoreConfig",
    "ScoreBacktest",
    "backtest_score",
    "health_scores",
    "health_scores_from_features",
]
