"""Reporting periods: whole UTC days, both ends included (``--from 2026-01-01 --to 2026-01-31`` is
January), turned into the half-open instant range ``[start, end)`` that queries use."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from allegiance.kernel.errors import ValidationFailed


def day_range(first: date, last: date) -> tuple[datetime, datetime]:
    if last < first:
        raise ValidationFailed(f"the period ends ({last}) before it starts ({first})", field="to")
    return datetime.combine(first, time(), UTC), datetime.combine(last + timedelta(days=1), time(), UTC)
