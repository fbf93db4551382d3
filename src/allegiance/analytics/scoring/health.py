"""A configurable, explainable customer health score (0-100, higher is healthier).

Why a score next to the churn model: account teams want one number they can read, argue with and
tune, with each part's share visible ("NPS costs this customer 12 points"), and a configuration
that is versioned so last quarter's scores can be reproduced. The churn model ranks better; the
score explains itself and is backtested against the same churn label (`backtest_score`).

Components, each normalised to 0..100 from the churn features at the cutoff
(`allegiance.analytics.churn.features`, windows of 90 days before the cutoff unless said):

- ``purchase_trend``: mean of a trend part, 100 / (1 + exp(-2 * spend_trend)) (flat spend = 50,
  doubled = 80, halved = 20), and a recency part, 100 * exp(-recency_days / recency_scale_days).
- ``engagement``: 100 * (1 - exp(-(engagement events + loyalty-program movements) / engagement_scale)).
- ``nps``: 10 * mean NPS of the last 120 days, else 10 * the latest answer; no answer -> `missing`.
- ``complaints``: 100 * exp(-complaints in the last 90 days / complaint_scale).
- ``payments``: 100 * min(1, invoices paid in the last 180 days / orders due in
  [cutoff - 210 d, cutoff - 30 d)); no order due -> `missing`. (Payment events carry no due date
  in the frames, so lateness is read as the unpaid share.)
- ``breadth``: 100 * min(1, distinct roles that acted in the last 180 days / breadth_target).

score = sum_c w_c * s_c / sum_c w_c; the contribution of c is w_c * s_c / sum_c w_c, so the
contributions of a row add up to its score.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from allegiance.analytics.churn.features import churn_features
from allegiance.analytics.churn.model import LabelRule, churn_labels
from allegiance.analytics.frames import Frames

COMPONENTS: tuple[str, ...] = ("purchase_trend", "engagement", "nps", "complaints", "payments", "breadth")
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "purchase_trend": 0.30, "engagement": 0.15, "nps": 0.20, "complaints": 0.15, "payments": 0.10, "breadth": 0.10,
})


@dataclass(frozen=True)
class HealthScoreConfig:
    """A versioned health-score configuration; invalid values raise ValueError naming the field.

    Components absent from `weights` weigh 0. `from_dict` / `to_dict` round-trip it through
    JSON or YAML, so the configuration that produced a score can be stored next to it.
    """

    version: str = "health-v1"
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    recency_scale_days: float = 60.0
    engagement_scale: float = 2.0
    complaint_scale: float = 1.5
    breadth_target: float = 3.0
    missing: float = 50.0  # component score when its input is unknown (no NPS answer, no order due)

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not self.version.strip():
            raise ValueError("version: must be a non-empty string")
        if not isinstance(self.weights, Mapping):
            raise ValueError("weights: must be a mapping of component name to weight")
        for name, weight in self.weights.items():
            if name not in COMPONENTS:
                raise ValueError(f"weights.{name}: unknown component (known: {', '.join(COMPONENTS)})")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
                raise ValueError(f"weights.{name}: must be a finite number, got {weight!r}")
            if weight < 0:
                raise ValueError(f"weights.{name}: must be >= 0, got {weight}")
        if sum(self.weights.values()) <= 0:
            raise ValueError("weights: at least one component needs a positive weight")
        for name in ("recency_scale_days", "engagement_scale", "complaint_scale", "breadth_target"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or math.isinf(value):
                raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")
        if isinstance(self.missing, bool) or not isinstance(self.missing, int | float) or not 0 <= self.missing <= 100:
            raise ValueError(f"missing: must be a number in 0..100, got {self.missing!r}")
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))

    def weight(self, component: str) -> float:
        """The component's share of the score, weights normalised to sum to 1."""
        return float(self.weights.get(component, 0.0)) / float(sum(self.weights.values()))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON/YAML ready) that `from_dict` turns back into this configuration."""
        return {"version": self.version, "weights": dict(self.weights),
                "recency_scale_days": self.recency_scale_days, "engagement_scale": self.engagement_scale,
                "complaint_scale": self.complaint_scale, "breadth_target": self.breadth_target,
                "missing": self.missing}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthScoreConfig:
        """Build and validate a configuration; unknown keys are refused by name."""
        known = {"version", "weights", "recency_scale_days", "engagement_scale", "complaint_scale",
                 "breadth_target", "missing"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown configuration field")
        return cls(**dict(data))


def _components(config: HealthScoreConfig) -> dict[str, pl.Expr]:
    missing = float(config.missing)
    trend = 100.0 / (1.0 + (-2.0 * pl.col("spend_trend")).exp())
    recency = 100.0 * (-pl.col("recency_days") / config.recency_scale_days).exp()
    engaged = pl.col("engagement_90d") + pl.col("program_movements_90d")
    nps = pl.coalesce(pl.col("nps_recent"), pl.col("nps_latest"))
    return {
        "purchase_trend": (trend + recency) / 2.0,
        "engagement": 100.0 * (1.0 - (-engaged / config.engagement_scale).exp()),
        "nps": (10.0 * nps).fill_null(missing),
        "complaints": 100.0 * (-pl.col("complaints_90d") / config.complaint_scale).exp(),
        "payments": (100.0 * pl.col("paid_ratio").clip(upper_bound=1.0)).fill_null(missing),
        "breadth": 100.0 * pl.min_horizontal(pl.col("roles_engaged_180d") / config.breadth_target, pl.lit(1.0)),
    }


def health_scores_from_features(features: pl.DataFrame, config: HealthScoreConfig | None = None) -> pl.DataFrame:
    """Scores of a `churn_features` frame (any number of rows, one cutoff or many).

    Returns org, cutoff, health_score, then per component ``<c>_score`` (0..100) and
    ``<c>_contribution`` (its weighted share; contributions add up to health_score), and
    config_version. Sorted as the input.
    """
    config = config or HealthScoreConfig()
    parts = _components(config)
    scores = [parts[c].clip(0.0, 100.0).alias(f"{c}_score") for c in COMPONENTS]
    out = features.select("org", "cutoff", *scores)
    contributions = [(pl.col(f"{c}_score") * config.weight(c)).alias(f"{c}_contribution") for c in COMPONENTS]
    out = out.with_columns(contributions)
    # clipped: a weighted sum of scores in [0, 100] can land a float step outside it
    total = pl.sum_horizontal([f"{c}_contribution" for c in COMPONENTS]).clip(0.0, 100.0).alias("health_score")
    return out.select("org", "cutoff", total, pl.exclude("org", "cutoff")).with_columns(
        config_version=pl.lit(config.version))


def health_scores(frames: Frames, cutoff: dt.date, config: HealthScoreConfig | None = None, *,
                  kinds: tuple[str, ...] | None = ("customer",)) -> pl.DataFrame:
    """Health score of every organization at risk at `cutoff` (see `health_scores_from_features`)."""
    return health_scores_from_features(churn_features(frames, cutoff, kinds=kinds), config)


@dataclass(frozen=True, slots=True)
class ScoreBacktest:
    """How well a configuration separated the organizations that churned after the cutoff."""

    version: str
    cutoff: dt.date
    horizon_days: int
    organizations: int
    churners: int
    auc: float  # of risk = 100 - score against the churn label; 0.5 = no better than chance
    top_decile_lift: float  # churn rate among the 10 % lowest scores / overall churn rate


def backtest_score(config: HealthScoreConfig, frames: Frames, cutoff: dt.date, horizon_days: int, *,
                   rule: LabelRule = "left", kinds: tuple[str, ...] | None = ("customer",)) -> ScoreBacktest:
    """Score at `cutoff`, then check against who churned in the next `horizon_days` (`churn_labels`).

    Top decile: the ceil(10 %) lowest scores, ties broken by org id. Raises ValueError when the
    label has only one class (AUC undefined).
    """
    scores = health_scores(frames, cutoff, config, kinds=kinds)
    labels = churn_labels(frames, cutoff, horizon_days, rule=rule, kinds=kinds)
    joined = scores.join(labels, on="org", how="inner").filter(pl.col("churned").is_not_null()).sort(
        ["health_score", "org"])
    y = joined["churned"].cast(pl.Int64).to_numpy()
    if y.sum() == 0 or y.sum() == len(y):
        raise ValueError(f"the label at {cutoff} + {horizon_days} days has a single class; nothing to separate")
    risk = 100.0 - joined["health_score"].to_numpy()
    k = math.ceil(0.1 * len(y))
    lift = float(np.mean(y[:k]) / np.mean(y))
    return ScoreBacktest(config.version, cutoff, horizon_days, len(y), int(y.sum()),
                         float(_auc(y, risk)), lift)


def _auc(y: NDArray[Any], score: NDArray[Any]) -> float:
    from sklearn.metrics import roc_auc_score  # imported on use: scikit-learn is slow to import

    return float(roc_auc_score(y, score))
