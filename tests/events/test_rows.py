"""One raw row → an IncomingEvent or a RowError naming the column, with the API's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allegiance.events.model import IncomingEvent
from allegiance.events.rows import PayloadChecker, RowError, loads_strict, parse_general, parse_row, to_event
from allegiance.synthetic import event_type_catalog

GOOD: dict[str, Any] = {
    "source_id": "ord-1", "type": "invoice.paid", "occurred_at": "2024-03-01T10:00:00+01:00",
    "organization_external_id": "CUS-1", "participant_external_id": "P-1",
    "payload": {"invoice_id": "I-1", "order_id": "O-1", "amount_minor": 1200},
}


def row(**changes: Any) -> dict[str, Any]:
    values = {**GOOD, **changes}
    return {k: v for k, v in values.items() if v is not ...}


def test_a_typical_row_becomes_the_event_the_api_would_build() -> None:
    event = parse_row(GOOD)
    assert event == IncomingEvent(
        source_id="ord-1", type="invoice.paid",
        occurred_at=datetime(2024, 3, 1, 10, tzinfo=timezone(timedelta(hours=1))),
        payload=GOOD["payload"], organization_external_id="CUS-1", participant_external_id="P-1")


def test_csv_shaped_rows_with_text_ids_and_a_json_payload_string_parse_the_same() -> None:
    event = parse_row({"source_id": "ord-1", "type": "invoice.paid", "occurred_at": "2024-03-01T09:00:00Z",
                       "organization_id": "12", "organization_external_id": "", "participant_id": "",
                       "participant_external_id": "", "payload": '{"amount_minor": 5}'})
    assert isinstance(event, IncomingEvent)
    assert (event.organization_id, event.organization_external_id, event.participant_id) == (12, None, None)
    assert event.payload == {"amount_minor": 5}
    assert event.occurred_at == datetime(2024, 3, 1, 9, tzinfo=UTC)


def test_a_parquet_timestamp_is_accepted_and_an_empty_payload_is_an_empty_object() -> None:
    at = datetime(2024, 3, 1, 9, tzinfo=UTC)
    event = parse_row(row(occurred_at=at, payload=None))
    assert isinstance(event, IncomingEvent)
    assert (event.occurred_at, event.payload) == (at, {})


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"source_id": ...}, "source_id", "is required"),
    ({"source_id": ""}, "source_id", "is required"),
    ({"source_id": 17}, "source_id", "must be a string"),
    ({"source_id": "x" * 201}, "source_id", "must be at most 200 characters"),
    ({"source_id": "a\x00b"}, "source_id", "must not contain a NUL character"),
    ({"type": ...}, "type", "is required"),
    ({"occurred_at": ...}, "occurred_at", "is required"),
    ({"occurred_at": "yesterday"}, "occurred_at", "'yesterday' is not an ISO-8601 date-time"),
    ({"occurred_at": "2024-03-01T10:00:00"}, "occurred_at", "must include a time zone offset"),
    ({"occurred_at": datetime(2024, 3, 1)}, "occurred_at", "must include a time zone offset"),
    ({"occurred_at": 1700000000}, "occurred_at", "must be an ISO-8601 date-time with a time zone offset"),
    ({"organization_id": "12a"}, "organization_id", "must be a positive integer"),
    ({"organization_id": 0}, "organization_id", "must be a positive integer"),
    ({"participant_id": True}, "participant_id", "must be a positive integer"),
    ({"organization_external_id": "o" * 101}, "organization_external_id", "must be at most 100 characters"),
    ({"payload": "[1, 2]"}, "payload", "must be a JSON object"),
    ({"payload": [1]}, "payload", "must be a JSON object"),
    ({"payload": '{"amount": NaN}'}, "payload", "is not valid JSON: NaN is not valid JSON"),
    ({"payload": '{"note": "a\\u0000b"}'}, "payload", "must not contain a NUL character (\\u0000)"),
    ({"organisation_id": 3}, "organisation_id", "is not a known column"),
])
def test_a_bad_row_names_its_column_and_the_reason(changes: dict[str, Any], field: str, reason: str) -> None:
    error = parse_row(row(**changes))
    assert isinstance(error, RowError)
    assert error.field == field
    assert error.reason.startswith(reason)


def test_a_csv_line_longer_than_its_header_is_refused_as_a_whole_row() -> None:
    from_csv: dict[Any, Any] = {**GOOD, None: ["surplus"]}
    assert parse_row(from_csv) == RowError("row", "has more fields than the header")


def test_the_payload_is_checked_against_the_declared_schema_naming_the_json_path() -> None:
    checker = PayloadChecker(event_type_catalog())
    bad_amount = to_event(row(payload={"invoice_id": "I-1", "order_id": "O-1", "amount_minor": -5}), checker)
    missing = to_event(row(payload={"invoice_id": "I-1", "amount_minor": 5}), checker)
    unknown_type = to_event(row(type="invoice.lost"), checker)
    assert isinstance(bad_amount, RowError) and bad_amount.field == "payload.amount_minor"
    assert "bigger than or equal to 0" in bad_amount.reason
    assert missing == RowError("payload.order_id", "is required")
    assert unknown_type == RowError("type", "event type 'invoice.lost' is not declared in this program")
    assert to_event(GOOD, checker) == parse_row(GOOD)


@pytest.mark.parametrize(("text", "reason"), [
    ('{"a": NaN}', "NaN is not valid JSON"),
    ('{"a": -Infinity}', "-Infinity is not valid JSON"),
    ('{"a": 1e400}', "1e400 is too large for a JSON number"),
    ('{"a": 1e400, "id": 12345678901234567890}', "1e400 is too large for a JSON number"),
    ('{"a": "\\ud800"}', "surrogate"),
    ('{"a": "\\udc00", "id": 12345678901234567890}', "a string is not valid Unicode"),
    ('{"a": 1,}', "Expecting property name enclosed in double quotes"),
    ('{"a": 1} x', "Extra data"),
])
def test_loads_strict_refuses_what_is_not_json_or_not_storable(text: str, reason: str) -> None:
    for form in (text, text.encode()):
        with pytest.raises(ValueError, match=reason):
            loads_strict(form)


def test_loads_strict_keeps_integers_beyond_64_bits_exact() -> None:
    big = 123456789012345678901234567890
    assert loads_strict(f'{{"n": {big}, "m": -{big}, "x": 1.5}}'.encode()) == {"n": big, "m": -big, "x": 1.5}
    assert type(loads_strict("[18446744073709551616]")[0]) is int


def _pick(*values: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


@given(st.fixed_dictionaries({}, optional={
    "source_id": _pick("a", "", None, 5, "x" * 201, "a\x00b"),
    "type": _pick("invoice.paid", "", None, 7, "t" * 101),
    "occurred_at": _pick("2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "soon", "", None, 1700000000,
                         datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1)),
    "organization_external_id": _pick("O-1", "", None, "o" * 101, 3, "o\x00"),
    "organization_id": _pick(None, "", "12", "1x", 0, 5, True),
    "participant_external_id": _pick("P-1", "", None, "p" * 101, 4),
    "participant_id": _pick(None, "", "7", 0, 9),
    "payload": _pick({}, {"a": 1}, '{"a": 1}', "[1]", "", None, '{"a": NaN}', '{"a": "\\u0000"}', [1], "{bad"),
}))
def test_the_fast_path_for_typical_rows_agrees_with_the_general_one(raw: dict[str, Any]) -> None:
    assert parse_row(raw) == parse_general(raw)


# -- payload.<field> columns ----------------------------------------------------------------------
ORDER_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "order_id": {"type": "string"}, "amount_minor": {"type": "integer"}, "rate": {"type": "number"},
    "rush": {"type": "boolean"}, "lines": {"type": "array"}, "note": {"type": ["string", "null"]},
    "discount": {"type": ["integer", "null"]},
    "site": {"type": "object", "properties": {"floor": {"type": "integer"}}}}}
FLAT_CHECKER = PayloadChecker({"order.placed": ORDER_SCHEMA})
FLAT = {"source_id": "f-1", "type": "order.placed", "occurred_at": "2024-03-01T10:00:00Z",
        "organization_external_id": "CUS-1"}


def folded(**cells: Any) -> Any:
    result = FLAT_CHECKER.fold({**FLAT, **{f"payload.{name.replace('__', '.')}": v for name, v in cells.items()}})
    return result if isinstance(result, RowError) else result["payload"]


def test_payload_columns_become_payload_fields_typed_by_the_schema() -> None:
    assert folded(order_id="00042", amount_minor="1200", rate="0.5", rush="TRUE", lines='[{"sku": "A"}]',
                  note="null", discount="null", site__floor="3", extra="7") == {
        "order_id": "00042", "amount_minor": 1200, "rate": 0.5, "rush": True, "lines": [{"sku": "A"}],
        "note": None, "discount": None, "site": {"floor": 3}, "extra": "7"}  # undeclared: text stays text
    assert folded(rate="12", rush="no", amount_minor=" 7 ") == {"rate": 12, "rush": False, "amount_minor": 7}


def test_text_that_fits_no_declared_type_stays_text_for_the_schema_check_to_name() -> None:
    assert folded(amount_minor="12.5", rush="maybe", lines="sku A", rate="+-5", discount="1e3") == {
        "amount_minor": "12.5", "rush": "maybe", "lines": "sku A", "rate": "+-5", "discount": "1e3"}
    event = to_event({**FLAT, "payload.amount_minor": "12.5"}, PayloadChecker({"order.placed": {
        **ORDER_SCHEMA, "required": ["amount_minor"]}}))
    assert isinstance(event, RowError) and event.field == "payload.amount_minor"


def test_typed_values_from_parquet_are_kept_and_empty_cells_are_absent_fields() -> None:
    assert folded(amount_minor=1200, rush=False, order_id="", lines=None) == {"amount_minor": 1200, "rush": False}


def test_payload_columns_join_the_payload_column_and_may_not_repeat_it() -> None:
    both = FLAT_CHECKER.fold({**FLAT, "payload": '{"order_id": "O-1"}', "payload.amount_minor": "5"})
    assert isinstance(both, dict) and both["payload"] == {"order_id": "O-1", "amount_minor": 5}
    twice = FLAT_CHECKER.fold({**FLAT, "payload": '{"order_id": "O-1"}', "payload.order_id": "O-2"})
    assert twice == RowError("payload.order_id", "is given twice (in the payload column too)")
    assert FLAT_CHECKER.fold({**FLAT, "payload.": "x"}) == RowError("payload.", "must name a payload field: "
                                                                                 "payload.FIELD")
    assert FLAT_CHECKER.fold({**FLAT, "payload.site": "3", "payload.site.floor": "2"}) == RowError(
        "payload.site.floor", "'site' is not an object in the payload")
    assert FLAT_CHECKER.fold({**FLAT, "payload": "[1]", "payload.a": "1"}) == RowError("payload",
                                                                                      "must be a JSON object")


def test_nested_columns_add_to_an_object_of_the_payload_column_without_changing_the_row() -> None:
    given = {"site": {"city": "Ulm"}}
    row = {**FLAT, "payload": given, "payload.site.floor": "2"}
    assert FLAT_CHECKER.fold(row)["payload"] == {"site": {"city": "Ulm", "floor": 2}}  # type: ignore[index]
    assert given == {"site": {"city": "Ulm"}} and row["payload"] is given


def test_an_unknown_column_says_how_to_give_a_payload_field() -> None:
    error = parse_row({**GOOD, "amount": "5"})
    assert isinstance(error, RowError) and error.field == "amount" and "payload.FIELD" in error.reason


SCALARS = st.one_of(st.booleans(), st.integers(-10**30, 10**30), st.text(min_size=1),
                    st.floats(allow_nan=False, allow_infinity=False), st.none())
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), SCALARS, max_size=3))


@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: "." not in k), VALUES, max_size=6))
def test_a_payload_written_as_text_cells_reads_back_equal_under_a_schema_of_its_types(payload: dict[str, Any]) -> None:
    from tests.events.flat_rows import flattened, typed_schemas

    source = {**FLAT, "payload": payload}
    checker = PayloadChecker(typed_schemas([source]))
    back = checker.fold(flattened(source))
    assert isinstance(back, dict)
    expected = {key: value for key, value in payload.items() if value != ""}  # an empty cell is an absent field
    assert back.get("payload", {}) == expected  # no payload column and no payload cell: no payload


# -- times without an offset, read in a given time zone --------------------------------------------
@pytest.mark.parametrize(("written", "zone", "utc"), [
    ("2026-12-01T09:30:00", "Europe/Berlin", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
    ("2026-07-01 09:30", "Europe/Berlin", datetime(2026, 7, 1, 7, 30, tzinfo=UTC)),  # summer time
    ("2026-07-01", "Europe/Istanbul", datetime(2026, 6, 30, 21, 0, tzinfo=UTC)),  # a date alone: midnight
    (datetime(2026, 1, 5, 12, 0), "Asia/Seoul", datetime(2026, 1, 5, 3, 0, tzinfo=UTC)),  # Parquet, naive
    ("2026-12-01T09:30:00+00:00", "Asia/Seoul", datetime(2026, 12, 1, 9, 30, tzinfo=UTC)),  # offset wins
])
def test_a_time_without_an_offset_is_read_in_the_files_time_zone(written: Any, zone: str, utc: datetime) -> None:
    event = to_event(row(occurred_at=written), PayloadChecker(event_type_catalog(), zone))
    assert isinstance(event, IncomingEvent)
    assert event.occurred_at == utc
    assert event.occurred_at.tzinfo is not None


def test_without_a_time_zone_a_time_without_offset_is_refused_and_nonsense_is_refused_either_way() -> None:
    refused = to_event(row(occurred_at="2026-12-01T09:30:00"), PayloadChecker(event_type_catalog()))
    assert refused == RowError("occurred_at", "must include a time zone offset")
    nonsense = to_event(row(occurred_at="soon"), PayloadChecker(event_type_catalog(), "Europe/Berlin"))
    assert nonsense == RowError("occurred_at", "'soon' is not an ISO-8601 date-time")


def test_known_zone() -> None:
    from allegiance.events.rows import known_zone

    assert known_zone("Europe/Istanbul") and known_zone("UTC") and known_zone("Asia/Seoul")
    assert not known_zone("Mars/Olympus") and not known_zone("") and not known_zone("../etc/passwd")
