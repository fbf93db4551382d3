"""The operator's analytics settings: the few numbers only the business knows (gross margin,
the churn horizon, what counts as churn) and the knobs of the models.

Stored versioned in the database like every other configuration (``allegiance analytics
settings apply FILE``, ``PUT /api/v1/analytics/settings``), so a stored snapshot can always say
which settings produced it. Validation names the field: ``margin: must be > 0 and <= 1``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from allegiance.analytics.scoring import COMPONENTS, HealthScoreConfig


class AnalyticsSettingsInvalid(ValueError):
    """A settings document that cannot be used; ``field`` is the dotted path of the bad part."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class HealthSettings(BaseModel):
    """The health score's weights and scales (see ``scoring.health``); ``version`` names it in results."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(default="health-v1", min_length=1, max_length=60)
    weights: dict[str, float] | None = None
    recency_scale_days: float = Field(default=60.0, gt=0)
    engagement_scale: float = Field(default=2.0, gt=0)
    complaint_scale: float = Field(default=1.5, gt=0)
    breadth_target: float = Field(default=3.0, gt=0)
    missing: float = Field(default=50.0, ge=0, le=100)

    def config(self) -> HealthScoreConfig:
        values: dict[str, Any] = self.model_dump(exclude_none=True)
        return HealthScoreConfig(**values)


class AnalyticsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    margin: float = Field(default=0.3, gt=0, le=1,
                          description="gross margin share of revenue (CLV, ROI, retention value)")
    discount_rate_yearly: float = Field(default=0.10, ge=0, lt=1, description="yearly discount rate of future value")
    kinds: list[str] = Field(default_factory=lambda: ["customer"], min_length=1,
                             description="organization kinds that are scored for churn and health")
    churn_horizon_days: int = Field(default=90, ge=14, le=730, description="a churn is predicted within this many days")
    churn_rule: Literal["left", "silent", "either"] = Field(
        default="either",
        description="left: a recorded departure; silent: ordered in the past year, none in the horizon")
    churn_training_cutoffs: int = Field(default=4, ge=1, le=24, description="past cutoffs the model learns from")
    churn_cutoff_step_days: int = Field(default=30, ge=7, le=365)
    churn_threshold: float = Field(default=0.3, gt=0, lt=1,
                                   description="p(churn) from which an organization is at risk")
    clv_model: Literal["bgnbd", "paretonbd"] = "bgnbd"
    clv_horizon_days: int = Field(default=365, ge=30, le=3650)
    recommend_level: Literal["sku", "category"] = "sku"
    recommend_k: int = Field(default=5, ge=1, le=50)
    recommend_holdout_days: int = Field(default=180, ge=30, le=730)
    program_cost_minor_per_year: int = Field(default=0, ge=0, description="running cost of the program, minor units")
    health: HealthSettings = Field(default_factory=HealthSettings)


def parse_settings(document: dict[str, Any] | None) -> AnalyticsSettings:
    """Validated settings; an unknown or bad field raises ``AnalyticsSettingsInvalid`` with its path."""
    try:
        settings = AnalyticsSettings.model_validate(document or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(str(p) for p in error["loc"]) or "settings"
        raise AnalyticsSettingsInvalid(error["msg"].removeprefix("Value error, "), path) from None
    try:
        settings.health.config()
    except ValueError as exc:
        raise AnalyticsSettingsInvalid(str(exc).split(": ", 1)[-1], "health." + str(exc).split(":", 1)[0]) from None
    unknown = set(settings.health.weights or {}) - set(COMPONENTS)
    if unknown:  # pragma: no cover - HealthScoreConfig already refuses them
        raise AnalyticsSettingsInvalid("unknown component", f"health.weights.{sorted(unknown)[0]}")
    return settings
