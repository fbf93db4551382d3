"""Customer lifetime value: BTYD purchase models (BG/NBD, Pareto/NBD), the Gamma-Gamma spend
model, discounted CLV per organization and realised (historical) value.

- :mod:`.summary`: per-organization RFM summary (frequency, recency, T, monetary) of ``orders``;
- :mod:`.bgnbd`, :mod:`.paretonbd`, :mod:`.gammagamma`: maximum-likelihood fits and predictions
  (NumPy/SciPy only);
- :func:`predict_clv`: the whole chain in one call;
- :mod:`.simulate`: populations drawn from known parameters (tests, benchmark).
"""

from allegiance.analytics.clv.bgnbd import BGNBDFit, BGNBDParams
from allegiance.analytics.clv.gammagamma import (
    GammaGammaFit,
    GammaGammaParams,
    customer_lifetime_value,
    historical_clv,
)
from allegiance.analytics.clv.paretonbd import ParetoNBDFit, ParetoNBDParams
from allegiance.analytics.clv.predict import predict_clv
from allegiance.analytics.clv.summary import calibration_and_holdout, rfm_summary

__all__ = [
    "BGNBDFit",
    "BGNBDParams",
    "GammaGammaFit",
    "GammaGammaParams",
    "ParetoNBDFit",
    "ParetoNBDParams",
    "calibration_and_holdout",
    "customer_lifetime_value",
    "historical_clv",
    "predict_clv",
    "rfm_summary",
]
