"""Churn risk: features as of a cutoff, a calibrated LightGBM classifier with reasons, and profiles.

`features.churn_features` turns the analytics frames into one row per organization at a cutoff;
`model.evaluate_churn` trains on past cutoffs and tests on a later one against a logistic
baseline; `model.score_churn` gives each organization a probability and its top reasons;
`model.churn_profiles` groups the organizations at risk by main reason with an intervention;
`reasons.reason_text` writes a reason from the organization's own values.
"""

from .features import FEATURE_BY_NAME, FEATURE_NAMES, FEATURES, Feature, churn_features, feature_matrix, population
from .model import (
    DEFAULT_PARAMS,
    INTERVENTIONS,
    ChurnEvaluation,
    ChurnModel,
    ClassifierMetrics,
    ReliabilityBin,
    churn_labels,
    churn_profiles,
    classifier_metrics,
    evaluate_churn,
    fit_churn_model,
    fit_classifier,
    logistic_baseline,
    score_churn,
    training_set,
)
from .reasons import reason_text

__all__ = [
    "DEFAULT_PARAMS",
    "FEATURES",
    "FEATURE_BY_NAME",
    "FEATURE_NAMES",
    "INTERVENTIONS",
    "ChurnEvaluation",
    "ChurnModel",
    "ClassifierMetrics",
    "Feature",
    "ReliabilityBin",
    "churn_features",
    "churn_labels",
    "churn_profiles",
    "classifier_metrics",
    "evaluate_churn",
    "feature_matrix",
    "fit_churn_model",
    "fit_classifier",
    "logistic_baseline",
    "population",
    "reason_text",
    "score_churn",
    "training_set",
]
