"""``analytics churn score|evaluate`` and ``analytics recommend list|evaluate``: the models' outputs,
and their evaluations against the baselines measured in the same run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from allegiance.analytics.results import Document, NotEnoughData
from allegiance.analytics.service import AnalyticsService
from allegiance.cli.analytics.common import (
    TABLE_LIMIT,
    AsOfOpt,
    Format,
    FormatOpt,
    Level,
    OutputOpt,
    ProgramArg,
    StoredOpt,
    churn_app,
    fmt_num,
    fmt_pct,
    load_report,
    obtain,
    recommend_app,
    require_same,
    resolve_format,
    rich_table,
    settings_with,
    write_rows,
)
from allegiance.cli.common import console, fail


# -- churn -------------------------------------------------------------------------------------------
def _churn_live(service: AnalyticsService, program_id: int, day: date) -> Document:
    """As the run scores it: the value at risk of a profile is each organization's predicted CLV."""
    frames = service.frames(program_id, day)
    settings = service.settings(program_id)
    try:
        lifetime = load_report().clv(frames, day, settings)
    except NotEnoughData:
        value = None
    else:
        value = pl.DataFrame([(r["org"], round(r["clv"] or 0)) for r in lifetime["rows"]],
                             schema={"org": pl.String(), "value_minor": pl.Int64()}, orient="row")
    return load_report().churn(frames, day, settings, value)


def churn_rows(document: Mapping[str, Any], top: int | None) -> list[dict[str, Any]]:
    rows = sorted(document["rows"], key=lambda r: (-(r.get("p_churn") or 0.0), r["org"]))
    return rows if top is None else rows[:top]


@churn_app.command("score")
def churn_score(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
                top: Annotated[int | None, typer.Option("--top", min=1, help="Only the N riskiest (a table "
                                                        f"shows {TABLE_LIMIT} unless given)")] = None,
                output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """p(churn) within the horizon per organization, the top reasons in words, the intervention
    for the main one; and the profiles at-risk organizations share."""
    chosen = resolve_format(output_format, output)
    result = obtain(program, "churn", as_of, stored, _churn_live)
    doc = result.document
    if chosen is not Format.TABLE:
        write_rows(churn_rows(doc, top), chosen, output)
        return
    rows = churn_rows(doc, top or TABLE_LIMIT)
    console.print(result.heading("churn risk", program) + f": {doc['at_risk']:,} of {len(doc['rows']):,} "
                  f"organizations at p ≥ {doc['threshold']} within {doc['horizon_days']} days (rule "
                  f"{doc['rule']}, trained on {doc['training_rows']:,} rows)", soft_wrap=True)
    table = Table("organization", "p(churn)", "reasons", "intervention")
    for row in rows:
        table.add_row(row["org"], f"{row['p_churn']:.3f}", "; ".join(row.get("reason_texts") or []),
                      row.get("intervention") or "")
    console.print(table)
    if len(rows) < len(doc["rows"]):
        console.print(f"{len(rows)} of {len(doc['rows']):,} shown (--top N, or --format csv for all)")
    if doc.get("profiles"):
        console.print(rich_table(doc["profiles"], [("profile", "profile"), ("organizations", "organizations"),
                                               ("value_at_risk_minor", "value at risk"),
                                               ("expected_loss_minor", "expected loss"),
                                               ("mean_p_churn", "mean p"), ("main_reasons", "main reasons"),
                                               ("intervention", "intervention")], title="at-risk profiles"))
    else:
        console.print("no organization is at risk, so there are no profiles")


METHODS = (("model", "model"), ("baseline_logistic_regression", "logistic regression"))
CLASSIFIER = ("auc", "precision_at_10pct", "brier", "rows", "positives")


def evaluation_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"method": key, **{m: document[key].get(m) for m in CLASSIFIER}} for key, _ in METHODS]


@churn_app.command("evaluate")
def churn_evaluate(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
                   horizon_days: Annotated[int | None, typer.Option("--horizon-days", help="Churn within this "
                                                                    "many days (default: the settings')")] = None,
                   output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """A time-split test: train on earlier cutoffs, predict the last one whose outcome is known, and
    compare the model with logistic regression on the same rows (AUC, precision@10%, Brier, calibration)."""
    chosen = resolve_format(output_format, output)

    def live(service: AnalyticsService, program_id: int, day: date) -> Document:
        overrides = {"churn_horizon_days": horizon_days} if horizon_days is not None else None
        return service.evaluate_churn(program_id, day, overrides)

    result = obtain(program, "churn", as_of, stored, live)
    doc = result.document
    if stored:
        doc = doc.get("evaluation") or {}
        if "unavailable" in doc or not doc:
            fail(f"the stored churn result has no evaluation: {doc.get('unavailable', 'not made')}")
        require_same(doc, {("horizon_days", "--horizon-days"): horizon_days})
    rows = evaluation_rows(doc)
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading("churn model evaluation", program) + f": trained on cutoffs "
                  f"{', '.join(doc['train_cutoffs'])}, tested at {doc['test_cutoff']}, horizon "
                  f"{doc['horizon_days']} days, rule {doc['rule']}", soft_wrap=True)
    table = Table("", *(label for _, label in METHODS))
    for metric, label, shown in (("auc", "AUC", 3), ("precision_at_10pct", "precision@10%", 3),
                                 ("brier", "Brier", 4), ("rows", "rows", 0), ("positives", "churned", 0)):
        table.add_row(label, *(fmt_num(doc[key].get(metric), shown) for key, _ in METHODS))
    console.print(table)
    bins: dict[tuple[float, float], dict[str, dict[str, Any]]] = {}
    for key, _ in METHODS:
        for b in doc[key].get("reliability", []):
            bins.setdefault((b["lower"], b["upper"]), {})[key] = b
    reliability = Table("predicted", *(f"{label}: {what}" for _, label in METHODS
                                       for what in ("n", "mean p", "observed")), title="reliability")
    for (lower, upper), found in sorted(bins.items()):
        cells = []
        for key, _ in METHODS:
            b = found.get(key)
            cells += [f"{b['count']:,}", fmt_num(b["mean_predicted"], 3), fmt_num(b["observed_rate"], 3)] if b else \
                ["", "", ""]
        reliability.add_row(f"{lower:.1f}–{upper:.1f}", *cells)
    console.print(reliability)


# -- recommendations ---------------------------------------------------------------------------------
LevelOpt = Annotated[Level | None, typer.Option("--level", help="sku or category (default: the settings')")]
KOpt = Annotated[int | None, typer.Option("--k", help="Recommendations per organization (default: the settings')")]
REC_OPTIONS = {"recommend_level": "--level", "recommend_k": "--k"}


@recommend_app.command("list")
def recommend_list(program: ProgramArg,
                   org: Annotated[str | None, typer.Option("--org", help="One organization's external id")] = None,
                   level: LevelOpt = None, k: KOpt = None, as_of: AsOfOpt = None, stored: StoredOpt = False,
                   output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """What each organization is likely to buy next and why (peers, items bought together)."""
    chosen = resolve_format(output_format, output)
    overrides = {"recommend_level": level.value if level else None, "recommend_k": k}

    def live(service: AnalyticsService, program_id: int, day: date) -> Document:
        settings = settings_with(service, program_id, overrides, REC_OPTIONS)
        return load_report().recommendations(service.frames(program_id, day), day, settings,
                                      service.context.tier_progress(program_id))

    result = obtain(program, "recommendations", as_of, stored, live)
    doc = result.document
    if stored:
        require_same(doc, {("level", "--level"): overrides["recommend_level"], ("k", "--k"): k})
    rows = [r for r in doc["rows"] if org is None or r["org"] == org]
    if org is not None and not rows and all(s["org"] != org for s in doc.get("upsell", [])):
        fail(f"--org: no recommendations for {org!r} (unknown organization, or nothing to recommend)")
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading(f"recommendations ({doc['level']}, top {doc['k']})", program), soft_wrap=True)
    limit = None if org is not None else TABLE_LIMIT * doc["k"]
    console.print(rich_table(rows[:limit], [("org", "organization"), ("rank", "#"), ("item", "item"),
                                        ("category", "category"), ("score", "score"), ("reason", "why")]))
    if limit is not None and len(rows) > limit:
        console.print(f"{limit} of {len(rows):,} rows shown (--org ID, or --format csv for all)")
    if org is not None:
        signals = [s for s in doc.get("upsell", []) if s["org"] == org]
        if signals:
            console.print(rich_table(signals, [("signal", "signal"), ("category", "category"), ("reason", "why")],
                                 title="up-sell signals"))


def recommendation_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per method: hit@n, precision, recall, and how many times the model's hit rate it is
    outdone by (model ÷ this method, null for the model itself)."""
    ratios = {"global_popularity": document.get("ratio_vs_global", {}),
              "segment_popularity": document.get("ratio_vs_segment", {})}
    rows = []
    for method, found in document["methods"].items():
        row: dict[str, Any] = {"method": method}
        row.update({f"hit_at_{at}": value for at, value in found["hit"].items()})
        row["precision"], row["recall"] = found["precision"], found["recall"]
        row.update({f"model_ratio_at_{at}": ratios.get(method, {}).get(at) for at in found["hit"]})
        rows.append(row)
    return rows


@recommend_app.command("evaluate")
def recommend_evaluate(program: ProgramArg, level: LevelOpt = None, k: KOpt = None, as_of: AsOfOpt = None,
                       output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """A holdout test (always live): train on the lines before the holdout, then check how often the
    model's top picks are what organizations bought for the first time, against global and segment
    popularity."""
    chosen = resolve_format(output_format, output)

    def live(service: AnalyticsService, program_id: int, day: date) -> Document:
        overrides = {key: value for key, value in (("recommend_level", level.value if level else None),
                                                   ("recommend_k", k)) if value is not None}
        return service.evaluate_recommendations(program_id, day, overrides)

    result = obtain(program, "recommendations", as_of, False, live)
    doc = result.document
    rows = recommendation_rows(doc)
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading(f"recommendation evaluation ({doc['level']}, k {doc['k']})", program)
                  + f": holdout from {doc['split_date']}, {doc['organizations']:,} organizations bought "
                  f"{fmt_num(doc['new_items_per_org'])} new items each on average ({doc['items']:,} items)",
                  soft_wrap=True)
    ats = list(doc["methods"]["model"]["hit"])
    table = Table("method", *(f"hit@{at}" for at in ats), "precision", "recall",
                  *(f"model ÷ this hit@{at}" for at in ats))
    for row in rows:
        table.add_row(row["method"].replace("_", " "), *(fmt_pct(row[f"hit_at_{at}"]) for at in ats),
                      fmt_pct(row["precision"]), fmt_pct(row["recall"]),
                      *(fmt_num(row[f"model_ratio_at_{at}"]) for at in ats))
    console.print(table)
