"""Segments: saved, validated queries over what analytics knows about each organization.

"Gold customers with churn risk above 0.6 that have a purchasing manager" is a list of conditions
over an *organization facts* frame, one row per organization, built by the analytics run from the
operational data and the models (tier, churn risk, health score, RFM segment, CLV, roles present).
A definition is validated when saved — an unknown field or operator is refused with the path of
the bad part — so a segment cannot silently match nobody because of a typo.

Membership is recomputed with every analytics run and written to the organization's attributes
under ``segments``, which is how earning rules use it (``organization.attributes.segments``
``contains`` ``at-risk-gold``) and, later, campaigns.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from allegiance.rules.model import Op  # the rule language's operators: one vocabulary for conditions

CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")

# field -> polars dtype family ("num", "str", "list"): the columns of the facts frame a segment may use.
FACT_FIELDS: dict[str, str] = {
    "kind": "str", "segment": "str", "country": "str", "status": "str", "tier": "str",
    "rfm_segment": "str", "churn_risk": "num", "health_score": "num", "clv": "num", "revenue_12m": "num",
    "orders_12m": "num", "days_since_last_order": "num", "nps": "num", "people": "num", "roles": "list",
}
FACT_SCHEMA: dict[str, pl.DataType] = {
    "org": pl.String(), **{name: (pl.Float64() if family == "num" else pl.List(pl.String()) if family == "list"
                                  else pl.String()) for name, family in FACT_FIELDS.items()},
}


NUMERIC_OPS = {Op.GT, Op.GTE, Op.LT, Op.LTE}


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: Op
    value: Any = None

    @field_validator("field")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in FACT_FIELDS:
            raise ValueError(f"unknown field; one of {', '.join(sorted(FACT_FIELDS))}")
        return value

    @model_validator(mode="after")
    def _fits(self) -> Condition:
        family = FACT_FIELDS[self.field]
        if self.op in NUMERIC_OPS and (family != "num" or isinstance(self.value, bool)
                                       or not isinstance(self.value, int | float)):
            raise ValueError(f"{self.op.value} needs a numeric field and a number")
        if self.op is Op.CONTAINS and (family != "list" or not isinstance(self.value, str)):
            raise ValueError("contains needs a list field (roles) and a string")
        if self.op in (Op.IN, Op.NOT_IN) and not isinstance(self.value, list):
            raise ValueError(f"{self.op.value} needs a list value")
        if self.op is Op.EXISTS and not isinstance(self.value, bool | None):
            raise ValueError("exists takes true or false")
        return self


class Segment(BaseModel):
    """All conditions must hold (an empty list matches every organization)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    conditions: list[Condition] = Field(default_factory=list)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CODE.match(value):
            raise ValueError("must be 1-60 lowercase letters, digits, '-' or '_'")
        return value


class SegmentSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    segments: list[Segment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SegmentSet:
        codes = [s.code for s in self.segments]
        duplicated = sorted({c for c in codes if codes.count(c) > 1})
        if duplicated:
            raise ValueError(f"duplicate segment codes: {', '.join(duplicated)}")
        return self


class SegmentInvalid(ValueError):
    """A definition that cannot be saved; ``field`` is the dotted path of the first bad part."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def parse_segments(document: dict[str, Any]) -> SegmentSet:
    try:
        return SegmentSet.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
        raise SegmentInvalid(error["msg"].removeprefix("Value error, "), path or "segments") from None


def _expression(condition: Condition) -> pl.Expr:
    column = pl.col(condition.field)
    value = condition.value
    match condition.op:
        case Op.EQ:
            return column == value
        case Op.NE:
            return column.is_null() | (column != value)
        case Op.IN:
            return column.is_in(value)
        case Op.NOT_IN:
            return column.is_null() | ~column.is_in(value)
        case Op.GT:
            return column > value
        case Op.GTE:
            return column >= value
        case Op.LT:
            return column < value
        case Op.LTE:
            return column <= value
        case Op.CONTAINS:
            return column.list.contains(value)
        case Op.EXISTS:
            return column.is_not_null() if value in (True, None) else column.is_null()
    raise AssertionError(condition.op)  # pragma: no cover


def members(segment: Segment, facts: pl.DataFrame) -> list[str]:
    """External ids of the organizations matching every condition (null never matches a comparison)."""
    predicate = pl.lit(True)
    for condition in segment.conditions:
        predicate = predicate & _expression(condition).fill_null(False)
    return sorted(facts.filter(predicate)["org"].to_list())


def membership(segments: SegmentSet, facts: pl.DataFrame) -> dict[str, list[str]]:
    """org -> sorted codes of the segments it belongs to (every org of ``facts`` appears)."""
    out: dict[str, list[str]] = {org: [] for org in facts["org"].to_list()}
    for segment in segments.segments:
        for org in members(segment, facts):
            out[org].append(segment.code)
    return {org: sorted(codes) for org, codes in out.items()}
