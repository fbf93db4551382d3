"""Readers stream (line, row) pairs whose line numbers are what a person sees in the file."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allegiance.events.readers import UnreadableFile, detect_format, open_rows
from allegiance.events.rows import RowError


def read(path: Path, fmt: str | None = None) -> list[tuple[int, object]]:
    with open_rows(path, fmt) as source:
        return list(source)


def test_csv_lines_count_the_header_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "\ufeffsource_id,type,payload\n"        # 1: header, with a byte-order mark
        "a,t.x,\"{\"\"note\"\": \"\"two\n"       # 2-3: one record over two lines
        "lines\"\"}\"\n"
        "\n"                                     # 4: blank
        "b,t.y,{}\n"                             # 5
        "c,t.z,{},surplus\n"                     # 6: more fields than the header
        "d\n",                                   # 7: fewer fields
        encoding="utf-8")
    rows = read(path)
    assert [line for line, _ in rows] == [2, 5, 6, 7]
    assert rows[0][1] == {"source_id": "a", "type": "t.x", "payload": '{"note": "two\nlines"}'}
    assert rows[2][1] == {"source_id": "c", "type": "t.z", "payload": "{}", None: ["surplus"]}
    assert rows[3][1] == {"source_id": "d"}


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_a_csv_separated_by_semicolons_or_tabs_reads_as_one_separated_by_commas(tmp_path: Path,
                                                                               delimiter: str) -> None:
    """Spreadsheets where the comma is the decimal mark save CSV with semicolons; the header says which."""
    path = tmp_path / "events.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerows([["source_id", "type", "payload.amount", "payload.note"], ["a", "t.x", "12,5", "x; y, z"]])
    assert read(path) == [(2, {"source_id": "a", "type": "t.x", "payload.amount": "12,5", "payload.note": "x; y, z"})]


def test_a_csv_header_naming_a_column_twice_is_refused_before_any_row(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("source_id,type,type\na,b,c\n", encoding="utf-8")
    with pytest.raises(UnreadableFile, match="names a column twice"):
        open_rows(path)


def test_a_csv_that_is_not_utf8_fails_naming_where(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(b"source_id,type\na,b\nc,\xff\xfe\n")
    with open_rows(path) as source, pytest.raises(UnreadableFile, match="line 3 is not UTF-8"):
        list(source)
    path.write_bytes(b"source_id,\xff\n")
    with pytest.raises(UnreadableFile, match="line 1 is not UTF-8"):
        open_rows(path)
    path.write_bytes(b"")  # no header at all: read as an empty file, as before
    assert read(path) == []


def test_jsonl_lines_are_physical_lines_and_a_bad_line_is_a_row_error(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"source_id": "a"}\n'
                     b"\n"
                     b'{"source_id": "b", "oops"\n'
                     b"[1, 2]\n"
                     b'{"source_id": "c", "payload": {"v": NaN}}\n'
                     b'{"source_id": "d", "payload": {"v": "x\\u0000"}}\n'
                     b'{"source_id": "\xff"}\n'
                     b'{"source_id": "e"}')
    rows = read(path)
    assert [line for line, _ in rows] == [1, 3, 4, 5, 6, 7, 8]
    assert rows[0][1] == {"source_id": "a"}
    errors = {line: value for line, value in rows if isinstance(value, RowError)}
    assert errors[3].field == "row" and errors[3].reason.startswith("is not valid JSON")
    assert errors[4] == RowError("row", "must be a JSON object")
    assert errors[5].reason == "is not valid JSON: NaN is not valid JSON"
    assert errors[6] == RowError("payload", "must not contain a NUL character (\\u0000)")
    assert errors[7].reason.startswith("is not valid JSON")
    assert rows[-1] == (8, {"source_id": "e"})


def test_parquet_rows_are_numbered_like_a_csv_export_and_keep_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    at = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    table = pa.table({"source_id": [f"s{i}" for i in range(5)], "occurred_at": [at] * 5,
                      "payload": [json.dumps({"i": i}) for i in range(5)]},
                     schema=pa.schema([("source_id", pa.string()), ("occurred_at", pa.timestamp("us", tz="UTC")),
                                       ("payload", pa.string())]))
    pq.write_table(table, path, row_group_size=2)
    with open_rows(path, batch_size=2) as source:
        assert source.total == 5
        rows = list(source)
    assert [line for line, _ in rows] == [2, 3, 4, 5, 6]
    assert rows[4][1] == {"source_id": "s4", "occurred_at": at, "payload": '{"i": 4}'}


def test_the_format_comes_from_the_extension_unless_given(tmp_path: Path) -> None:
    assert detect_format(Path("a.CSV")) == "csv"
    assert detect_format(Path("a.ndjson")) == "jsonl"
    assert detect_format(Path("a.pq")) == "parquet"
    assert detect_format(Path("a.txt"), "jsonl") == "jsonl"
    with pytest.raises(UnreadableFile, match=r"cannot tell the format of a\.txt"):
        detect_format(Path("a.txt"))
    with pytest.raises(UnreadableFile, match="unknown format 'xml'"):
        detect_format(Path("a.csv"), "xml")


def test_missing_and_corrupt_files_are_unreadable_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="does not exist"):
        open_rows(tmp_path / "nope.jsonl")
    corrupt = tmp_path / "events.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UnreadableFile, match="not a readable Parquet file"):
        open_rows(corrupt)


@pytest.mark.parametrize(("unit", "tz"), [("s", "UTC"), ("ms", "UTC"), ("us", "UTC"), ("us", "+00:00"),
                                          ("us", "Europe/Berlin"), ("us", None), ("ns", "UTC")])
def test_parquet_column_batches_hold_what_the_rows_hold(tmp_path: Path, unit: str, tz: str | None) -> None:
    """Column batches convert UTC timestamps from their integers: the same values pyarrow makes."""
    path = tmp_path / "events.parquet"
    base = {"s": 1_709_286_330, "ms": 1_709_286_330_123, "us": 1_709_286_330_123_456,
            "ns": 1_709_286_330_123_456_000}[unit]
    values = [base, None, 0, -86_400 * {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[unit], base * 2]
    kind = pa.timestamp(unit, tz=tz)
    pq.write_table(pa.table({"source_id": ["a", "b", "c", "d", "e"], "occurred_at": pa.array(values, kind)}),
                   path, row_group_size=3)
    with open_rows(path) as source:
        rows = list(source)
    with open_rows(path) as source:
        batches = list(source.column_batches(2) or [])
    assert [first for first, _ in batches] == [2, 4, 6]
    from_batches = [(first + i, {name: column[i] for name, column in columns.items()})
                    for first, columns in batches for i in range(len(columns["source_id"]))]
    assert from_batches == rows
    expected = pa.array(values, kind).to_pylist()
    times = [row["occurred_at"] for _, row in from_batches]
    assert times == expected
    assert [str(at) for at in times] == [str(value) for value in expected]


def test_only_parquet_has_column_batches(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"source_id": "a"}\n', encoding="utf-8")
    with open_rows(path) as source:
        assert source.column_batches(10) is None


def test_parquet_values_python_cannot_hold_make_the_file_unreadable_where_they_are(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    nanoseconds = pa.array([1_000, 1_709_286_330_123_456_789], pa.timestamp("ns", tz="UTC"))
    pq.write_table(pa.table({"source_id": ["a", "b"], "occurred_at": nanoseconds}), path)
    with open_rows(path) as source, pytest.raises(UnreadableFile, match="cannot read the rows after line 1"):
        list(source)
