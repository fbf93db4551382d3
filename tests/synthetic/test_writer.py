"""The writer's Parquet and JSON Lines files hold exactly what the generator produced."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allegiance.synthetic import (
    EVENT_COLUMNS,
    EventRecord,
    OrganizationRecord,
    ParticipantRecord,
    SynthConfig,
    SyntheticProgram,
    generate,
    iter_event_rows,
    write_dataset,
)
from allegiance.synthetic.writer import ORGANIZATION_SCHEMA, PARTICIPANT_SCHEMA

CONFIG = SynthConfig(seed=3, organizations=40, months=6)
TABLES = ("organizations", "participants", "events")


@pytest.fixture(scope="module")
def program() -> SyntheticProgram:
    return generate(CONFIG)


@pytest.fixture(scope="module")
def rows(program: SyntheticProgram) -> list[dict[str, Any]]:
    return list(iter_event_rows(program))


@pytest.fixture(scope="module")
def written(program: SyntheticProgram, tmp_path_factory: pytest.TempPathFactory,
            ) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("dataset")
    return out, write_dataset(program, out)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _parquet_event_rows(path: Path) -> list[dict[str, Any]]:
    """Parquet rows in the JSON-ready shape of iter_event_rows."""
    out = []
    for row in pq.read_table(path).to_pylist():
        row["occurred_at"] = row["occurred_at"].isoformat()
        row["payload"] = json.loads(row["payload"])
        out.append(row)
    return out


def test_counts_match_the_program(written: tuple[Path, dict[str, int]], program: SyntheticProgram,
                                  rows: list[dict[str, Any]]) -> None:
    out, counts = written
    assert counts == {"organizations": len(program.organizations),
                      "participants": len(program.participants), "events": len(rows)}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{t}.{fmt}" for t in TABLES for fmt in ("parquet", "jsonl"))


def test_event_rows_are_flat_and_json_ready(rows: list[dict[str, Any]]) -> None:
    assert all(tuple(r) == EVENT_COLUMNS for r in rows)
    first = rows[0]
    assert dt.datetime.fromisoformat(first["occurred_at"]).utcoffset() == dt.timedelta(0)
    assert json.loads(json.dumps(rows)) == rows


def test_events_round_trip_through_both_formats(written: tuple[Path, dict[str, int]],
                                                rows: list[dict[str, Any]]) -> None:
    out, _ = written
    schema = pq.read_schema(out / "events.parquet")
    assert tuple(schema.names) == EVENT_COLUMNS
    assert schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("payload").type == pa.string()
    assert _parquet_event_rows(out / "events.parquet") == rows
    assert _jsonl(out / "events.jsonl") == rows


def test_organizations_and_participants_round_trip(written: tuple[Path, dict[str, int]],
                                                   program: SyntheticProgram) -> None:
    out, _ = written
    orgs = [dataclasses.asdict(o) for o in program.organizations]
    people = [dataclasses.asdict(p) for p in program.participants]
    assert pq.read_table(out / "organizations.parquet").to_pylist() == orgs
    assert pq.read_table(out / "participants.parquet").to_pylist() == people

    def iso(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in record.items()}

    assert _jsonl(out / "organizations.jsonl") == [iso(o) for o in orgs]
    assert _jsonl(out / "participants.jsonl") == [iso(p) for p in people]
    text = (out / "participants.jsonl").read_text(encoding="utf-8")
    assert not text.isascii() and "\\u" not in text  # names are UTF-8, not \\u escapes


def test_tiny_chunks_write_the_same_content(written: tuple[Path, dict[str, int]],
                                            program: SyntheticProgram, tmp_path: Path) -> None:
    out, counts = written
    assert write_dataset(program, tmp_path, chunk_rows=7) == counts
    assert pq.ParquetFile(tmp_path / "events.parquet").metadata.num_row_groups > 1
    for table in TABLES:
        assert (pq.read_table(tmp_path / f"{table}.parquet")
                == pq.read_table(out / f"{table}.parquet"))
        assert (tmp_path / f"{table}.jsonl").read_bytes() == (out / f"{table}.jsonl").read_bytes()


def test_the_same_config_writes_byte_identical_files(written: tuple[Path, dict[str, int]],
                                                     tmp_path: Path) -> None:
    out, _ = written
    write_dataset(generate(CONFIG), tmp_path)
    for table in TABLES:
        for fmt in ("parquet", "jsonl"):
            name = f"{table}.{fmt}"
            assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_one_format_can_be_chosen(program: SyntheticProgram, tmp_path: Path) -> None:
    write_dataset(program, tmp_path, formats=["jsonl"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.jsonl" for t in TABLES)


@pytest.mark.parametrize(("formats", "chunk_rows"), [(["csv"], 10), ([], 10), (["jsonl"], 0)])
def test_bad_arguments_are_refused_before_writing(program: SyntheticProgram, tmp_path: Path,
                                                  formats: list[str], chunk_rows: int) -> None:
    with pytest.raises(ValueError):
        write_dataset(program, tmp_path / "out", formats=formats, chunk_rows=chunk_rows)
    assert not (tmp_path / "out").exists()


def test_a_failing_stream_leaves_no_partial_events_file(program: SyntheticProgram,
                                                        tmp_path: Path) -> None:
    # given a stream that breaks half-way
    def broken() -> Any:
        yield from list(program.events())[:5]
        raise RuntimeError("source failed")

    failing = dataclasses.replace(program, event_source=broken)
    # when
    with pytest.raises(RuntimeError):
        write_dataset(failing, tmp_path)
    # then the complete tables are there, the broken one is not
    assert not (tmp_path / "events.parquet").exists()
    assert not (tmp_path / "events.jsonl").exists()
    assert (tmp_path / "organizations.parquet").exists()


def test_schemas_cover_every_record_field() -> None:
    assert ORGANIZATION_SCHEMA.names == [f.name for f in dataclasses.fields(OrganizationRecord)]
    assert PARTICIPANT_SCHEMA.names == [f.name for f in dataclasses.fields(ParticipantRecord)]
    assert EventRecord._fields == EVENT_COLUMNS
