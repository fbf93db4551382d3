"""``allegiance events import`` through the real command line (typer's CliRunner)."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from allegiance.bootstrap import Allegiance
from allegiance.cli.main import app as cli
from allegiance.storage import tables as t
from allegiance.synthetic import SynthConfig, SyntheticProgram, generate, iter_event_rows, write_dataset
from tests.conftest import TEST_SECRET, ProgramFixture
from tests.storage.test_bulk_events import seed_program, snapshot

CONFIG = SynthConfig(seed=5, organizations=10, months=4, dealers=2)


@pytest.fixture
def world(allegiance: Allegiance, program: ProgramFixture) -> SyntheticProgram:
    synthetic = generate(CONFIG)
    seed_program(allegiance, program.id, synthetic)
    return synthetic


Invoke = Callable[..., Result]


@pytest.fixture
def run(db_url: str, program: ProgramFixture) -> Invoke:
    env = {"ALLEGIANCE_DATABASE_URL": db_url, "ALLEGIANCE_ENVIRONMENT": "test", "ALLEGIANCE_SECRET_KEY": TEST_SECRET}

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["events", "import", *args, "--program", program.slug], env=env)

    return invoke


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["source_id", "type", "occurred_at", "organization_external_id",
                                                    "participant_external_id", "payload"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "payload": json.dumps(row["payload"], ensure_ascii=False)})
    return path


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def counts(stdout: str) -> dict[str, str]:
    """The summary table as {row name: value}."""
    return dict(re.findall(r"│ ([a-z/]+) +│ +([^ │]+)", stdout))


def flat(text: str) -> str:
    return " ".join(text.split())  # Rich wraps long lines at 80 columns when not on a terminal


def stored_events(app: Allegiance) -> list[tuple[Any, ...]]:
    with app.read() as uow:
        e = t.events
        return [tuple(r) for r in uow.conn.execute(
            select(e.c.source_id, e.c.type, e.c.organization_id, e.c.participant_id, e.c.occurred_at, e.c.payload,
                   e.c.payload_hash).order_by(e.c.source_id))]


@pytest.mark.parametrize("parallel", ["--parallel", "--no-parallel"])
def test_every_format_carries_the_same_events(allegiance: Allegiance, world: SyntheticProgram, run: Invoke,
                                              tmp_path: Path, parallel: str) -> None:
    """Read in this process or in a second one: the same events, the same fingerprints."""
    rows = list(iter_event_rows(world))
    write_dataset(world, tmp_path, formats=["jsonl", "parquet"])
    first = run(str(tmp_path / "events.parquet"), parallel, "--chunk-size", "100")
    assert first.exit_code == 0, first.output
    assert counts(first.stdout)["accepted"] == f"{len(rows):,}"
    events = stored_events(allegiance)
    assert [e[0] for e in events] == sorted(r["source_id"] for r in rows)
    # the same events in the other formats are duplicates, never conflicts: same parsed content
    for path in (tmp_path / "events.jsonl", write_csv(tmp_path / "events.csv", rows)):
        again = run(str(path), parallel)
        assert again.exit_code == 0, again.output
        assert (counts(again.stdout)["duplicates"], counts(again.stdout)["accepted"]) == (f"{len(rows):,}", "0")
    assert stored_events(allegiance) == events


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_bad_rows_go_to_the_rejects_file_with_their_line_while_good_rows_are_imported(
        allegiance: Allegiance, world: SyntheticProgram, run: Invoke, tmp_path: Path, fmt: str) -> None:
    good = list(iter_event_rows(world))[:6]
    bad = [
        {**good[0], "source_id": "bad-type", "type": "invoice.lost"},
        {**good[1], "source_id": "bad-field", "payload": {**good[1]["payload"], good_key(good[1]): -1}},
        {**good[2], "source_id": "bad-time", "occurred_at": "2024-13-01T00:00:00Z"},
        {**good[3], "source_id": "bad-org", "organization_external_id": "CUS-999999",
         "participant_external_id": None},
    ]
    ordered = [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3], bad[3], good[4], good[5]]
    if fmt == "jsonl":
        lines = [json.dumps(r) for r in ordered]
        lines.insert(5, '{"source_id": "broken", ')  # line 6: not JSON
        path = write_jsonl(tmp_path / "events.jsonl", lines)
        expected = {2: "type", 4: f"payload.{good_key(good[1])}", 6: "row", 7: "occurred_at",
                    9: "organization_external_id"}
    else:
        path = write_csv(tmp_path / "events.csv", ordered)  # header is line 1
        expected = {3: "type", 5: f"payload.{good_key(good[1])}", 7: "occurred_at", 9: "organization_external_id"}
    result = run(str(path))
    assert result.exit_code == 2, result.output
    with (tmp_path / f"events.{fmt}.rejects.csv").open(encoding="utf-8", newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert {int(r["line"]): r["field"] for r in rejects} == expected
    assert {r["source_id"] for r in rejects} >= {"bad-type", "bad-field", "bad-time", "bad-org"}
    stderr = flat(result.stderr)
    for line, field in list(expected.items())[:5]:
        assert f"line {line}: {field}:" in stderr
    assert f"{len(expected)} rows rejected" in stderr
    assert [e[0] for e in stored_events(allegiance)] == sorted(r["source_id"] for r in good)


def good_key(row: dict[str, Any]) -> str:
    """A payload field of this row's type that must be a non-negative integer."""
    return next(k for k in ("amount_minor", "quantity", "modules", "value_minor", "score") if k in row["payload"])


def test_a_file_unreadable_half_way_keeps_the_chunks_before_and_says_where(
        allegiance: Allegiance, world: SyntheticProgram, run: Invoke, tmp_path: Path) -> None:
    rows = list(iter_event_rows(world))[:30]
    path = write_csv(tmp_path / "events.csv", rows)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[25] = lines[25].replace(b"P-", b"\xff-", 1) if b"P-" in lines[25] else b"\xff" + lines[25]
    path.write_bytes(b"".join(lines))
    result = run(str(path), "--parallel", "--chunk-size", "10")
    assert result.exit_code == 2, result.output
    assert "line 26 is not UTF-8" in flat(result.stderr) and "run the same command again" in flat(result.stderr)
    assert [e[0] for e in stored_events(allegiance)] == sorted(r["source_id"] for r in rows[:20])


def test_replaying_the_same_file_changes_nothing_and_clears_stale_rejects(
        allegiance: Allegiance, world: SyntheticProgram, run: Invoke, tmp_path: Path) -> None:
    rows = list(iter_event_rows(world))
    path = write_jsonl(tmp_path / "events.jsonl", [json.dumps(r) for r in rows])
    stale = tmp_path / "events.jsonl.rejects.csv"
    stale.write_text("line,field,reason,source_id\n9,x,y,z\n", encoding="utf-8")
    first = run(str(path), "--chunk-size", "100")
    assert first.exit_code == 0, first.output
    assert not stale.exists()
    before = snapshot(allegiance)
    second = run(str(path), "--chunk-size", "100")
    assert second.exit_code == 0, second.output
    assert counts(second.stdout)["duplicates"] == f"{len(rows):,}"
    assert snapshot(allegiance) == before


def test_an_unreadable_file_or_unknown_program_exits_2_with_a_clear_message(
        run: Invoke, tmp_path: Path, db_url: str) -> None:
    (tmp_path / "events.xml").write_text("<events/>", encoding="utf-8")
    (tmp_path / "events.parquet").write_bytes(b"PAR1 not really")
    cases = {
        str(tmp_path / "events.xml"): "cannot tell the format of events.xml",
        str(tmp_path / "missing.jsonl"): "does not exist",
        str(tmp_path / "events.parquet"): "is not a readable Parquet file",
    }
    for path, message in cases.items():
        result = run(path)
        assert result.exit_code == 2, result.output
        assert message in flat(result.stderr)
    forced = run(str(tmp_path / "events.xml"), "--format", "jsonl")
    assert forced.exit_code == 2 and "line 1: row: is not valid JSON" in flat(forced.stderr)
    env = {"ALLEGIANCE_DATABASE_URL": db_url, "ALLEGIANCE_ENVIRONMENT": "test", "ALLEGIANCE_SECRET_KEY": TEST_SECRET}
    jsonl = write_jsonl(tmp_path / "events.jsonl", [])
    unknown = CliRunner().invoke(cli, ["events", "import", str(jsonl), "--program", "nope"], env=env)
    assert unknown.exit_code == 2 and "no program with slug 'nope'" in flat(unknown.stderr)


def test_a_reading_process_that_dies_fails_the_command_instead_of_ending_it_early(
        allegiance: Allegiance, world: SyntheticProgram, run: Invoke, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/bin/false").exists():
        pytest.skip("needs /bin/false")
    path = write_jsonl(tmp_path / "events.jsonl", [json.dumps(r) for r in iter_event_rows(world)])
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the "interpreter" exits at once, status 1
    result = run(str(path), "--parallel")
    assert result.exit_code == 1, result.output
    assert "stopped unexpectedly (exit code 1)" in flat(result.stderr)
    assert "--no-parallel" in flat(result.stderr)
    assert stored_events(allegiance) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_flat_export_with_one_column_per_payload_field_imports_the_same_events(
        allegiance: Allegiance, world: SyntheticProgram, run: Invoke, tmp_path: Path, fmt: str) -> None:
    """``payload.<field>`` columns (text in CSV; in Parquet, integer columns where every value is an
    integer) give the very events the ``payload`` JSON column gives: importing those after is all
    duplicates, no conflict."""
    import polars as pl

    from tests.events.flat_rows import cell, flattened

    rows = list(iter_event_rows(world))
    assert not any(value == "" for row in rows for value in row["payload"].values())
    flat_rows = [flattened(row, as_text=False) for row in rows]
    names = sorted({name for row in flat_rows for name in row})
    assert len([name for name in names if name.startswith("payload.")]) > 5
    columns = {name: [row.get(name) for row in flat_rows] for name in names}
    if fmt == "csv":
        path = tmp_path / "flat.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            writer.writerows({name: "" if value is None else cell(value) for name, value in row.items()}
                             for row in flat_rows)
    else:
        path = tmp_path / "flat.parquet"

        def typed(values: list[Any]) -> pl.Series:
            if all(value is None or (type(value) is int and abs(value) < 2**63) for value in values):
                return pl.Series(values, dtype=pl.Int64)
            return pl.Series([None if value is None else cell(value) for value in values], dtype=pl.String)

        frame = pl.DataFrame({name: typed(values) for name, values in columns.items()})
        assert frame.schema[next(n for n in names if n.startswith("payload.") and frame.schema[n] == pl.Int64)]
        frame.write_parquet(path)
    first = run(str(path))
    assert first.exit_code == 0, first.output
    assert counts(first.stdout)["accepted"] == f"{len(rows):,}"
    again = run(str(write_csv(tmp_path / "events.csv", rows)))
    assert again.exit_code == 0, again.output
    assert (counts(again.stdout)["duplicates"], counts(again.stdout)["accepted"]) == (f"{len(rows):,}", "0")


@pytest.mark.parametrize("parallel", ["--parallel", "--no-parallel"])
def test_times_without_an_offset_are_read_in_the_time_zone_given(
        allegiance: Allegiance, world: SyntheticProgram, run: Invoke, tmp_path: Path, parallel: str) -> None:
    """An ERP export in local wall-clock time: refused row by row without ``--timezone`` (as the API
    refuses it), stored at the right instant with it, in this process or in the reading one."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    rows = list(iter_event_rows(world))[:40]
    berlin = ZoneInfo("Europe/Berlin")
    local = [{**row, "occurred_at": datetime.fromisoformat(row["occurred_at"]).astimezone(berlin)
              .replace(tzinfo=None).isoformat(" ")} for row in rows]
    path = write_csv(tmp_path / "local.csv", local)
    refused = run(str(path), parallel)
    assert refused.exit_code == 2 and counts(refused.stdout)["rejected"] == f"{len(rows):,}"
    assert "occurred_at: must include a time zone offset" in flat(refused.stderr)
    accepted = run(str(path), parallel, "--timezone", "Europe/Berlin")
    assert accepted.exit_code == 0, accepted.output
    assert counts(accepted.stdout)["accepted"] == f"{len(rows):,}"
    stored = {e[0]: e[4] for e in stored_events(allegiance)}
    for row in rows:
        instant = stored[row["source_id"]]
        instant = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
        assert instant == datetime.fromisoformat(row["occurred_at"])


def test_an_unknown_time_zone_exits_2_before_reading_anything(run: Invoke, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "none.csv", [])
    result = run(str(path), "--timezone", "Europe/Atlantis")
    assert result.exit_code == 2
    assert "--timezone: 'Europe/Atlantis' is not a time zone name" in flat(result.stderr)
