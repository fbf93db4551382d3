"""Earning rules: pure evaluation with 100 active rules, import with rules against import without,
and a backtest of stored events (issue 4, section 9).

- **Evaluation**: ``evaluate()`` of a 100-rule set on prepared subjects of synthetic events, one
  core, in process. Baseline, same run, same events: the same loop with a 1-rule set. Target
  ≥ 50,000 events/s.
- **Import**: ``import_rows`` of the same synthetic events into two copies of one template, one
  with the 100-rule set active. Baseline: the copy without rules. Target: with ≥ 0.5 × without.
  Also reported, without a target: the same events into a copy with one tier ladder and no rules,
  into one with the ladder and the 100 rules, and saving the ladder over the stored events (its
  totals rebuilt) — ratios against the import without rules.
- **Backtest**: ``allegiance rules simulate --format json`` of a draft (the 100-rule set) over every
  stored event, in a child process wrapped by ``bench.maxrss`` (its wall time and peak RSS).
  Baseline: a plain keyset scan of the same events (the read the backtest cannot avoid). Target
  ≤ 60 s for 1,000,000 events, memory bounded (peak RSS reported; compared with the RSS at a tenth
  of the events).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import yaml
from sqlalchemy import func, select

from allegiance.events.rows import parse_row
from allegiance.rules.evaluate import compile_rule_set, evaluate
from allegiance.rules.model import parse_rule_set
from allegiance.storage import tables as t
from allegiance.storage.bulk_events import import_rows
from allegiance.synthetic import SynthConfig, generate, iter_event_rows
from allegiance.synthetic.products import CATEGORIES
from bench import db
from bench.bench_import import peak_rss
from bench.common import Context, Figure, Result
from bench.synth_setup import EVENTS_PER_ORGANIZATION, prepare_synthetic

TITLE = "Earning rules: evaluation, import with rules, backtest"
EVAL_TARGET = 50_000
IMPORT_RATIO_TARGET = 0.5
BACKTEST_SECONDS_TARGET = 60.0
BACKTEST_EVENTS = 1_000_000
GOAL = {"behavior": "buy more", "metric": "revenue per account", "expected_uplift": "+5 %"}
COUNTRIES = ("US", "DE", "FR", "GB", "JP", "KR", "TR", "BR", "IN", "IT", "ES", "PL")
SEGMENTS = ("small-business", "mid-market", "enterprise", "public-sector")


def hundred_rules() -> dict[str, Any]:
    """A 100-rule set shaped like a large B2B program: per-category line rules, country and segment
    rates, a volume ladder, monthly promotions (multipliers with validity windows), threshold
    bonuses, a bonus pending until the invoice is paid, returns clawing back, training benefits and
    tier credits, under a monthly per-person cap, a yearly organization cap and a rule budget."""
    rules: list[dict[str, Any]] = []

    def add(code: str, trigger: str, action: dict[str, Any], **extra: Any) -> None:
        rule = {"code": code, "name": code.replace("-", " "), "trigger": trigger, "action": action, **extra}
        if action["kind"] in ("fixed", "percent", "per_unit", "stepped"):
            rule["goal"] = GOAL
        rules.append(rule)

    for category in CATEGORIES:  # 8 × 3 = 24
        lines = {"path": "payload.lines", "conditions": [{"field": "line.category", "op": "eq", "value": category}]}
        add(f"line-{category}", "order.placed", {"kind": "per_unit", "amount": 5, "per": "line.quantity"},
            lines=lines, key="payload.order_id")
        add(f"online-{category}", "order.placed", {"kind": "per_unit", "amount": 2, "per": "line.quantity"},
            lines=lines, conditions=[{"field": "payload.channel", "op": "eq", "value": "online"}])
        add(f"dealer-{category}", "order.placed", {"kind": "per_unit", "amount": 3, "per": "line.quantity"},
            lines=lines, conditions=[{"field": "organization.kind", "op": "eq", "value": "dealer"}])
    for country in COUNTRIES:  # 12
        add(f"country-{country.lower()}", "order.placed",
            {"kind": "percent", "percent": "0.5", "of": "payload.amount_minor"},
            conditions=[{"field": "organization.country", "op": "eq", "value": country}], key="payload.order_id",
            caps=["monthly-person"])
    for segment in SEGMENTS:  # 8
        add(f"segment-{segment}", "order.placed", {"kind": "percent", "percent": "0.2", "of": "payload.amount_minor"},
            conditions=[{"field": "organization.segment", "op": "eq", "value": segment}], key="payload.order_id")
        add(f"segment-{segment}-contract", "contract.signed",
            {"kind": "percent", "percent": "0.1", "of": "payload.value_minor"},
            conditions=[{"field": "organization.segment", "op": "eq", "value": segment}])
    for year in (2024, 2025):  # 24 promotions, one a month, each a multiplier on its window
        for month in range(1, 13):
            start = datetime(year, month, 1, tzinfo=UTC)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
            add(f"promo-{year}-{month:02d}", "order.placed", {"kind": "multiplier", "factor": "1.5"},
                valid_from=start.isoformat(), valid_to=end.isoformat(),
                conditions=[{"field": "payload.channel", "op": "in", "value": ["online", "phone"]}])
    for index, threshold in enumerate((50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000)):  # 6
        add(f"big-order-{index}", "order.placed", {"kind": "fixed", "amount": 100 * (index + 1)},
            conditions=[{"field": "payload.amount_minor", "op": "gte", "value": threshold}],
            group="big-order", priority=50 - index)
    for role in ("owner", "sales_rep", "engineer", "purchasing_manager", "accountant", "other"):  # 6
        add(f"role-{role}", "training.completed", {"kind": "fixed", "amount": 50},
            conditions=[{"field": "participant.role", "op": "eq", "value": role},
                        {"field": "payload.score", "op": "gte", "value": 60}])
    add("paid-bonus", "order.placed", {"kind": "percent", "percent": "0.3", "of": "payload.amount_minor"},
        timing={"until_event": "invoice.paid", "key": "payload.order_id"}, key="payload.order_id")
    add("returns", "order.returned", {"kind": "clawback", "rules": ["paid-bonus", *[f"line-{c}" for c in CATEGORIES],
                                                                     *[f"country-{c.lower()}" for c in COUNTRIES]],
                                      "key": "payload.order_id", "amount": "payload.amount_minor"})
    add("recycling", "cartridge.recycled", {"kind": "stepped", "per": "payload.quantity", "period": "year",
                                            "steps": [{"from_quantity": 0, "amount": 10},
                                                      {"from_quantity": 50, "amount": 15}]}, caps=["budget"])
    add("certificate", "training.completed", {"kind": "benefit", "code": "certificate", "description": "Certified"},
        conditions=[{"field": "payload.score", "op": "gte", "value": 90}])
    add("training-credit", "training.completed", {"kind": "tier_credit", "amount": 10})
    add("contract-credit", "contract.signed", {"kind": "tier_credit", "percent": "0.01", "of": "payload.value_minor"})
    add("welcome-back", "order.placed", {"kind": "fixed", "amount": 25},
        conditions=[{"field": "organization.status", "op": "eq", "value": "inactive"}])
    while len(rules) < 100:  # partner-brand rules: conditions on a field most orders lack
        n = len(rules)
        add(f"brand-{n}", "order.placed", {"kind": "fixed", "amount": 10},
            conditions=[{"field": "payload.brand", "op": "eq", "value": f"b{n}"}])
    caps = [{"code": "monthly-person", "scope": "participant", "period": "month", "max_amount": 20_000},
            {"code": "yearly-org", "scope": "organization", "period": "year", "max_amount": 2_000_000},
            {"code": "budget", "scope": "rule", "period": "lifetime", "max_amount": 50_000_000, "rules": ["recycling"]}]
    document = {"rules": rules[:100], "caps": caps}
    parse_rule_set(document)
    return document


def tier_ladder() -> dict[str, Any]:
    """One organization ladder on order value over a calendar year, rolled up over the hierarchy:
    the shape most B2B programs have. Its observer requalifies the organization and every group
    above it after each event (``storage/chunk_tiers.py`` keeps that in memory during an import)."""
    orders = {"measure": "value", "event_types": ["order.placed"], "field": "payload.amount_minor"}
    return {"code": "status", "name": "Partner status", "window": {"kind": "year"}, "grace_days": 30, "tiers": [
        {"code": "member", "name": "Member"},
        {"code": "silver", "name": "Silver", "requires": [{**orders, "at_least": 1_000_000}]},
        {"code": "gold", "name": "Gold", "earn_multiplier": "2", "requires": [{**orders, "at_least": 5_000_000}]}]}


def one_rule() -> dict[str, Any]:
    return {"rules": [{"code": "base", "name": "1 % back", "trigger": "order.placed", "goal": GOAL,
                       "action": {"kind": "percent", "percent": "1", "of": "payload.amount_minor"}}]}


def _subjects(count: int) -> list[tuple[str, datetime, dict[str, Any]]]:
    """Prepared (type, occurred_at, subject) of ``count`` synthetic events, organizations and people
    attached as the live pipeline attaches them."""
    data = generate(SynthConfig(seed=7, organizations=max(1, count // EVENTS_PER_ORGANIZATION)))
    orgs = {o.external_id: {"id": i + 1, "kind": o.kind, "segment": o.segment, "country": o.country,
                            "status": o.status, "attributes": {}, "tier": None}
            for i, o in enumerate(data.organizations)}
    people = {p.external_id: {"id": i + 1, "role": p.role} for i, p in enumerate(data.participants)}
    out = []
    for index, row in enumerate(iter_event_rows(data)):
        if index >= count:
            break
        at = datetime.fromisoformat(row["occurred_at"]).astimezone(UTC)
        org = orgs.get(row.get("organization_external_id") or "", {})
        person = people.get(row.get("participant_external_id") or "", {})
        event = {"type": row["type"], "occurred_at": at.isoformat(), "id": index}
        out.append((row["type"], at, {"payload": row["payload"], "organization": org, "participant": person,
                                      "event": event}))
    return out


def _evaluation_rate(document: dict[str, Any], subjects: list[tuple[str, datetime, dict[str, Any]]]) -> float:
    compiled = compile_rule_set(parse_rule_set(document), 1)
    one = Decimal(1)
    best = 0.0
    for _ in range(3):  # best of three: the machine is shared
        begin = time.perf_counter()
        for event_type, at, subject in subjects:
            evaluate(compiled, event_type, at, subject, default_unit="PTS", tier_multiplier=one)
        best = max(best, len(subjects) / (time.perf_counter() - begin))
    return best


def _activate(url: str, program_id: int, document: dict[str, Any]) -> None:
    with db.application(url) as app, app.write() as uow:
        version = uow.rules.save(program_id, document, by="bench")["version"]
        uow.rules.activate(program_id, version, by="bench")


def _import_rate(ctx: Context, backend: str, template: str, program_id: int, rows: list[dict[str, Any]],
                 document: dict[str, Any] | None, ladder: dict[str, Any] | None = None) -> float:
    url = db.new_database(ctx, backend, "rules_import", template=template)
    try:
        if document is not None:
            _activate(url, program_id, document)
        if ladder is not None:
            with db.application(url) as app, app.write() as uow:
                uow.tiers.save_ladder(program_id, ladder, by="bench")
        with db.application(url) as app:
            begin = time.perf_counter()
            summary = import_rows(app, program_id, ((n + 2, row) for n, row in enumerate(rows)), chunk_size=2000)
            seconds = time.perf_counter() - begin
        if summary.accepted != len(rows):
            raise RuntimeError(f"import accepted {summary.accepted} of {len(rows)}: {summary.rejected[:3]}")
    finally:
        db.drop_database(ctx, url)
    return len(rows) / seconds


def _rebuild_rate(ctx: Context, backend: str, template: str, program_id: int, rows: list[dict[str, Any]]) -> float:
    """Events/s of saving a tier ladder over a program's stored events (its totals rebuilt)."""
    url = db.new_database(ctx, backend, "rules_rebuild", template=template)
    try:
        with db.application(url) as app:
            import_rows(app, program_id, ((n + 2, row) for n, row in enumerate(rows)), chunk_size=2000)
            begin = time.perf_counter()
            with app.write() as uow:
                uow.tiers.save_ladder(program_id, tier_ladder(), by="bench")
            seconds = time.perf_counter() - begin
    finally:
        db.drop_database(ctx, url)
    return len(rows) / seconds


def _scan_seconds(url: str, program_id: int) -> tuple[float, int]:
    """The floor of a backtest: reading every stored event once, in keyset-paginated chunks."""
    e = t.events
    count = 0
    begin = time.perf_counter()
    with db.application(url) as app, app.read() as uow:
        last = 0
        while True:
            rows = uow.conn.execute(select(e.c.id, e.c.occurred_at, e.c.organization_id, e.c.participant_id,
                                           e.c.payload).where(e.c.program_id == program_id, e.c.id > last)
                                    .order_by(e.c.id).limit(5000)).all()
            if not rows:
                break
            count += len(rows)
            last = rows[-1][0]
    return time.perf_counter() - begin, count


def _backtest(ctx: Context, backend: str, events: int) -> dict[str, Any]:
    ctx.log(f"rules: {backend}: {events:,} stored events for the backtest")
    syn = prepare_synthetic(ctx, backend, events)
    try:
        with db.application(syn.template.url) as app:
            summary = import_rows(app, syn.template.program_id, ((n + 2, row) for n, row in enumerate(syn.rows())))
        if summary.accepted != events:
            raise RuntimeError(f"stored {summary.accepted} of {events}")
        draft = ctx.workdir / "draft.yaml"
        draft.write_text(yaml.safe_dump(hundred_rules(), sort_keys=False))
        scan_s, scanned = _scan_seconds(syn.template.url, syn.template.program_id)
        with db.application(syn.template.url) as app, app.read() as uow:
            first, last = uow.conn.execute(select(func.min(t.events.c.occurred_at), func.max(t.events.c.occurred_at))
                                           .where(t.events.c.program_id == syn.template.program_id)).one()
        command = [db.cli(), "rules", "simulate", syn.template.slug, str(draft), "--from", first.date().isoformat(),
                   "--to", last.date().isoformat(), "--format", "json"]
        ctx.log(f"rules: {backend}: backtest in a child process")
        measured = peak_rss(command, db.server_env(syn.template.url), ctx.workdir / f"backtest_{backend}.log",
                            timeout_s=max(900, events / 500))
        if measured["exit_code"] != 0:
            raise RuntimeError(f"backtest failed: {measured['output']}")
        output = (ctx.workdir / f"backtest_{backend}.log").read_text()
        report = json.loads(output[output.index("{"):])
        if not 0 < report["events_read"] <= events:  # it reads the draft's triggers and release events only
            raise RuntimeError(f"the backtest read {report['events_read']} of {events} events")
    finally:
        db.drop_database(ctx, syn.template.url)
    return {"events": events, "events_read": report["events_read"], "seconds": measured["seconds"],
            "peak_rss_mb": measured["peak_rss_mb"],
            "scan_seconds": scan_s, "scanned": scanned, "issued": report["issued"], "awards": report["awards"],
            "caps_hit": report["caps_hit"], "never_fired": len(report["never_fired"])}


def run(ctx: Context) -> Result:
    started = time.perf_counter()
    result = Result("rules", TITLE)
    details: dict[str, Any] = {}
    hundred = hundred_rules()

    count = ctx.pick(2_000, 20_000, 50_000)
    ctx.log(f"rules: evaluation of {count:,} prepared events")
    subjects = _subjects(count)
    rate_100, rate_1 = _evaluation_rate(hundred, subjects), _evaluation_rate(one_rule(), subjects)
    details["evaluation"] = {"events": len(subjects), "rules_100_per_s": rate_100, "rules_1_per_s": rate_1}
    result.figures.append(Figure(f"evaluate() with 100 active rules, events/s ({len(subjects):,} events, 1 core)",
                                 rate_100, "events/s", "evaluate() with 1 rule, events/s", rate_1,
                                 f"≥ {EVAL_TARGET:,}/s", rate_100 >= EVAL_TARGET))

    events = ctx.pick(500, 5_000, 20_000)
    for backend in ctx.backends:
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        ctx.log(f"rules: {backend}: import of {events:,} events with and without rules")
        syn = prepare_synthetic(ctx, backend, events)
        try:
            rows = list(syn.rows())
            for row in rows:
                assert not isinstance(parse_row(row), str)
            without = _import_rate(ctx, backend, syn.template.url, syn.template.program_id, rows, None)
            with_rules = _import_rate(ctx, backend, syn.template.url, syn.template.program_id, rows, hundred)
            with_ladder = _import_rate(ctx, backend, syn.template.url, syn.template.program_id, rows, None,
                                       tier_ladder())
            with_both = _import_rate(ctx, backend, syn.template.url, syn.template.program_id, rows, hundred,
                                     tier_ladder())
            rebuild = _rebuild_rate(ctx, backend, syn.template.url, syn.template.program_id, rows)
        finally:
            db.drop_database(ctx, syn.template.url)
        details[f"import_{backend}"] = {"events": events, "without_rules_per_s": without,
                                        "with_rules_per_s": with_rules, "ladder_events": len(rows),
                                        "with_ladder_per_s": with_ladder, "with_ladder_and_rules_per_s": with_both,
                                        "ladder_rebuild_per_s": rebuild}
        result.figures.append(Figure(f"{name}: import_rows with 100 rules active, events/s ({events:,} events)",
                                     with_rules, "events/s", "import_rows without rules, events/s", without,
                                     f"ratio ≥ {IMPORT_RATIO_TARGET}", with_rules >= IMPORT_RATIO_TARGET * without))
        result.figures.append(Figure(f"{name}: import_rows with one tier ladder, no rules, events/s "
                                     f"({events:,} events)", with_ladder, "events/s",
                                     "import_rows without rules, events/s", without, "none", None))
        result.figures.append(Figure(f"{name}: import_rows with one tier ladder and 100 rules, events/s "
                                     f"({events:,} events)", with_both, "events/s",
                                     "import_rows without rules, events/s", without, "none", None))
        result.figures.append(Figure(f"{name}: saving a tier ladder over {events:,} stored events (totals rebuilt), "
                                     "events/s", rebuild, "events/s", "import_rows without rules, events/s", without,
                                     "none", None))

    backtest_events = ctx.pick(2_000, 100_000, BACKTEST_EVENTS)
    small = _backtest(ctx, "sqlite", max(1, backtest_events // 10))
    big = _backtest(ctx, "sqlite", backtest_events)
    details["backtest"] = {"small": small, "big": big}
    result.figures += [
        Figure(f"SQLite: backtest of {backtest_events:,} stored events, 100-rule draft (child process), s",
               big["seconds"], "s", "keyset scan of the same events, s", big["scan_seconds"],
               f"≤ {BACKTEST_SECONDS_TARGET:.0f} s at {BACKTEST_EVENTS:,} events",
               big["seconds"] <= BACKTEST_SECONDS_TARGET if backtest_events >= BACKTEST_EVENTS else None),
        Figure(f"SQLite: backtest peak RSS at {backtest_events:,} events", big["peak_rss_mb"], "MB",
               f"peak RSS at {small['events']:,} events", small["peak_rss_mb"], "bounded (ratio ≈ 1)", None),
    ]
    result.details = details
    result.seconds = time.perf_counter() - started
    return result
