"""Preparing rows for the writer: the same outcome from dict rows and from Parquet columns, the
stored time and fingerprint spelling, and which errors are final."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allegiance.events.model import IncomingEvent
from allegiance.events.prepare import (
    P_ERROR,
    P_FINGERPRINT,
    P_OCCURRED_AT,
    P_ORG_EXT,
    P_SOURCE_ID,
    prepare_columns,
    prepare_pairs,
    times,
    utc_text,
)
from allegiance.events.rows import PayloadChecker, RowError
from allegiance.synthetic import event_type_catalog

CHECKER = PayloadChecker(event_type_catalog())
GOOD: dict[str, Any] = {
    "source_id": "ord-1", "type": "invoice.paid", "occurred_at": "2024-03-01T10:00:00+00:00",
    "organization_external_id": "CUS-1", "participant_external_id": "P-1",
    "payload": {"invoice_id": "I-1", "order_id": "O-1", "amount_minor": 1200},
}


@pytest.mark.parametrize("text", [
    "2024-03-01T10:00:00+00:00", "2024-03-01T10:00:00Z", "2024-03-01T10:00:00-00:00", "2024-03-01T10:00:00.250+00:00",
    "2024-03-01T10:00:00+01:00", "2024-W09-5T10:00:00+00:00", "2024-03-01 10:00:00+00:00", "0999-03-01T10:00:00+00:00",
])
def test_times_spell_the_fingerprint_time_as_isoformat_and_the_stored_one_in_utc(text: str) -> None:
    at = datetime.fromisoformat(text)
    assert times(at, text) == times(at) == (at.isoformat(), utc_text(at))


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3)), timezone(timedelta(0))])))
def test_times_agree_with_datetime_for_any_time(at: datetime) -> None:
    assert times(at, at.isoformat()) == times(at) == (at.isoformat(), utc_text(at))
    assert datetime.fromisoformat(times(at)[1]).replace(tzinfo=UTC) == at


def test_a_typical_row_is_prepared_with_the_api_fingerprint_and_naive_utc_time() -> None:
    chunk = prepare_pairs([(2, GOOD)], CHECKER)
    (row,) = chunk.rows
    event = IncomingEvent("ord-1", "invoice.paid", datetime(2024, 3, 1, 10, tzinfo=UTC), GOOD["payload"],
                          organization_external_id="CUS-1", participant_external_id="P-1")
    assert (row[P_SOURCE_ID], row[P_ORG_EXT], row[P_ERROR]) == ("ord-1", "CUS-1", None)
    assert row[P_FINGERPRINT] == event.fingerprint()
    assert row[P_OCCURRED_AT] == "2024-03-01 10:00:00.000000"
    assert (chunk.rejects, chunk.count) == ([], 1)


def test_a_schema_error_waits_for_the_writer_while_shape_errors_are_final() -> None:
    chunk = prepare_pairs([
        (2, {**GOOD, "payload": {"invoice_id": "I-1"}}),                  # schema: the writer decides
        (3, {**GOOD, "type": "invoice.lost"}),                            # undeclared type: likewise
        (4, {**GOOD, "occurred_at": "2024-03-01T10:00:00"}),              # shape: final
        (5, RowError("row", "is not valid JSON")),                         # the reader's: final
        (6, {**GOOD, "payload": {"note": "a\x00b"}}),                     # unstorable: final
        (7, {**GOOD, "payload": {"note": "\ud800"}}),                     # not Unicode: final
        (8, {**GOOD, "payload": {"note": "a\\u0000 is fine as text"}}),  # a backslash, not a NUL
    ], CHECKER)
    assert [(row[0], row[P_ERROR]) for row in chunk.rows] == [
        (2, ("payload.order_id", "is required")),
        (3, ("type", "event type 'invoice.lost' is not declared in this program")),
        (8, ("payload.invoice_id", "is required"))]
    assert [(line, field, source_id) for line, field, _, source_id in chunk.rejects] == [
        (4, "occurred_at", "ord-1"), (5, "row", ""), (6, "payload", "ord-1"), (7, "payload", "ord-1")]
    assert "cannot be stored as JSON" in chunk.rejects[3][2]
    assert chunk.count == 7


def _pick(*values: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


rows = st.lists(st.fixed_dictionaries({}, optional={
    "source_id": _pick("a", "b", "", None, 5),
    "type": _pick("invoice.paid", "order.placed", "", None),
    "occurred_at": _pick("2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "soon", None,
                         datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 9, 30, 0, 5, tzinfo=UTC),
                         datetime(2024, 1, 1)),
    "organization_external_id": _pick("O-1", "", None, 3),
    "organization_id": _pick(None, "", "12", 0, 5),
    "participant_external_id": _pick("P-1", "", None),
    "participant_id": _pick(None, "7", 9),
    "payload": _pick({}, {"invoice_id": "I", "order_id": "O", "amount_minor": 1}, '{"a": 1}', "[1]", None,
                     '{"a": NaN}', "{bad"),
}), max_size=6)


@given(rows, st.booleans())
def test_parquet_columns_prepare_exactly_as_their_rows_would(raw_rows: list[dict[str, Any]], extra: bool) -> None:
    """Columns are what the Parquet reader yields: every column for every row, None where empty."""
    names = sorted({"source_id", *(name for row in raw_rows for name in row)} | ({"surplus"} if extra else set()))
    columns = {name: [row.get(name) for row in raw_rows] for name in names}
    as_rows = [(10 + i, {name: columns[name][i] for name in names}) for i in range(len(raw_rows))]
    assert prepare_columns(10, columns, CHECKER) == prepare_pairs(as_rows, CHECKER)
