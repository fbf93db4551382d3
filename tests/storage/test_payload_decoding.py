"""The backtest's fast payload decoder must give exactly what ``json.loads`` gives, including the
values orjson alone would change (integers beyond 64 bits) or refuse (NaN, lone surrogates)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from allegiance.storage.rules_repo import _loads

_scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**40), max_value=10**40)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text())
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and (a == b if not isinstance(a, list | dict) else json.dumps(a) == json.dumps(b))


@given(_values)
def test_decoding_equals_the_standard_library(value: Any) -> None:
    text = json.dumps(value)
    decoded = _loads(text)
    assert _same(decoded, json.loads(text))
    assert repr(decoded) == repr(json.loads(text))


def test_values_orjson_would_change_or_refuse_are_decoded_as_json_does() -> None:
    for text in ('{"a": 123456789012345678901234567890}', '{"a": -9223372036854775809}', '{"a": NaN}',
                 '{"a": Infinity}', '{"a": 1e400}', '["\\ud800"]'):
        assert repr(_loads(text)) == repr(json.loads(text)), text
