"""The vocabulary of analytics results, light enough for every process to import: the kinds a
run stores, the document type, the run summary and the JSON conversion of a frame.

`report` (which pulls in SciPy, DuckDB, LightGBM and scikit-learn) is imported only when something
is computed, so building the application — every CLI command, every server start, every test —
does not pay for the models.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

KINDS = ("overview", "cohorts", "rfm", "clv", "churn", "health", "recommendations", "facts")
Document = dict[str, Any]


class NotEnoughData(ValueError):
    """The history is too short or too thin for this result; the message says what is missing."""


@dataclass(frozen=True)
class ProgramMoney:
    """What the ledger says the program costs: outstanding liability and the value of one point,
    both in the minor units of the currency orders are in (None when the program sets no cost)."""

    liability_minor: int = 0
    point_value_minor: float | None = None


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts: dates as ISO strings, NaN and infinities as null."""
    rows: list[dict[str, Any]] = json.loads(frame.write_json())
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                row[key] = None
    return rows


@dataclass
class RunResult:
    as_of: dt.date
    documents: dict[str, Document] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # kind -> why (not enough data)
    seconds: dict[str, float] = field(default_factory=dict)
    facts: pl.DataFrame | None = None
