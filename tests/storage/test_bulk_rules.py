"""Bulk import with rules: the chunked path (``bulk_rules._in_bulk`` on ``chunk_writes``) must leave
exactly the rows the event-by-event path leaves — events, ledger transactions and their hash chain,
postings, lots, balances, award log, cap counters, tier credits and outbox — and refuse, reject or
deduplicate the same rows. Each case imports the same file into two databases prepared identically,
once each way, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Table, func, select

import allegiance.storage.bulk_rules as bulk_rules
from allegiance.bootstrap import Allegiance, build
from allegiance.kernel.clock import FixedClock
from allegiance.kernel.errors import ValidationFailed
from allegiance.referrals.model import ReferralSettings, RegisterReferral
from allegiance.rules.engine import AwardIntent, EventContext
from allegiance.storage import tables as t
from allegiance.storage import tables_rules as r
from allegiance.storage.bulk_events import ImportSummary, import_rows
from allegiance.storage.chunk_writes import ChunkWrites
from allegiance.storage.tables_tiers import tier_credits
from allegiance.storage.verify import verify
from tests.conftest import ProgramFixture, make_settings
from tests.rules.test_simulate import draft, program_with_history
from tests.storage.overlap import import_at_once, overlapping_halves

NOW = datetime(2026, 4, 2, 12, tzinfo=UTC)
SLUG = "bulk-rules"
# Every table an import with rules writes. ``received_at`` and ``created_at`` come from the fixed clock.
TABLES: list[Table] = [t.events, t.transactions, t.postings, t.lots, t.lot_allocations, t.accounts,
                       t.account_balance_shards, t.ledger_heads, r.rule_awards, r.rule_counters, tier_credits,
                       t.outbox]
# JSON keys that hold ids, and the table each points into (for comparing across id numberings)
EVENT_IN_TEXT = re.compile(r"\(event (\d+)\)")
ID_KEYS = {"event_id": "events", "first_event_id": "events", "last_event_id": "events",
           "transaction_id": "transactions", "clawback_of": "transactions", "award_id": "rule_awards",
           "account_id": "accounts", "qualifying_event_id": "events"}


def prepared(url: str, count: int, seed: int, **build_options: Any) -> tuple[Allegiance, int, list[dict[str, Any]]]:
    """A program with the backtest's rule set active (caps, a ladder, a windowed multiplier, pending
    until payment, clawbacks, a benefit, tier credits, a count cap) and ``count`` event rows."""
    app = build(make_settings(url), clock=FixedClock(NOW), **build_options)
    with app.write() as uow:
        program_id = int(uow.programs.create_program(SLUG, "Bulk rules")["id"])
    events = program_with_history(app, ProgramFixture(program_id, SLUG, "", 0), count, seed=seed)
    with app.write() as uow:
        version = int(uow.rules.save(program_id, draft(), by="test")["version"])
        uow.rules.activate(program_id, version, by="test")
    offsets = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]
    rows = [{"source_id": f"e-{i}", "type": e["type"],
             "occurred_at": e["occurred_at"].astimezone(offsets[i % 3]).isoformat(),
             "organization_id": e["organization_id"], "participant_id": e["participant_id"],
             "payload": e["payload"]} for i, e in enumerate(events)]
    return app, program_id, rows


def with_trouble(rows: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The rows, plus what a real file brings: a repeated row, a changed repeat (a conflict), a row
    naming an unknown organization, one with a payload its type refuses — numbered as lines."""
    out = list(rows)
    out.insert(5, dict(rows[3]))  # the same event again: a duplicate
    out.insert(9, {**rows[4], "payload": {**rows[4]["payload"], "note": "changed"}})  # a conflict
    out.insert(12, {**rows[6], "source_id": "ghost", "organization_id": 999_999, "participant_id": None})
    out.insert(15, {**rows[7], "source_id": "bad-time", "occurred_at": "2026-02-30T10:00:00+00:00"})
    return list(enumerate(out, start=2))


def one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn the chunked path off: every chunk goes event by event through ``record_one``."""
    monkeypatch.setattr(bulk_rules, "_in_bulk", lambda *args, **kwargs: None)


def count_chunked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many chunk flushes the chunked path ran (to be sure it was the path under test)."""
    flushed: list[int] = []
    original = ChunkWrites.flush

    def flush(self: ChunkWrites) -> None:
        flushed.append(1)
        original(self)

    monkeypatch.setattr(ChunkWrites, "flush", flush)
    return flushed


def rows_of(app: Allegiance, tables: list[Table]) -> dict[str, list[dict[str, Any]]]:
    with app.read() as uow:
        return {table.name: [dict(row._mapping) for row in uow.conn.execute(
            select(table).order_by(*table.primary_key.columns))] for table in tables}


def canonical(tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The tables with every id replaced by its rank in its table (accounts by address), so that two
    databases that numbered rows differently (PostgreSQL sequences leave gaps) compare equal when
    they hold the same facts. Hashes and balance shards depend on the numbering: the hash chain is
    checked by ``verify`` in each database instead, shards are summed per account."""
    rank = {name: {row["id"]: index for index, row in enumerate(tables[name])}
            for name in ("events", "transactions", "postings", "lots", "rule_awards")}
    address = {row["id"]: row["address"] for row in tables["accounts"]}
    refs = {**rank, "accounts": address}

    def ref(name: str, value: Any) -> Any:
        return None if value is None else refs[name].get(value, f"unknown {name} {value}")

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ref(ID_KEYS[k], v) if k in ID_KEYS and isinstance(v, int) else walk(v)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str):  # a tier change's reason names its event: "order.placed (event 8)"
            return EVENT_IN_TEXT.sub(lambda found: f"(event {ref('events', int(found[1]))})", value)
        return value

    columns = {"event_id": "events", "transaction_id": "transactions", "reverses_id": "transactions",
               "posting_id": "postings", "lot_id": "lots", "award_id": "rule_awards", "account_id": "accounts",
               "last_transaction_id": "transactions"}
    out: dict[str, Any] = {}
    for name, rows in tables.items():
        if name == "account_balance_shards":
            totals: dict[str, int] = {}
            for row in rows:
                totals[address[row["account_id"]]] = totals.get(address[row["account_id"]], 0) + row["amount"]
            out[name] = totals
            continue
        clean = []
        for row in rows:
            row = {k: v for k, v in row.items() if k not in ("id", "hash", "prev_hash", "last_hash")}
            clean.append({k: ref(columns[k], v) if k in columns else walk(v) for k, v in row.items()})
        out[name] = sorted(clean, key=repr) if name == "accounts" else clean
    return out


def summary_of(summary: ImportSummary) -> tuple[Any, ...]:
    return (summary.accepted, summary.duplicates, summary.conflicts, summary.rejected_count,
            [tuple(reject) for reject in summary.rejected])


def import_twice_both_ways(chunked: Allegiance, program_id: int, reference: Allegiance, other_id: int,
                           file: list[tuple[int, dict[str, Any]]], chunk_size: int,
                           monkeypatch: pytest.MonkeyPatch) -> ImportSummary:
    """The file imported twice (the re-run: all duplicates) into ``chunked`` on the chunked path, then
    twice into ``reference`` event by event; the summaries must match. Returns the first one."""
    flushes = count_chunked(monkeypatch)
    first = import_rows(chunked, program_id, file, chunk_size=chunk_size)
    again = import_rows(chunked, program_id, file, chunk_size=chunk_size)
    assert flushes, "the chunked path did not run"
    one_by_one(monkeypatch)
    assert summary_of(first) == summary_of(import_rows(reference, other_id, file, chunk_size=chunk_size))
    assert summary_of(again) == summary_of(import_rows(reference, other_id, file, chunk_size=chunk_size))
    return first


def assert_same(chunked: Allegiance, reference: Allegiance, tables: list[Table] = TABLES) -> None:
    fast, slow = rows_of(chunked, tables), rows_of(reference, tables)
    for app in (chunked, reference):
        with app.read() as uow:
            report = verify(uow.conn)
        assert report.problems == []
    if chunked.db.is_sqlite:  # one writer, no sequences: the very same ids, hashes and rows
        for name in fast:
            assert fast[name] == slow[name], name
    fast_canonical, slow_canonical = canonical(fast), canonical(slow)
    for name in fast_canonical:
        assert fast_canonical[name] == slow_canonical[name], name


@pytest.mark.parametrize(("seed", "count", "chunk_size"), [(11, 160, 7), (5, 150, 50), (23, 120, 1000)])
def test_the_chunked_path_writes_what_event_by_event_writes(db_url: str, second_url: str, seed: int, count: int,
                                                            chunk_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    chunked, program_id, rows = prepared(db_url, count, seed)
    reference, other_id, same_rows = prepared(second_url, count, seed)
    assert (program_id, rows) == (other_id, same_rows)
    file = with_trouble(rows)
    try:
        first = import_twice_both_ways(chunked, program_id, reference, other_id, file, chunk_size, monkeypatch)
        assert first.accepted == count and first.duplicates == 1 and first.conflicts == 1
        assert [reject.source_id for reject in first.rejected] == ["e-4", "ghost", "bad-time"]
        with chunked.read() as uow:  # the rules did bite: clawbacks, caps, releases, tier credits
            kinds = {row.kind for row in uow.conn.execute(select(t.transactions.c.kind))}
            statuses = {row.status for row in uow.conn.execute(select(r.rule_awards.c.status))}
            capped = uow.conn.execute(select(func.sum(r.rule_awards.c.capped))).scalar_one()
        assert {"award", "adjust"} <= kinds and {"posted", "pending", "granted"} <= statuses and capped > 0
        assert_same(chunked, reference)
    finally:
        chunked.close()
        reference.close()


class RefusesOne:
    """A rule engine that refuses one event (as an observer may): its row is rejected, and the rest
    of the file is stored and awarded as usual."""

    def is_idle(self, program_id: int) -> bool:
        return False

    def evaluate(self, event: EventContext) -> list[AwardIntent]:
        if event.payload.get("order_id") == "o7" and event.type == "order.placed":
            raise ValidationFailed("refused by the engine", field="payload.order_id")
        if event.organization is None:
            return []
        return [AwardIntent(unit="PTS", amount=3, organization_id=event.organization["id"], participant_id=None,
                            rule="engine", reason=f"{event.type}")]


def test_a_refused_event_sends_its_chunk_event_by_event(db_url: str, second_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    chunked, program_id, rows = prepared(db_url, 60, 11, rules=RefusesOne())
    reference, other_id, _ = prepared(second_url, 60, 11, rules=RefusesOne())
    assert any(row["payload"].get("order_id") == "o7" for row in rows)
    try:
        first = import_rows(chunked, program_id, list(enumerate(rows, start=2)), chunk_size=20)
        one_by_one(monkeypatch)
        expected = import_rows(reference, other_id, list(enumerate(rows, start=2)), chunk_size=20)
        assert summary_of(first) == summary_of(expected)
        assert [(reject.field, reject.reason) for reject in first.rejected] == [
            ("payload.order_id", "refused by the engine")]
        assert_same(chunked, reference)
    finally:
        chunked.close()
        reference.close()


def with_referral(app: Allegiance, program_id: int) -> int:
    """Referrals on, and the program's last organization referred by a person of its first: that
    organization's first order converts it. Returns the referred organization."""
    with app.write() as uow:
        orgs = [row.id for row in uow.conn.execute(select(t.organizations.c.id).where(
            t.organizations.c.program_id == program_id).order_by(t.organizations.c.id))]
        referrer = int(uow.conn.execute(select(t.participants.c.id).where(
            t.participants.c.organization_id == orgs[0]).order_by(t.participants.c.id)).scalars().first())
        uow.referrals.set_settings(program_id, ReferralSettings(), "test")
        code = uow.referrals.code_for(program_id, referrer)["code"]
        uow.referrals.register(program_id, RegisterReferral(code=code, organization_id=orgs[-1],
                                                            contact_email="buyer@newcomer.example"), "test")
    return orgs[-1]


def test_only_a_chunk_that_may_convert_a_referral_goes_event_by_event(db_url: str, second_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """With referrals on, the chunk holding the referred organization's first order goes event by
    event (the conversion records derived events as it lands); the others run chunked; the rows
    are those of event by event throughout."""
    chunked, program_id, rows = prepared(db_url, 80, 11)
    reference, other_id, _ = prepared(second_url, 80, 11)
    referred = with_referral(chunked, program_id)
    assert with_referral(reference, other_id) == referred
    file = list(enumerate(rows, start=2))
    try:
        flushes = count_chunked(monkeypatch)
        first = import_rows(chunked, program_id, file, chunk_size=10)
        chunks = len(flushes)
        one_by_one(monkeypatch)
        expected = import_rows(reference, other_id, file, chunk_size=10)
        assert summary_of(first) == summary_of(expected)
        assert 0 < chunks < 8, "every chunk, or none, went event by event"
        with chunked.read() as uow:
            converted = uow.conn.execute(select(t.events.c.organization_id).where(
                t.events.c.type == "referral.converted")).scalars().all()
        assert sorted(converted) == sorted([referred, converted[0]]) and len(converted) == 2  # both sides, once
        assert_same(chunked, reference)
    finally:
        chunked.close()
        reference.close()


def test_two_chunked_importers_never_exceed_a_cap_nor_store_an_event_twice(db_url: str) -> None:
    """Overlapping files imported at once: each event stored and awarded once, the caps hold, the
    ledger verifies (on PostgreSQL the importers really overlap; SQLite serialises them)."""
    app, program_id, rows = prepared(db_url, 150, 5)
    try:
        results = import_at_once(app, program_id, overlapping_halves(list(enumerate(rows, start=2))), 15)
        assert len(results) == 2, "an importer raised"
        assert sum(s.accepted for s in results) == len(rows)
        assert all(s.rejected_count == 0 for s in results)
        with app.read() as uow:
            assert verify(uow.conn).problems == []
            per_event = uow.conn.execute(select(t.outbox.c.payload).where(t.outbox.c.topic == "event.recorded")).all()
            used = uow.conn.execute(select(r.rule_counters.c.name, r.rule_counters.c.amount,
                                           r.rule_counters.c.count)).all()
        assert len(per_event) == len(rows)
        caps = {cap["code"]: cap for cap in draft()["caps"]}
        for name, amount, count in used:
            cap = caps.get(name.removeprefix("cap:"))
            if cap and "max_amount" in cap:
                assert amount <= cap["max_amount"]
            if cap and "max_count" in cap:
                assert count <= cap["max_count"]
    finally:
        app.close()


def test_payload_columns_reach_the_rules_as_the_payload_column_does(db_url: str, second_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The same orders, once with ``payload.<field>`` text cells (a flat CSV) on the chunked path and
    once with payload objects event by event, under schemas that declare each field's type: the same
    awards, caps, clawbacks and ledger."""
    from tests.events.flat_rows import flattened, typed_schemas

    chunked, program_id, rows = prepared(db_url, 120, 5)
    reference, other_id, _ = prepared(second_url, 120, 5)
    try:
        for app, pid in ((chunked, program_id), (reference, other_id)):
            with app.write() as uow:
                for name, schema in typed_schemas(rows).items():
                    uow.events.declare_type(pid, name, schema)
        flushes = count_chunked(monkeypatch)
        flat = import_rows(chunked, program_id, [(line, flattened(row)) for line, row in enumerate(rows, start=2)],
                           chunk_size=40)
        assert flushes and flat.accepted == len(rows) and not flat.rejected
        one_by_one(monkeypatch)
        expected = import_rows(reference, other_id, list(enumerate(rows, start=2)), chunk_size=40)
        assert summary_of(flat) == summary_of(expected)
        assert_same(chunked, reference)
    finally:
        chunked.close()
        reference.close()


def test_times_without_an_offset_reach_the_rules_in_the_time_zone_given(db_url: str) -> None:
    from zoneinfo import ZoneInfo

    from allegiance.storage.bulk_rules import import_through_rules

    app, program_id, rows = prepared(db_url, 60, 11)
    seoul = ZoneInfo("Asia/Seoul")
    local = [{**row, "occurred_at": datetime.fromisoformat(row["occurred_at"]).astimezone(seoul)
              .replace(tzinfo=None).isoformat()} for row in rows]
    try:
        refused = import_through_rules(app, program_id, list(enumerate(local, start=2)), 25, None, None)
        assert refused.accepted == 0 and refused.rejected_count == len(rows)
        summary = import_through_rules(app, program_id, list(enumerate(local, start=2)), 25, None, None,
                                       zone="Asia/Seoul")
        assert (summary.accepted, summary.rejected_count) == (len(rows), 0)
        with app.read() as uow:
            stored = dict(uow.conn.execute(select(t.events.c.source_id, t.events.c.occurred_at)).all())
            awards = uow.conn.execute(select(func.count()).select_from(r.rule_awards)).scalar_one()
        assert awards > 0
        for row in rows:
            instant = stored[row["source_id"]]
            assert (instant if instant.tzinfo else instant.replace(tzinfo=UTC)) == datetime.fromisoformat(
                row["occurred_at"])
    finally:
        app.close()
