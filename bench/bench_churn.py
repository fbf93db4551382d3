"""Churn features, health score and churn-model scoring at 100,000 organizations
(docs/analytics.md, "Churn risk" and "Health score").

- **Scale**: in a child process (so its peak RSS is its own, read by ``bench.maxrss``): build the
  frames of 100,000 organizations with numpy (two years of orders, invoices, returns, complaints,
  price objections, trainings, NPS answers, loyalty-program movements and people; the event
  generator would take minutes at this size), train the churn model on two earlier cutoffs (not
  timed against the target), then time what an operator runs nightly: ``churn_features`` at the
  cutoff, ``health_scores_from_features`` and ``score_churn`` (calibrated probability and top-3
  reasons for every organization). Target: ≤ 30 s for the three at 100,000 organizations.
- **Baseline**, same run, same frames: the same features computed by a plain per-organization
  Python loop over rows already grouped by organization (grouping not timed), on a subset of
  organizations and scaled linearly to all of them; its output is checked equal to the Polars
  features on that subset, so the comparison is of the same work. Peak RSS is compared with the
  in-memory size of the input frames.

``python -m bench.bench_churn [--quick|--toy]`` runs it alone and prints the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from allegiance.analytics.churn.features import (
    CAP_DAYS,
    COMPETITOR_TYPES,
    FEATURE_NAMES,
    NOT_ENGAGEMENT,
    SEGMENTS,
    churn_features,
)
from allegiance.analytics.churn.model import (
    churn_labels,
    classifier_metrics,
    fit_churn_model,
    score_churn,
    training_set,
)
from allegiance.analytics.frames import Frames
from allegiance.analytics.scoring import health_scores_from_features
from bench.common import REPO, Context, Figure, Result

TITLE = "Churn: features, health score and churn scoring at 100,000 organizations"
TARGET_SECONDS = 30.0
TARGET_ORGS = 100_000
CUTOFF = dt.date(2025, 7, 1)
HORIZON = 90
_US_PER_DAY = 86_400_000_000
_ROLES = np.array(["owner", "purchasing_manager", "accountant", "engineer", "sales_rep", "other"])


# --- frames at scale, with numpy --------------------------------------------------------------------


def _times(us: np.ndarray) -> pl.Series:
    return pl.Series(us.astype(np.int64)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _ids(prefix: str, n: int) -> pl.Series:
    return pl.select(pl.lit(prefix) + pl.int_range(1, n + 1).cast(pl.String).str.zfill(7)).to_series()


def build_frames(n: int, seed: int = 0) -> Frames:
    """Frames of `n` customer organizations over the two years before `CUTOFF` and 180 days after.

    About 12 % of the organizations drift away: their orders thin out over 90-240 days and they
    leave (some before the cutoff, most within 180 days after it); half of those have an owner or
    purchasing manager leave first, a quarter see NPS fall, a quarter complain more.
    """
    rng = np.random.default_rng(seed)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    cut_us = int((dt.datetime(CUTOFF.year, CUTOFF.month, CUTOFF.day, tzinfo=dt.UTC) - epoch).total_seconds() * 1e6)
    start_us, end_us = cut_us - 730 * _US_PER_DAY, cut_us + 180 * _US_PER_DAY
    org_ids = _ids("ORG-", n)
    joined_us = np.where(rng.random(n) < 0.85, start_us - rng.integers(30, 3000, n) * _US_PER_DAY,
                         start_us + rng.integers(0, 600, n) * _US_PER_DAY)
    churn = rng.random(n) < 0.12
    left_us = np.where(churn, cut_us + rng.integers(-200, 180, n) * _US_PER_DAY, end_us)
    left_us = np.maximum(left_us, joined_us + 200 * _US_PER_DAY)
    churn &= left_us < end_us
    drift_us = np.where(churn, left_us - rng.integers(90, 240, n) * _US_PER_DAY, end_us)
    driver = np.where(churn, rng.integers(0, 4, n), -1)  # 0 champion, 1 nps, 2 complaints, 3 silent drift
    lo_us, hi_us = np.maximum(joined_us, start_us), np.minimum(left_us, end_us)
    span_days = np.maximum(1, (hi_us - lo_us) // _US_PER_DAY)

    def events(rate_per_day: np.ndarray, thin: bool) -> tuple[np.ndarray, np.ndarray]:
        counts = rng.poisson(rate_per_day * span_days)
        org = np.repeat(np.arange(n), counts)
        t = lo_us[org] + (rng.random(len(org)) * (hi_us[org] - lo_us[org])).astype(np.int64)
        if thin:
            fade = np.exp(-3.0 * np.clip(t - drift_us[org], 0, None) / np.maximum(1, left_us[org] - drift_us[org]))
            keep = rng.random(len(org)) < fade
            org, t = org[keep], t[keep]
        order = np.lexsort((t, org))
        return org[order], t[order]

    segment = rng.choice(np.array(SEGMENTS), n, p=[0.06, 0.1, 0.73, 0.07, 0.04])
    organizations = pl.DataFrame({
        "org": org_ids, "name": org_ids, "kind": "customer", "parent": None, "segment": segment, "country": "DE",
        "status": np.where(churn, "left", "active"), "joined_on": _times(joined_us).dt.date(),
        "left_on": _times(left_us).dt.date(),
    }).with_columns(parent=pl.lit(None, dtype=pl.String),
                    left_on=pl.when(pl.col("status") == "left").then(pl.col("left_on")))

    size = rng.pareto(1.2, n) + 1.0
    people_n = np.minimum(12, 1 + rng.poisson(np.log1p(size) * 1.5))
    first = np.concatenate([[0], np.cumsum(people_n)[:-1]])
    p_org = np.repeat(np.arange(n), people_n)
    p_rank = np.arange(len(p_org)) - first[p_org]
    role = np.where(p_rank == 0, "owner", np.where(p_rank == 1, "purchasing_manager",
                                                   rng.choice(_ROLES[2:], len(p_org))))
    p_left = np.where(rng.random(len(p_org)) < 0.15, lo_us[p_org] + (rng.random(len(p_org))
                      * (hi_us[p_org] - lo_us[p_org])).astype(np.int64), -1)
    champion = (driver[p_org] == 0) & (p_rank == np.minimum(1, people_n[p_org] - 1))
    p_left = np.where(champion, drift_us[p_org] - rng.integers(0, 90, len(p_org)) * _US_PER_DAY, p_left)
    participant_ids = _ids("P-", len(p_org))
    people = pl.DataFrame({"participant": participant_ids, "org": org_ids.gather(p_org), "role": role,
                           "status": np.where(p_left >= 0, "left", "active"),
                           "left_on": _times(np.where(p_left >= 0, p_left, 0)).dt.date()}).with_columns(
        left_on=pl.when(pl.col("status") == "left").then(pl.col("left_on")))

    def who(org: np.ndarray) -> pl.Series:
        return participant_ids.gather(first[org] + rng.integers(0, people_n[org]))

    rate = 20.0 / 730 * size ** 0.7 * rng.lognormal(0.0, 0.4, n)
    o_org, o_t = events(rate, thin=True)
    amount = (rng.lognormal(9.0, 0.8, len(o_org)) * size[o_org] ** 0.25).astype(np.int64)
    orders = pl.DataFrame({"org": org_ids.gather(o_org), "order_id": _ids("O-", len(o_org)),
                           "participant": who(o_org), "occurred_at": _times(o_t), "amount_minor": amount,
                           "channel": "online"})
    ret = rng.random(len(o_org)) < 0.03
    returns = pl.DataFrame({"org": org_ids.gather(o_org[ret]), "order_id": orders["order_id"].filter(pl.Series(ret)),
                            "occurred_at": _times(o_t[ret] + rng.integers(3, 30, ret.sum()) * _US_PER_DAY),
                            "amount_minor": amount[ret] // 2})

    parts: list[tuple[np.ndarray, np.ndarray, str]] = []
    paid = rng.random(len(o_org)) < 0.9
    parts.append((o_org[paid], o_t[paid] + rng.integers(10, 60, paid.sum()) * _US_PER_DAY, "invoice.paid"))
    angry = np.where(driver == 2, 8.0 / 365, 0.0)
    for kind, base, extra in (("complaint.opened", 0.6 / 365, angry), ("price.objection", 0.5 / 365, 0.0),
                              ("training.completed", 1.0 / 365, 0.0), ("cartridge.recycled", 2.0 / 365, 0.0)):
        a_org, a_t = events(np.full(n, base), thin=kind in ("training.completed", "cartridge.recycled"))
        parts.append((a_org, a_t, kind))
        if np.any(extra):
            e_org, e_t = events(np.asarray(extra), thin=False)
            late = e_t > drift_us[e_org] - 60 * _US_PER_DAY
            parts.append((e_org[late], e_t[late], kind))
    gone = p_left >= 0
    parts.append((p_org[gone], p_left[gone] + 12 * 3_600_000_000, "participant.left"))
    a_org = np.concatenate([p[0] for p in parts])
    a_t = np.concatenate([p[1] for p in parts])
    a_type = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    activity = pl.DataFrame({"org": org_ids.gather(a_org), "participant": who(a_org), "type": a_type,
                             "occurred_at": _times(a_t)})

    r_org, r_t = events(np.full(n, 4.0 / 365), thin=False)
    baseline = rng.normal(8.4, 0.9, n)
    falling = (driver[r_org] == 1) & (r_t > drift_us[r_org] - 90 * _US_PER_DAY)
    mean = np.where(falling, baseline[r_org] - 5.0 * np.clip((r_t - drift_us[r_org] + 90 * _US_PER_DAY)
                                                              / np.maximum(1, left_us[r_org] - drift_us[r_org]), 0, 1),
                    baseline[r_org])
    score = np.clip(np.round(rng.normal(mean, 1.0)), 0, 10).astype(np.int8)
    responses = pl.DataFrame({"org": org_ids.gather(r_org), "participant": who(r_org), "occurred_at": _times(r_t),
                              "score": score})

    earn = rng.random(len(o_org)) < 0.5
    g_org, g_t = events(np.full(n, 1.0 / 365), thin=True)
    program = pl.DataFrame({
        "org": org_ids.gather(np.concatenate([o_org[earn], g_org])),
        "participant": who(np.concatenate([o_org[earn], g_org])),
        "occurred_at": _times(np.concatenate([o_t[earn] + 3_600_000_000, g_t])),
        "kind": np.concatenate([np.full(earn.sum(), "earned"), np.full(len(g_org), "redeemed")]),
        "amount": np.concatenate([amount[earn] // 100, rng.integers(100, 2000, len(g_org))]),
    })
    order_lines = pl.DataFrame(schema={"org": pl.String, "order_id": pl.String, "occurred_at": pl.Datetime("us", "UTC"),
                                       "sku": pl.String, "category": pl.String, "quantity": pl.Int64,
                                       "value_minor": pl.Int64})
    return Frames(organizations=organizations, people=people, orders=orders, order_lines=order_lines,
                  returns=returns, activity=activity, responses=responses, program=program)


def frames_mb(frames: Frames) -> float:
    return sum(getattr(frames, name).estimated_size() for name in frames.__dataclass_fields__) / 2 ** 20


# --- the per-organization Python loop (baseline) -------------------------------------------------------


def _grouped(frame: pl.DataFrame, orgs: set[str], columns: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in frame.filter(pl.col("org").is_in(list(orgs))).select("org", *columns).iter_rows():
        out[row[0]].append(row[1:])
    return out


def prepare_loop(frames: Frames, orgs: list[str]) -> dict[str, Any]:
    """Rows of `orgs` grouped by organization: the input the loop baseline starts from (not timed)."""
    chosen = set(orgs)
    return {
        "orgs": frames.organizations.filter(pl.col("org").is_in(orgs)).sort("org").select(
            "org", "kind", "segment", "joined_on", "left_on").rows(),
        "orders": _grouped(frames.orders, chosen, ["occurred_at", "amount_minor", "participant"]),
        "returns": _grouped(frames.returns, chosen, ["occurred_at", "amount_minor"]),
        "activity": _grouped(frames.activity, chosen, ["occurred_at", "type", "participant"]),
        "responses": _grouped(frames.responses, chosen, ["occurred_at", "score"]),
        "program": _grouped(frames.program, chosen, ["occurred_at", "kind", "amount", "participant"]),
        "people": _grouped(frames.people, chosen, ["participant", "role", "left_on"]),
    }


def loop_features(data: dict[str, Any], cutoff: dt.date) -> list[dict[str, Any]]:
    """`churn_features`, one organization at a time in plain Python (the honest naive version)."""
    c = dt.datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=dt.UTC)
    d90, d120, d180, d365 = (c - dt.timedelta(days=k) for k in (90, 120, 180, 365))
    due_lo, due_hi = c - dt.timedelta(days=210), c - dt.timedelta(days=30)
    role_of = {p: r for rows in data["people"].values() for p, r, _ in rows}
    out = []
    for org, kind, segment, joined, left in data["orgs"]:
        if kind != "customer" or (joined is not None and joined > cutoff) or (left is not None and left < cutoff):
            continue
        f: dict[str, Any] = {"org": org}
        orders = [o for o in data["orders"].get(org, []) if o[0] < c]
        recent = [o for o in orders if o[0] >= d90]
        prior = [o for o in orders if d180 <= o[0] < d90]
        f["orders_90d"], f["orders_prior_90d"] = float(len(recent)), float(len(prior))
        f["order_trend"] = math.log((len(recent) + 1) / (len(prior) + 1))
        s90, sprior = sum(o[1] for o in recent) / 100, sum(o[1] for o in prior) / 100
        s180 = sum(o[1] for o in orders if o[0] >= d180) / 100
        f["spend_90d"], f["spend_prior_90d"] = s90, sprior
        f["spend_trend"] = math.log((s90 + 1) / (sprior + 1))
        f["spend_365d"] = sum(o[1] for o in orders if o[0] >= d365) / 100
        tenure = float((cutoff - joined).days) if joined is not None else float(CAP_DAYS)
        last = max((o[0] for o in orders), default=None)
        f["recency_days"] = min(float((c - last).days) if last else tenure, float(CAP_DAYS))
        returned = sum(r[1] for r in data["returns"].get(org, []) if d180 <= r[0] < c) / 100
        f["return_rate_180d"] = min(returned / s180, 1.0) if s180 > 0 else 0.0
        acts = [a for a in data["activity"].get(org, []) if d180 <= a[0] < c]
        for name, types in (("complaints", {"complaint.opened"}), ("competitor", set(COMPETITOR_TYPES))):
            r = sum(1 for a in acts if a[1] in types and a[0] >= d90)
            p = sum(1 for a in acts if a[1] in types and a[0] < d90)
            f[f"{name}_90d"], f[f"{name}_prior_90d"], f[f"{name}_trend"] = float(r), float(p), float(r - p)
        e_r = sum(1 for a in acts if a[1] not in NOT_ENGAGEMENT and a[0] >= d90)
        e_p = sum(1 for a in acts if a[1] not in NOT_ENGAGEMENT and a[0] < d90)
        f["engagement_90d"], f["engagement_trend"] = float(e_r), math.log((e_r + 1) / (e_p + 1))
        answers = sorted((r for r in data["responses"].get(org, []) if r[0] < c), key=lambda r: r[0])
        rec = [r[1] for r in answers if r[0] >= d120]
        base = [r[1] for r in answers if r[0] < d120]
        f["nps_latest"] = float(answers[-1][1]) if answers else None
        f["nps_recent"] = sum(rec) / len(rec) if rec else None
        f["nps_baseline"] = sum(base) / len(base) if base else None
        f["nps_trend"] = f["nps_recent"] - f["nps_baseline"] if rec and base else None
        prog = [g for g in data["program"].get(org, []) if d180 <= g[0] < c]
        f["program_movements_90d"] = float(sum(1 for g in prog if g[0] >= d90))
        earned = sum(g[2] for g in prog if g[0] >= d90 and g[1] == "earned")
        earned_prior = sum(g[2] for g in prog if g[0] < d90 and g[1] == "earned")
        f["program_earned_90d"] = float(earned)
        f["program_redeemed_90d"] = float(sum(g[2] for g in prog if g[0] >= d90 and g[1] == "redeemed"))
        f["program_trend"] = math.log((earned + 1) / (earned_prior + 1))
        actors = {o[2] for o in orders if o[0] >= d180} | {a[2] for a in acts} | {g[3] for g in prog}
        f["roles_engaged_180d"] = float(len({role_of[p] for p in actors if p in role_of}))
        due = sum(1 for o in orders if due_lo <= o[0] < due_hi)
        paid = sum(1 for a in acts if a[1] == "invoice.paid")
        f["paid_ratio"] = min(paid / due, 1.5) if due else None
        staff = data["people"].get(org, [])
        gone = [(r, lo) for _, r, lo in staff if lo is not None and lo < cutoff]
        recent_gone = [(r, lo) for r, lo in gone if lo >= cutoff - dt.timedelta(days=180)]
        f["headcount"] = float(len(staff) - len(gone))
        f["people_left_180d"] = float(len(recent_gone))
        key = [lo for r, lo in gone if r in ("owner", "purchasing_manager")]
        f["key_person_left_180d"] = float(any(lo >= cutoff - dt.timedelta(days=180) for lo in key))
        f["days_since_key_person_left"] = min(float((cutoff - max(key)).days), float(CAP_DAYS)) if key else float(
            CAP_DAYS)
        f["tenure_days"] = tenure
        for s in SEGMENTS:
            f[f"segment_{s}"] = float(segment == s)
        out.append(f)
    return out


def _same(loop: list[dict[str, Any]], polars_rows: pl.DataFrame) -> bool:
    expected = {r["org"]: r for r in polars_rows.to_dicts()}
    if {r["org"] for r in loop} != set(expected):
        return False
    for row in loop:
        for name in FEATURE_NAMES:
            a, b = row[name], expected[row["org"]][name]
            if (a is None) != (b is None) or (a is not None and not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)):
                return False
    return True


# --- the measured child ----------------------------------------------------------------------------


def measure(n: int, subset: int, seed: int = 0) -> dict[str, Any]:
    """Everything the figures need, measured in this process (run it in a child for its peak RSS)."""
    out: dict[str, Any] = {"organizations": n, "subset": subset}
    start = time.perf_counter()
    frames = build_frames(n, seed)
    out["build_s"] = time.perf_counter() - start
    out["frames_mb"] = frames_mb(frames)
    out["rows"] = {name: getattr(frames, name).height for name in frames.__dataclass_fields__}

    start = time.perf_counter()
    train = training_set(frames, [CUTOFF - dt.timedelta(days=180), CUTOFF - dt.timedelta(days=90)], HORIZON)
    model = fit_churn_model(train, calibration_share=0.5)
    out["train_s"], out["train_rows"] = time.perf_counter() - start, train.height

    start = time.perf_counter()
    features = churn_features(frames, CUTOFF)
    out["features_s"] = time.perf_counter() - start
    start = time.perf_counter()
    health = health_scores_from_features(features)
    out["health_s"] = time.perf_counter() - start
    start = time.perf_counter()
    scored = score_churn(model, features)
    out["score_s"] = time.perf_counter() - start
    out["scored_rows"], out["health_rows"] = scored.height, health.height

    labels = churn_labels(frames, CUTOFF, HORIZON)
    joined = scored.join(labels, on="org").join(health.select("org", "health_score"), on="org")
    y = joined["churned"].cast(pl.Int64).to_numpy()
    out["model_auc"] = classifier_metrics(y, joined["p_churn"].to_numpy()).auc
    out["health_auc"] = classifier_metrics(y, 1 - joined["health_score"].to_numpy() / 100).auc

    orgs = sorted(features["org"].sample(min(subset, features.height), seed=seed).to_list())
    data = prepare_loop(frames, orgs)
    start = time.perf_counter()
    loop = loop_features(data, CUTOFF)
    out["loop_s"] = time.perf_counter() - start
    out["loop_orgs"] = len(loop)
    out["loop_matches"] = _same(loop, features.filter(pl.col("org").is_in(orgs)))
    return out


def run(ctx: Context) -> Result:
    started = time.perf_counter()
    result = Result("churn", TITLE)
    n = ctx.pick(2_000, 20_000, TARGET_ORGS)
    subset = ctx.pick(200, 1_000, 2_000)
    ctx.log(f"churn: {n:,} organizations in a child process (loop baseline on {subset:,})")
    from bench.bench_import import peak_rss

    with tempfile.TemporaryDirectory(dir=ctx.workdir) as tmp:
        report = Path(tmp) / "churn.json"
        command = [sys.executable, "-m", "bench.bench_churn", "--child", str(n), "--subset", str(subset),
                   "--out", str(report)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        measured = peak_rss(command, env, Path(tmp) / "churn.log", timeout_s=1800)
        if measured["exit_code"] != 0:
            raise RuntimeError(f"the churn child failed: {measured['output']}")
        details = json.loads(report.read_text())
    if not details["loop_matches"]:
        raise RuntimeError("the per-organization loop and churn_features disagree: the baseline is not the same work")
    details["peak_rss_mb"] = measured["peak_rss_mb"]
    nightly = details["features_s"] + details["health_s"] + details["score_s"]
    loop_scaled = details["loop_s"] * details["scored_rows"] / max(1, details["loop_orgs"])
    result.figures += [
        Figure(f"churn_features + health score + churn scoring (p and top-3 reasons), {n:,} orgs, s", nightly, "s",
               f"per-org Python loop, features only, measured on {details['loop_orgs']:,} orgs and scaled, s",
               loop_scaled, f"≤ {TARGET_SECONDS:.0f} s at {TARGET_ORGS:,} orgs",
               nightly <= TARGET_SECONDS if n >= TARGET_ORGS else None),
        Figure(f"churn_features alone, {n:,} orgs, s", details["features_s"], "s",
               "per-org Python loop, same features (checked equal), scaled, s", loop_scaled, "", None),
        Figure(f"peak RSS of the child (frames built, model trained, {n:,} orgs scored), MB",
               details["peak_rss_mb"], "MB", "in-memory size of the input frames, MB", details["frames_mb"], "", None),
    ]
    result.details = details
    result.notes.append(
        f"Frames: {sum(details['rows'].values()):,} rows built with numpy in {details['build_s']:.1f} s; the churn "
        f"model was trained on {details['train_rows']:,} rows (two earlier cutoffs) in {details['train_s']:.1f} s, "
        f"not counted in the target. Same-run sanity: model AUC {details['model_auc']:.3f}, health-score AUC "
        f"{details['health_auc']:.3f} at the cutoff, horizon {HORIZON} days.")
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_churn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--subset", type=int, default=2_000, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true")
    sizes.add_argument("--toy", action="store_true")
    args = parser.parse_args(argv)
    if args.child is not None:
        (args.out or Path("churn.json")).write_text(json.dumps(measure(args.child, args.subset), default=str))
        return
    mode = "toy" if args.toy else "quick" if args.quick else "default"
    with tempfile.TemporaryDirectory() as tmp:
        result = run(Context(workdir=Path(tmp), mode=mode))
    for f in result.figures:
        print(f"{f.name}: {f.value:,.2f} {f.unit} (baseline {f.baseline:,.2f}, ratio {f.ratio:.3f}, target "
              f"{f.target or '-'}, met {f.met})")
    for note in result.notes:
        print(note)


if __name__ == "__main__":
    main()
