"""Cross-sell recommendations: scale and holdout quality (docs/analytics.md, "Cross-sell and up-sell").

- **Scale**: ``fit`` + ``recommend_model`` (top 5 with reasons) on a co-purchase world of 100,000
  organizations × 1,000 products (``recommend.simulate``), one process. Baseline, same run, same
  matrix: global-popularity top 5 for every organization (a sort and a mask, the least any
  recommender must do). No project target; the figure shows the cost of personalisation.
- **Quality**: ``evaluate`` at product and category level on the co-purchase world, and at product
  level on the program generator, each against the popularity baselines measured in the same run.
  Targets: product level hit@5 ≥ 1.5 × global popularity; category level hit@3 > segment popularity.

``python -m bench.bench_recommend [--quick|--toy]`` runs it alone and prints the figures.
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from allegiance.analytics import frames
from allegiance.analytics.recommend import CoPurchaseConfig, RecommendConfig, evaluate, fit, recommend_model, simulate
from allegiance.analytics.recommend.cross_sell import top_k
from allegiance.synthetic import SynthConfig, generate
from bench.common import Context, Figure, Result

TITLE = "Cross-sell: recommend at 100k organizations × 1k products, holdout hit rate vs popularity"
SPLIT = dt.date(2025, 7, 1)
RATIO_TARGET = 1.5


def _popularity_top5(model: Any) -> float:
    start = time.perf_counter()
    for block in model.blocks():
        scores = np.broadcast_to(model.global_popularity, (len(block), len(model.target.items))).copy()
        scores[np.asarray(model.bought[block].todense()) > 0] = -np.inf
        top_k(scores, 5)
    return time.perf_counter() - start


def _scale(ctx: Context) -> dict[str, Any]:
    n = ctx.pick(2_000, 20_000, 100_000)
    ctx.log(f"recommend: co-purchase world of {n:,} organizations × 1,000 products")
    world = simulate(CoPurchaseConfig(organizations=n, products=1_000, categories=60, bundles=150, segments=6,
                                      noise_products=4.0, seed=1))
    start = time.perf_counter()
    model = fit(world.order_lines, world.organizations, RecommendConfig())
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    out = recommend_model(model, k=5)
    recommend_s = time.perf_counter() - start
    return {"organizations": n, "products": len(model.target.items), "order_lines": world.order_lines.height,
            "nnz": int(model.bought.nnz), "fit_s": fit_s, "recommend_s": recommend_s,
            "rows": out.height, "baseline_s": _popularity_top5(model),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(ctx: Context) -> Result:
    started = time.perf_counter()
    result = Result("recommend", TITLE)
    scale = _scale(ctx)
    total = scale["fit_s"] + scale["recommend_s"]
    result.figures.append(Figure(
        f"fit + recommend top 5 with reasons, {scale['organizations']:,} orgs × {scale['products']:,} products, s",
        total, "s", "global-popularity top 5, same orgs, s", scale["baseline_s"], "", None))

    seeds = ctx.pick((0,), (0, 1, 2), (0, 1, 2, 3, 4, 5))
    ctx.log(f"recommend: holdout evaluation on co-purchase worlds, seeds {seeds}")
    per_seed = []
    for seed in seeds:
        world = simulate(CoPurchaseConfig(seed=seed))
        per_seed.append((evaluate(world.order_lines, world.organizations, SPLIT, k=5, level="sku"),
                         evaluate(world.order_lines, world.organizations, SPLIT, k=5, level="category")))

    def mean(level: int, method: str, at: int) -> float:
        return float(np.mean([pair[level].hit(method, at) for pair in per_seed]))

    program = frames.from_synthetic(generate(SynthConfig(seed=7, organizations=ctx.pick(300, 1_000, 1_000),
                                                         months=24)))
    gen = evaluate(program.order_lines, program.organizations, SPLIT, k=5, level="sku")
    worlds = f"{len(seeds)} co-purchase world{'s' if len(seeds) > 1 else ''} (mean)"
    result.figures += [
        Figure(f"{worlds}, product level: hit@5 of the model", mean(0, "model", 5), "share",
               "global popularity hit@5", mean(0, "global_popularity", 5), f"ratio ≥ {RATIO_TARGET} in every world",
               all(pair[0].meets_target for pair in per_seed)),
        Figure(f"{worlds}, category level: hit@1 of the model", mean(1, "model", 1), "share",
               "segment popularity hit@1", mean(1, "segment_popularity", 1), "ratio > 1 in every world",
               all(pair[1].meets_target for pair in per_seed)),
        Figure(f"{worlds}, category level: hit@3 of the model", mean(1, "model", 3), "share",
               "segment popularity hit@3", mean(1, "segment_popularity", 3), "ratio > 1 in every world",
               all(pair[1].meets_target for pair in per_seed)),
        Figure("program generator, product level: hit@5 of the model", gen.hit("model", 5), "share",
               "global popularity hit@5", gen.hit("global_popularity", 5),
               "none: no co-purchase structure (docs/analytics.md)", None),
    ]
    result.details = {"scale": scale, "program_generator_sku": gen.as_dict(),
                      "co_purchase": {str(seed): {"sku": pair[0].as_dict(), "category": pair[1].as_dict()}
                                      for seed, pair in zip(seeds, per_seed, strict=True)}}
    result.notes.append("Quality figures are hit rates (0..1) on holdout purchases after 2025-07-01 of items the "
                        "organization had never bought; baselines rank by popularity with the same exclusion.")
    result.seconds = time.perf_counter() - started
    return result


if __name__ == "__main__":
    mode = "quick" if "--quick" in sys.argv else "toy" if "--toy" in sys.argv else "default"
    outcome = run(Context(workdir=Path(tempfile.mkdtemp(prefix="bench-recommend-")), mode=mode))
    for figure in outcome.figures:
        print(f"{figure.name[:90]:90} {figure.value:>10.3f} {figure.unit:6} baseline {figure.baseline:>10.3f} "
              f"ratio {figure.ratio:7.3f} {figure.target} {figure.met}")
    print(outcome.details["scale"])
    for seed, pair in outcome.details["co_purchase"].items():
        print(seed, {level: {m: v["hit"] for m, v in e["metrics"].items()} for level, e in pair.items()})
    print("program generator", {m: v["hit"] for m, v in outcome.details["program_generator_sku"]["metrics"].items()})
