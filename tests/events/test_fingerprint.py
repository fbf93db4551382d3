"""The API and the importer must agree that the same event is a duplicate: one fingerprint function,
fed the same values whichever way the event arrived (API body, JSON Lines, CSV, Parquet)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.api.schemas import EventIn
from allegiance.events.model import IncomingEvent, event_fingerprint
from allegiance.events.prepare import P_FINGERPRINT, P_OCCURRED_AT, P_PAYLOAD, prepare_columns, prepare_pairs
from allegiance.events.rows import PayloadChecker, loads_strict
from allegiance.kernel.hashing import canonical_json, canonical_json_bytes

text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=8)
scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63 - 4, max_value=2**64 + 4)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from([1e16, 1e-7, -0.0, 1.5e300, 5e-324, 123456789.123456789]) | text)
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=12)
payloads = st.dictionaries(text, json_values, max_size=5)
ids = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), min_size=1, max_size=10)
zones = st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(hours=14))])
times = st.datetimes(min_value=datetime(1000, 1, 1), timezones=zones)
CHECKER = PayloadChecker({"any.thing": {"type": "object"}})


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return isinstance(value, list) and any(_has_float(v) for v in value)


@given(payload=payloads, type_=ids, at=times,
       organization=st.none() | st.integers(min_value=1, max_value=2**63 - 1) | ids,
       participant=st.none() | st.integers(min_value=1, max_value=2**63 - 1) | ids)
def test_the_fingerprint_is_the_digest_of_the_canonical_json_of_the_event(
        payload: dict[str, Any], type_: str, at: datetime, organization: Any, participant: Any) -> None:
    whole = canonical_json_bytes({"type": type_, "occurred_at": at.isoformat(), "payload": payload,
                                  "organization": organization, "participant": participant})
    spelled_out = event_fingerprint(type_, at.isoformat(), organization, participant, canonical_json_bytes(payload))
    assert spelled_out == hashlib.sha256(whole).hexdigest()
    assert json.loads(whole)["payload"] == payload


@given(payloads)
def test_canonical_bytes_read_back_as_the_value_and_spell_all_but_exponent_floats_as_json_does(
        payload: dict[str, Any]) -> None:
    encoded = canonical_json_bytes(payload)
    assert json.loads(encoded) == payload
    if not _has_float(payload):  # fingerprints of such payloads are those of earlier versions
        assert encoded == canonical_json(payload).encode()


@settings(max_examples=200)
@given(payload=payloads, at=times, ascii_only=st.booleans(), person=st.none() | ids,
       source_id=ids, organization=ids)
def test_an_event_has_one_fingerprint_through_the_api_and_every_import_format(
        payload: dict[str, Any], at: datetime, ascii_only: bool, person: str | None, source_id: str,
        organization: str) -> None:
    event = {"source_id": source_id, "type": "any.thing", "occurred_at": at.isoformat(),
             "organization_external_id": organization, "participant_external_id": person, "payload": payload}
    line = json.dumps(event, ensure_ascii=ascii_only)
    # the API: Starlette's json.loads, then pydantic, then the events service's IncomingEvent
    api = IncomingEvent(**EventIn.model_validate(json.loads(line)).model_dump()).fingerprint()
    jsonl = prepare_pairs([(1, loads_strict(line.encode()))], CHECKER)
    csv = prepare_pairs([(2, {**event, "participant_external_id": person or "",
                              "payload": json.dumps(payload, ensure_ascii=ascii_only)})], CHECKER)
    parquet = prepare_columns(2, {name: [value] for name, value in
                                  {**event, "occurred_at": at, "payload": json.dumps(payload)}.items()}, CHECKER)
    for chunk in (jsonl, csv, parquet):
        assert chunk.rejects == []
        (row,) = chunk.rows
        assert row[P_FINGERPRINT] == api
        assert json.loads(row[P_PAYLOAD]) == payload
        assert row[P_OCCURRED_AT] == at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def test_known_differences_between_orjson_and_json_do_not_split_fingerprints() -> None:
    """The spellings that differ (exponents, big integers) still give one fingerprint per event."""
    at = datetime(2024, 3, 1, 9, tzinfo=UTC)
    for payload in ({"f": 1e-7}, {"f": 1e16}, {"n": 2**64 + 1}, {"s": "é\u2028\x7f\x1f"}, {"k": [1.0, -0.0]}):
        event = IncomingEvent("s", "any.thing", at, payload, organization_external_id="O")
        line = json.dumps({"source_id": "s", "type": "any.thing", "occurred_at": at.isoformat(),
                           "organization_external_id": "O", "payload": payload})
        (row,) = prepare_pairs([(1, loads_strict(line))], CHECKER).rows
        assert row[P_FINGERPRINT] == event.fingerprint()
    assert canonical_json_bytes({"f": 1e-7}) == b'{"f":1e-7}'  # json would write 1e-07
    assert canonical_json_bytes({"n": 2**64 + 1}) == b'{"n":18446744073709551617}'
