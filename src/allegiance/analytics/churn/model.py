"""Churn risk: a calibrated LightGBM classifier, its time-split evaluation, reasons and profiles.

Label. An organization at risk at a cutoff (see `features.population`) *churned* when, with H the
horizon in days and the future window the dates [cutoff, cutoff + H):

- ``rule="left"`` (default): its ``left_on`` falls in the window. Exact when the operator records
  when a customer leaves (CRM status; the synthetic generator's ground truth).
- ``rule="silent"``: it placed no order in the window, among organizations that ordered in the
  365 days before the cutoff (the others get no label and are left out). For operators that do
  not record leaving; noisy for customers that order less often than every H days.
- ``rule="either"``: left or silent.

Model. LightGBM on the `features.FEATURES` matrix (missing values native), with probabilities
calibrated by sklearn's `CalibratedClassifierCV` (Platt "sigmoid" by default: monotone, so it keeps
the booster's ranking and AUC; "isotonic" on request). Without a time column the calibrator is
fitted on stratified out-of-fold predictions and the booster on all rows (``ensemble=False``);
with one (training rows from several cutoffs) the booster is fitted on the earlier cutoffs and
the calibrator on the latest ``calibration_share`` of them, so calibration, like the evaluation,
only ever looks forward in time.

Reasons are LightGBM's exact tree SHAP values (``pred_contrib=True``): each feature's additive
push on the log-odds of churn. An organization's reasons are its features with the largest
positive pushes, written from its own values ("NPS fell from 8.7 to 3.5"); its main family is
the family (`features.Feature.family`) whose pushes add up highest, and picks the intervention.
Everything is seeded and single-threaded: the same data gives the same model and scores.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

if TYPE_CHECKING:  # imported where used: LightGBM + scikit-learn take seconds to import, and every
    # process that builds the application imports this module (the CLI, the server, the tests)
    import lightgbm as lgb
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline

from allegiance.analytics.frames import Frames

from .features import FEATURE_BY_NAME, FEATURE_NAMES, churn_features, feature_matrix, population
from .reasons import Row, reason_text

LabelRule = Literal["left", "silent", "either"]
Calibration = Literal["sigmoid", "isotonic"]

# Small trees, slow learning, strong regularisation: churn data sets are small and noisy, and
# these settings are what lets the booster at least match logistic regression on the Telco data
# (see docs/analytics.md, "Churn risk"); the synthetic program is learnt as well with them. 200
# trees rather than more: tree-SHAP reasons cost time per tree, and 400 trees at half the rate
# scored the same on Telco and MLC.
DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.06,
    "num_leaves": 6,
    "max_depth": 3,
    "min_child_samples": 40,
    "reg_lambda": 5.0,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "linear_tree": False,
}
_FIXED: dict[str, Any] = {"n_jobs": 1, "deterministic": True, "force_row_wise": True, "verbose": -1}

INTERVENTIONS: dict[str, str] = {
    "satisfaction": "executive call and service review",
    "complaints": "complaint-resolution escalation",
    "champion_left": "re-onboard the new contact (champion replacement)",
    "competitor_price": "targeted offer or discount",
    "usage": "training and education on the product range (declining usage)",
    "engagement": "training and education, program re-activation (declining engagement)",
    "payments": "credit and payment-terms review",
    "returns": "product-quality review",
    "profile": "account review",
}


# --- labels and training rows ---------------------------------------------------------------------


def churn_labels(frames: Frames, cutoff: dt.date, horizon_days: int, *, rule: LabelRule = "left",
                 kinds: tuple[str, ...] | None = ("customer",)) -> pl.DataFrame:
    """Whether each organization at risk at `cutoff` churned within `horizon_days` (module docstring).

    Reads ``organizations`` (and ``orders`` for the silent rules); returns org, churned (bool,
    null when the rule gives no label).
    """
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    if rule not in ("left", "silent", "either"):
        raise ValueError(f"rule must be 'left', 'silent' or 'either', got {rule!r}")
    end = cutoff + dt.timedelta(days=horizon_days)
    base = population(frames.organizations, cutoff, kinds)
    left = pl.col("left_on").is_not_null() & (pl.col("left_on") < end)
    if rule == "left":
        return base.select("org", churned=left)
    c = dt.datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=dt.UTC)
    e = c + dt.timedelta(days=horizon_days)
    at = pl.col("occurred_at")
    activity = frames.orders.filter((at >= c - dt.timedelta(days=365)) & (at < e)).group_by("org").agg(
        before=(at < c).any(), after=(at >= c).any())
    joined = base.join(activity, on="org", how="left").with_columns(pl.col("before", "after").fill_null(False))
    silent = pl.when(pl.col("before")).then(~pl.col("after"))
    churned = silent if rule == "silent" else pl.when(left).then(True).otherwise(silent)
    return joined.select("org", churned=churned)


def training_set(frames: Frames, cutoffs: Sequence[dt.date], horizon_days: int, *, rule: LabelRule = "left",
                 kinds: tuple[str, ...] | None = ("customer",)) -> pl.DataFrame:
    """Features and label of every organization at every cutoff, stacked; rows without a label dropped.

    Returns the `churn_features` columns plus churned (bool). One organization appears once per
    cutoff: the model learns from its trajectory, and evaluation must split by time, not by row.
    """
    parts = []
    for cutoff in sorted(set(cutoffs)):
        labels = churn_labels(frames, cutoff, horizon_days, rule=rule, kinds=kinds)
        feats = churn_features(frames, cutoff, kinds=kinds)
        parts.append(feats.join(labels, on="org", how="inner").filter(pl.col("churned").is_not_null()))
    if not parts:
        raise ValueError("no cutoffs given")
    return pl.concat(parts)


# --- the classifier -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChurnModel:
    """A fitted booster, its calibrator and the feature names its columns carry."""

    booster: lgb.LGBMClassifier
    calibrator: CalibratedClassifierCV
    feature_names: tuple[str, ...]
    calibration: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def predict_proba(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Calibrated probability of churn per row of `x` (columns in `feature_names` order)."""
        return np.asarray(self.calibrator.predict_proba(x)[:, 1], dtype=np.float64)

    def contributions(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Tree-SHAP contribution of each feature to the booster's log-odds, shape (rows, features).

        Rows add up, with the expected value (dropped here), to the uncalibrated log-odds; the
        calibrator is monotone, so a positive contribution always raises the churn probability.
        """
        contrib = np.asarray(self.booster.predict(x, pred_contrib=True), dtype=np.float64)
        return contrib[:, :-1]


def _booster(params: Mapping[str, Any] | None, seed: int) -> lgb.LGBMClassifier:
    import lightgbm as lgb

    chosen = {**DEFAULT_PARAMS, **(params or {}), **_FIXED, "random_state": seed}
    return lgb.LGBMClassifier(**chosen)


def fit_classifier(x: NDArray[np.float64], y: NDArray[Any], *, feature_names: Sequence[str] | None = None,
                   time: NDArray[Any] | None = None, params: Mapping[str, Any] | None = None,
                   calibration: Calibration = "sigmoid", calibration_share: float = 0.25, n_splits: int = 5,
                   seed: int = 0) -> ChurnModel:
    """Fit the calibrated LightGBM churn classifier on any feature matrix (the generic trainer).

    `x` is (rows, features) float with NaN for missing values, `y` 0/1. Without `time`,
    calibration uses `n_splits` stratified folds (out-of-fold predictions, booster refitted on
    all rows). With `time` (one sortable value per row, e.g. the cutoff date), the booster learns
    from the rows before the last `calibration_share` of distinct times and the calibrator from
    those last times. `params` override `DEFAULT_PARAMS`.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import StratifiedKFold

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    names = tuple(feature_names) if feature_names is not None else tuple(f"x{i}" for i in range(x.shape[1]))
    if len(names) != x.shape[1]:
        raise ValueError(f"{len(names)} feature names for {x.shape[1]} columns")
    if len(y) != len(x) or len(np.unique(y)) != 2:
        raise ValueError("y must have one 0/1 label per row and both classes")
    if calibration not in ("sigmoid", "isotonic"):
        raise ValueError(f"calibration must be 'sigmoid' or 'isotonic', got {calibration!r}")
    chosen = {**DEFAULT_PARAMS, **(params or {})}
    if time is None:
        folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        calibrated = CalibratedClassifierCV(_booster(params, seed), method=calibration, cv=folds, ensemble=False)
        calibrated.fit(x, y)
        booster = calibrated.calibrated_classifiers_[0].estimator
        return ChurnModel(booster, calibrated, names, calibration, chosen)
    if not 0.0 < calibration_share < 1.0:
        raise ValueError(f"calibration_share must be in (0, 1), got {calibration_share}")
    times = np.asarray(time)
    distinct = np.unique(times)
    if len(distinct) < 2:
        raise ValueError("a time-respecting calibration needs rows from at least two distinct times")
    n_late = max(1, round(len(distinct) * calibration_share))
    late = times >= distinct[len(distinct) - n_late]
    if len(np.unique(y[late])) != 2 or len(np.unique(y[~late])) != 2:
        raise ValueError("both the fitting and the calibration times need churners and non-churners")
    booster = _booster(params, seed).fit(x[~late], y[~late])
    calibrated = CalibratedClassifierCV(FrozenEstimator(booster), method=calibration)
    calibrated.fit(x[late], y[late])
    return ChurnModel(booster, calibrated, names, calibration, chosen)


def fit_churn_model(train: pl.DataFrame, *, params: Mapping[str, Any] | None = None,
                    calibration: Calibration = "sigmoid", calibration_share: float = 0.25,
                    seed: int = 0) -> ChurnModel:
    """`fit_classifier` on a `training_set` frame, calibrated on its latest cutoffs."""
    return fit_classifier(feature_matrix(train), train["churned"].cast(pl.Int64).to_numpy(),
                          feature_names=FEATURE_NAMES, time=train["cutoff"].to_numpy(), params=params,
                          calibration=calibration, calibration_share=calibration_share, seed=seed)


def logistic_baseline(x: NDArray[np.float64], y: NDArray[Any], *, seed: int = 0) -> Pipeline:
    """The baseline every evaluation reports next to the booster: median imputation (with missing
    indicators), standardisation, L2 logistic regression. Fitted and returned."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler(),
                          LogisticRegression(C=1.0, max_iter=5000, random_state=seed))
    return model.fit(np.asarray(x, dtype=np.float64), np.asarray(y).astype(np.int64))


# --- evaluation ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Predictions in [lower, upper): how many, their mean, and the churn rate observed among them."""

    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class ClassifierMetrics:
    """Ranking (AUC, precision among the top 10 % by risk) and calibration (Brier, reliability)."""

    auc: float
    precision_at_10pct: float
    brier: float
    reliability: tuple[ReliabilityBin, ...]
    rows: int
    positives: int


def classifier_metrics(y: NDArray[Any], p: NDArray[np.float64], *, bins: int = 10) -> ClassifierMetrics:
    """Metrics of probabilities `p` against 0/1 outcomes `y`.

    Precision at 10 %: churn rate among the ceil(10 %) highest-risk rows (ties broken by row
    order). Reliability: `bins` equal-width bins of predicted probability, empty bins omitted.
    """
    y = np.asarray(y).astype(np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(y) != len(p) or len(y) == 0:
        raise ValueError("y and p must be non-empty and of equal length")
    k = math.ceil(0.1 * len(p))
    top = np.argsort(-p, kind="stable")[:k]
    index = np.clip(np.floor(p * bins).astype(np.int64), 0, bins - 1)
    reliability = tuple(
        ReliabilityBin(b / bins, (b + 1) / bins, int((index == b).sum()), float(p[index == b].mean()),
                       float(y[index == b].mean()))
        for b in range(bins) if (index == b).any())
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    return ClassifierMetrics(auc, float(y[top].mean()), float(np.mean((p - y) ** 2)), reliability, len(y),
                             int(y.sum()))


@dataclass(frozen=True)
class ChurnEvaluation:
    """A time-split evaluation: trained on `train_cutoffs`, tested on the later `test_cutoff`."""

    train_cutoffs: tuple[dt.date, ...]
    test_cutoff: dt.date
    horizon_days: int
    rule: str
    model: ClassifierMetrics
    baseline: ClassifierMetrics  # logistic regression, same rows, same run
    fitted: ChurnModel
    test: pl.DataFrame  # the test cutoff's features, label and p_churn


def evaluate_churn(frames: Frames, train_cutoffs: Sequence[dt.date], test_cutoff: dt.date, horizon_days: int,
                   *, rule: LabelRule = "left", kinds: tuple[str, ...] | None = ("customer",),
                   params: Mapping[str, Any] | None = None, calibration: Calibration = "sigmoid",
                   seed: int = 0) -> ChurnEvaluation:
    """Train on cutoffs t1..tk, test on a later cutoff; the booster and the LR baseline side by side.

    Every training cutoff's label window must close by the test cutoff (t + H <= test), so no
    training label was unknown at test time.
    """
    late = [t for t in train_cutoffs if t + dt.timedelta(days=horizon_days) > test_cutoff]
    if late:
        raise ValueError(f"training cutoffs {late} have label windows reaching past the test cutoff {test_cutoff}")
    train = training_set(frames, train_cutoffs, horizon_days, rule=rule, kinds=kinds)
    test = training_set(frames, [test_cutoff], horizon_days, rule=rule, kinds=kinds)
    fitted = fit_churn_model(train, params=params, calibration=calibration, seed=seed)
    x_test, y_test = feature_matrix(test), test["churned"].cast(pl.Int64).to_numpy()
    p = fitted.predict_proba(x_test)
    lr = logistic_baseline(feature_matrix(train), train["churned"].cast(pl.Int64).to_numpy(), seed=seed)
    p_lr = np.asarray(lr.predict_proba(x_test)[:, 1], dtype=np.float64)
    return ChurnEvaluation(tuple(sorted(train_cutoffs)), test_cutoff, horizon_days, rule,
                           classifier_metrics(y_test, p), classifier_metrics(y_test, p_lr), fitted,
                           test.with_columns(p_churn=pl.Series(p)))


def score_churn(model: ChurnModel, features: pl.DataFrame, *, top: int = 3) -> pl.DataFrame:
    """Churn probability and reasons for each row of a `churn_features` frame.

    Returns org, cutoff, p_churn, reasons (list of up to `top` feature names with positive SHAP
    contributions, largest first), reason_families, reason_texts (duplicates merged: the three
    order features read as one sentence), main_family (the family with the largest summed
    contribution), intervention; sorted by p_churn descending then org. Vectorized except for
    writing the sentences (a Python call per reason).
    """
    if tuple(model.feature_names) != FEATURE_NAMES:
        raise ValueError("the model was not trained on the churn feature set")
    x = feature_matrix(features)
    if len(x) == 0:
        return features.select("org", "cutoff").with_columns(
            p_churn=pl.lit(None, dtype=pl.Float64), reasons=pl.lit(None, dtype=pl.List(pl.String)),
            reason_families=pl.lit(None, dtype=pl.List(pl.String)),
            reason_texts=pl.lit(None, dtype=pl.List(pl.String)), main_family=pl.lit(None, dtype=pl.String),
            intervention=pl.lit(None, dtype=pl.String))
    p = model.predict_proba(x)
    contrib = model.contributions(x)
    feature_family = np.array([FEATURE_BY_NAME[n].family for n in FEATURE_NAMES], dtype=object)
    families = np.array(sorted(set(feature_family)), dtype=object)
    membership = (feature_family[:, None] == families[None, :]).astype(np.float64)
    main = families[np.argmax(contrib @ membership, axis=1)]
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
    positive = np.take_along_axis(contrib, order, axis=1) > 0
    columns = features.select("segment", *FEATURE_NAMES).to_dict(as_series=False)
    slots: dict[str, list[Any]] = {}
    for k in range(order.shape[1]):
        chosen = [FEATURE_NAMES[j] if ok else None
                  for j, ok in zip(order[:, k].tolist(), positive[:, k].tolist(), strict=True)]
        slots[f"r{k}"] = chosen
        slots[f"f{k}"] = [FEATURE_BY_NAME[n].family if n else None for n in chosen]
        slots[f"t{k}"] = [reason_text(n, Row(columns, i)) if n else None for i, n in enumerate(chosen)]
    parts = pl.DataFrame(slots, schema={name: pl.String for name in slots})

    def listed(prefix: str) -> pl.Expr:
        if not slots:
            return pl.lit([], dtype=pl.List(pl.String))
        return pl.concat_list([pl.col(f"{prefix}{k}") for k in range(order.shape[1])]).list.drop_nulls()

    reasons = parts.select(reasons=listed("r"), reason_families=listed("f"),
                           reason_texts=listed("t").list.unique(maintain_order=True))
    return pl.concat([features.select("org", "cutoff"), reasons], how="horizontal").with_columns(
        p_churn=pl.Series(p, dtype=pl.Float64),
        main_family=pl.Series(main.tolist(), dtype=pl.String),
    ).select("org", "cutoff", "p_churn", "reasons", "reason_families", "reason_texts", "main_family").with_columns(
        intervention=pl.col("main_family").replace_strict(INTERVENTIONS, default="account review"),
    ).sort(["p_churn", "org"], descending=[True, False])


def churn_profiles(scored: pl.DataFrame, features: pl.DataFrame, *, threshold: float = 0.5,
                   value: pl.DataFrame | None = None) -> pl.DataFrame:
    """Group at-risk organizations (p_churn >= `threshold`) by their main reason family.

    `scored` is a `score_churn` frame, `features` the `churn_features` frame it came from (for the
    trailing-12-month spend), `value` an optional frame org, value_minor (e.g. CLV) used instead of
    that spend. Returns one row per profile: profile (family), organizations, value_at_risk_minor
    (sum of value), expected_loss_minor (sum of p_churn x value), mean_p_churn, main_reasons (the
    three most frequent reason labels), intervention, orgs (list); largest value at risk first.
    """
    at_risk = scored.filter(pl.col("p_churn") >= threshold)
    if value is None:
        values = features.select("org", value_minor=(pl.col("spend_365d") * 100).round().cast(pl.Int64))
    else:
        values = value.select("org", pl.col("value_minor").cast(pl.Int64))
    at_risk = at_risk.join(values, on="org", how="left").with_columns(pl.col("value_minor").fill_null(0))
    rows = []
    for family, group in at_risk.group_by("main_family", maintain_order=True):
        counts = Counter(FEATURE_BY_NAME[n].label for names in group["reasons"].to_list() for n in names)
        vals = group["value_minor"].to_numpy()
        rows.append({
            "profile": str(family[0]),
            "organizations": group.height,
            "value_at_risk_minor": int(vals.sum()),
            "expected_loss_minor": round(float((group["p_churn"].to_numpy() * vals).sum())),
            "mean_p_churn": float(group["p_churn"].to_numpy().mean()),
            "main_reasons": [label for label, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]],
            "intervention": INTERVENTIONS.get(str(family[0]), "account review"),
            "orgs": sorted(group["org"].to_list()),
        })
    schema: dict[str, pl.DataType] = {
        "profile": pl.String(), "organizations": pl.Int64(), "value_at_risk_minor": pl.Int64(),
        "expected_loss_minor": pl.Int64(), "mean_p_churn": pl.Float64(), "main_reasons": pl.List(pl.String),
        "intervention": pl.String(), "orgs": pl.List(pl.String)}
    return pl.DataFrame(rows, schema=schema).sort(["value_at_risk_minor", "profile"], descending=[True, False])
