"""Customer lifetime value: BG/NBD and Pareto/NBD maximum-likelihood fits at 1,000,000 customers
(docs/analytics.md, "Customer lifetime value").

- **Data**: customers drawn from known parameters (the published CDNOW values, rescaled to days:
  BG/NBD r=0.243, alpha=30.9, a=0.793, b=2.426; Pareto/NBD r=0.553, alpha=74.1, s=0.606,
  beta=81.7), a one-quarter acquisition cohort observed until day 273, times on a whole-day grid
  as ``summary.rfm_summary`` produces them. Generation is not timed.
- **Measured**: ``bgnbd.fit`` and ``paretonbd.fit`` on the (x, t_x, T) arrays, compression
  included, best of three (the machine is shared).
- **Baseline**, same run, same customers: ``lifetimes.BetaGeoFitter`` and
  ``lifetimes.ParetoNBDFitter`` (imported here only; they are not a run-time dependency). If the
  baseline would take longer than 900 s at the full size (three times the linear projection from a
  timed probe: lifetimes' iterations grow with n), it and our fit are both measured on the first
  100,000 (or fewer) customers of the same population, and a note says so.
  Targets: BG/NBD ≤ 1 s at 1,000,000 customers; Pareto/NBD ≥ 10× faster than lifetimes.
- Both libraries must land on the same maximum: the parameters are compared (details).

``python -m bench.bench_clv [--quick|--toy]`` runs it alone and prints the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from allegiance.analytics.clv import bgnbd, paretonbd
from allegiance.analytics.clv.simulate import SimulatedRFM, on_day_grid, simulate_bgnbd, simulate_paretonbd
from bench.common import Context, Figure, Result

TITLE = "Customer lifetime value: BG/NBD and Pareto/NBD fits at 1,000,000 customers"
FULL = 1_000_000
BG_TARGET_SECONDS = 1.0
PARETO_SPEEDUP_TARGET = 10.0
BASELINE_BUDGET_SECONDS = 900.0
# lifetimes minimises the summed (not mean) negative log-likelihood with absolute tolerances, so its
# iterations grow with n: a linear projection from the probe is optimistic.
PROJECTION_SAFETY = 3.0
BG_TRUE = (0.243, 4.414 * 7, 0.793, 2.426)  # CDNOW weekly parameters in days
PARETO_TRUE = (0.553, 10.58 * 7, 0.606, 11.67 * 7)


def population(model: str, n: int, seed: int = 2024) -> SimulatedRFM:
    """``n`` customers of a one-quarter cohort observed until day 273, on a day grid."""
    rng = np.random.default_rng(seed)
    age = 273.0 - rng.integers(0, 91, n)
    if model == "bgnbd":
        return on_day_grid(simulate_bgnbd(n, *BG_TRUE, T=age, rng=rng))
    return on_day_grid(simulate_paretonbd(n, *PARETO_TRUE, T=age, rng=rng))


def _best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        begin = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - begin)
    return best, out


def _lifetimes_fit(model: str, data: SimulatedRFM, n: int) -> tuple[float, dict[str, float]]:
    """Seconds and parameters of the lifetimes fitter on the first ``n`` customers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, ParetoNBDFitter

        fitter = BetaGeoFitter() if model == "bgnbd" else ParetoNBDFitter()
        begin = time.perf_counter()
        fitter.fit(data.frequency[:n], data.recency[:n], data.T[:n])
        seconds = time.perf_counter() - begin
    return seconds, {k: float(v) for k, v in fitter.params_.to_dict().items()}


def _ours(model: str, data: SimulatedRFM, n: int, repeat: int) -> tuple[float, Any]:
    fit = bgnbd.fit if model == "bgnbd" else paretonbd.fit
    return _best_of(lambda: fit(data.frequency[:n], data.recency[:n], data.T[:n]), repeat)


def _compare(model: str, data: SimulatedRFM, n: int, probe: int, ctx: Context,
             notes: list[str]) -> dict[str, Any]:
    """Time lifetimes at ``n`` if a probe projects it within budget, else at the largest tenth-power
    subset that fits; our fit is timed on the same customers."""
    probe = min(probe, n)
    ctx.log(f"clv: {model}: lifetimes probe on {probe:,} customers")
    probe_s, _ = _lifetimes_fit(model, data, probe)
    size = n
    while size > probe and PROJECTION_SAFETY * probe_s * size / probe > BASELINE_BUDGET_SECONDS:
        size //= 10
    size = max(size, probe)
    if size < n:
        notes.append(f"{model}: lifetimes measured on the first {size:,} of {n:,} customers (a {probe:,}-customer "
                     f"probe took {probe_s:.1f} s, projecting {PROJECTION_SAFETY:.0f} × {probe_s * n / probe:,.0f} s "
                     f"at {n:,}, over the {BASELINE_BUDGET_SECONDS:.0f} s budget); our fit timed on the same "
                     f"{size:,}.")
    ctx.log(f"clv: {model}: lifetimes on {size:,} customers")
    theirs_s, theirs = (probe_s, _lifetimes_fit(model, data, size)[1]) if size == probe else \
        _lifetimes_fit(model, data, size)
    ours_s, fit = _ours(model, data, size, 3)
    ours = fit.params._asdict()
    relative = max(abs(ours[k] / theirs[k] - 1) for k in ours)
    if relative > 1e-3:
        notes.append(f"{model}: parameters differ from lifetimes by up to {relative:.1e} (relative) at {size:,}.")
    return {"customers": size, "ours_s": ours_s, "lifetimes_s": theirs_s, "ours_params": ours,
            "lifetimes_params": theirs, "max_relative_param_difference": relative,
            "ours_log_likelihood": fit.log_likelihood, "distinct_rows": fit.distinct_rows,
            "probe": {"customers": probe, "lifetimes_s": probe_s}}


def run(ctx: Context) -> Result:
    started = time.perf_counter()
    result = Result("clv", TITLE)
    n = ctx.pick(20_000, 200_000, FULL)
    details: dict[str, Any] = {"customers": n}
    notes: list[str] = []

    ctx.log(f"clv: simulating {n:,} BG/NBD and {n:,} Pareto/NBD customers")
    bg_data, pareto_data = population("bgnbd", n), population("paretonbd", n)

    bg_s, bg_fit = _ours("bgnbd", bg_data, n, 3)
    details["bgnbd"] = {"seconds": bg_s, "params": bg_fit.params._asdict(), "true": dict(zip(bg_fit.params._fields,
                        BG_TRUE, strict=True)), "iterations": bg_fit.iterations, "distinct_rows": bg_fit.distinct_rows,
                        "converged": bg_fit.converged}
    bg_cmp = _compare("bgnbd", bg_data, n, probe=ctx.pick(5_000, 20_000, 100_000), ctx=ctx, notes=notes)
    details["bgnbd_vs_lifetimes"] = bg_cmp
    at_full = n >= FULL
    if bg_cmp["customers"] == n:
        result.figures.append(Figure(
            f"BG/NBD fit, {n:,} customers (day grid), s", bg_s, "s",
            f"lifetimes.BetaGeoFitter on the same {n:,} customers, s", bg_cmp["lifetimes_s"],
            f"≤ {BG_TARGET_SECONDS:.0f} s at {FULL:,}", bg_s <= BG_TARGET_SECONDS if at_full else None))
    else:
        result.figures += [
            Figure(f"BG/NBD fit, {n:,} customers (day grid), s", bg_s, "s",
                   f"same fit on the first {bg_cmp['customers']:,}, s", bg_cmp["ours_s"],
                   f"≤ {BG_TARGET_SECONDS:.0f} s at {FULL:,}", bg_s <= BG_TARGET_SECONDS if at_full else None),
            Figure(f"BG/NBD fit, {bg_cmp['customers']:,} customers, s", bg_cmp["ours_s"], "s",
                   "lifetimes.BetaGeoFitter on the same customers, s", bg_cmp["lifetimes_s"])]

    pareto_s, pareto_fit = _ours("paretonbd", pareto_data, n, 1)
    details["paretonbd"] = {"seconds": pareto_s, "params": pareto_fit.params._asdict(),
                            "true": dict(zip(pareto_fit.params._fields, PARETO_TRUE, strict=True)),
                            "iterations": pareto_fit.iterations, "distinct_rows": pareto_fit.distinct_rows,
                            "converged": pareto_fit.converged}
    pareto_cmp = _compare("paretonbd", pareto_data, n, probe=ctx.pick(2_000, 5_000, 10_000), ctx=ctx, notes=notes)
    details["paretonbd_vs_lifetimes"] = pareto_cmp
    speedup = pareto_cmp["lifetimes_s"] / pareto_cmp["ours_s"]
    result.figures.append(
        Figure(f"Pareto/NBD fit, {pareto_cmp['customers']:,} customers (day grid), s", pareto_cmp["ours_s"], "s",
               "lifetimes.ParetoNBDFitter on the same customers, s", pareto_cmp["lifetimes_s"],
               f"≥ {PARETO_SPEEDUP_TARGET:.0f}× faster (ratio ≤ {1 / PARETO_SPEEDUP_TARGET})",
               speedup >= PARETO_SPEEDUP_TARGET))
    if pareto_cmp["customers"] != n:
        result.figures.append(Figure(f"Pareto/NBD fit, {n:,} customers (day grid), s", pareto_s, "s",
                                     "BG/NBD fit of the same number of customers, s", bg_s))
    agreement = max(bg_cmp["max_relative_param_difference"], pareto_cmp["max_relative_param_difference"])
    notes.append(f"Speed-up over lifetimes: BG/NBD {bg_cmp['lifetimes_s'] / bg_cmp['ours_s']:.0f}× at "
                 f"{bg_cmp['customers']:,} customers, Pareto/NBD {speedup:.0f}× at {pareto_cmp['customers']:,}; "
                 f"the fitted parameters agree to {agreement:.0e} (relative).")
    result.details = details
    result.notes = notes
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_clv", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true")
    sizes.add_argument("--toy", action="store_true")
    args = parser.parse_args(argv)
    mode = "toy" if args.toy else "quick" if args.quick else "default"
    with tempfile.TemporaryDirectory() as tmp:
        result = run(Context(workdir=Path(tmp), mode=mode))
    for f in result.figures:
        print(f"{f.name}: {f.value:,.3f} {f.unit} (baseline {f.baseline:,.3f}, ratio {f.ratio:.4f}, target "
              f"{f.target or '-'}, met {f.met})")
    for note in result.notes:
        print(note)


if __name__ == "__main__":
    main()
