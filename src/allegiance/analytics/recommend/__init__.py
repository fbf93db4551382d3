"""Cross-sell and up-sell recommendations (see docs/analytics.md, "Cross-sell and up-sell").

- :func:`recommend`: next best products or categories per organization, with a reason each;
- :func:`upsell` (:func:`tier_proximity`, :func:`peer_gaps`): close to the next tier, buying below peers;
- :func:`evaluate`: holdout hit rate / precision / recall against popularity baselines;
- :func:`simulate`: a co-purchase world with known segments and bundles, for honest tests.
"""

from .cross_sell import OUTPUT_SCHEMA, CrossSellModel, RecommendConfig, fit, recommend, recommend_model, top_k
from .evaluate import Evaluation, Metrics, evaluate
from .matrix import PurchaseMatrix, build_matrix
from .simulate import CoPurchaseConfig, CoPurchaseWorld, simulate
from .upsell import UPSELL_SCHEMA, peer_gaps, tier_proximity, upsell

__all__ = ["OUTPUT_SCHEMA", "UPSELL_SCHEMA", "CoPurchaseConfig", "CoPurchaseWorld", "CrossSellModel", "Evaluation",
           "Metrics", "PurchaseMatrix", "RecommendConfig", "build_matrix", "evaluate", "fit", "peer_gaps", "recommend",
           "recommend_model", "simulate", "tier_proximity", "top_k", "upsell"]
