"""The reading process yields exactly what preparing in-process yields, reports an unreadable file
where it happens, and is never mistaken for a finished file when it dies."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allegiance.events.prepare import PreparedChunk
from allegiance.events.producer import Producer, ProducerFailed, prepared_chunks
from allegiance.events.readers import UnreadableFile, open_rows
from allegiance.events.rows import PayloadChecker
from allegiance.synthetic import SynthConfig, event_type_catalog, generate, iter_event_rows

SCHEMAS = event_type_catalog()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    good = list(iter_event_rows(generate(SynthConfig(seed=4, organizations=3, months=2, dealers=1))))[:40]
    bad = [{**good[0], "source_id": "bad-type", "type": "invoice.lost"},
           {**good[1], "source_id": "bad-time", "occurred_at": "2024-02-30T10:00:00Z"},
           {**good[2], "source_id": "bad-payload", "payload": {"nothing": "declared"}}]
    return good[:10] + bad + good[10:]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "{not json\n",
                        encoding="utf-8")
    elif path.suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**r, "payload": json.dumps(r["payload"])} for r in rows)
    else:
        table = pa.table({name: [r[name] if name != "payload" else json.dumps(r[name]) for r in rows]
                          for name in rows[0]})
        pq.write_table(table, path, row_group_size=17)
    return path


@pytest.mark.parametrize("name", ["events.jsonl", "events.csv", "events.parquet"])
def test_the_process_yields_the_chunks_preparing_in_process_yields(tmp_path: Path, rows: list[dict[str, Any]],
                                                                    name: str) -> None:
    path = write(tmp_path / name, rows)
    with open_rows(path) as source:
        expected = list(prepared_chunks(source, PayloadChecker(SCHEMAS), 8))
    with open_rows(path) as source, Producer(source.path, source.format, SCHEMAS, 8) as producer:
        got = list(producer)
    assert got == expected
    assert sum(chunk.count for chunk in got) == len(rows) + (1 if name.endswith("jsonl") else 0)
    assert any(chunk.rejects for chunk in got) and any(row[3] is not None for chunk in got for row in chunk.rows)


def test_an_unreadable_line_is_reported_where_it_is_after_the_chunks_before_it(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(b"source_id,type\n" + b"".join(b"s%d,t.x\n" % i for i in range(5)) + b"s5,\xff\n" + b"s6,t\n")
    got: list[PreparedChunk] = []
    with Producer(path, "csv", SCHEMAS, 2) as producer, pytest.raises(UnreadableFile, match="line 7 is not UTF-8"):
        got.extend(producer)
    assert [chunk.count for chunk in got] == [2, 2]  # s0-s3; the chunk holding line 7 never comes


def test_a_reading_process_that_dies_is_an_error_not_the_end_of_the_file(tmp_path: Path,
                                                                         rows: list[dict[str, Any]]) -> None:
    path = write(tmp_path / "events.jsonl", rows * 50)
    with Producer(path, "jsonl", SCHEMAS, 10) as producer:
        chunks = iter(producer)
        next(chunks)
        producer._process.kill()
        with pytest.raises(ProducerFailed, match="stopped unexpectedly"):
            for _ in chunks:
                pass


def test_closing_early_stops_the_reading_process(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    path = write(tmp_path / "events.jsonl", rows * 50)
    producer = Producer(path, "jsonl", SCHEMAS, 10)
    next(iter(producer))
    producer.close()
    assert producer._process.returncode is not None
