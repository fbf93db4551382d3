"""The analytics use cases: run the nightly job, read what it stored, keep the versioned settings
and segment definitions, and answer the evaluations operators ask for before trusting a model.

The heavy lifting is in `report` (pure); this service only moves data between the store port and
those functions, so the CLI, the API and the pages all see the same numbers.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Protocol

import polars as pl

from allegiance.analytics.frames import Frames
from allegiance.analytics.results import KINDS, Document, NotEnoughData, ProgramMoney, RunResult, records
from allegiance.analytics.segments import SegmentInvalid, SegmentSet, membership, parse_segments
from allegiance.analytics.settings import AnalyticsSettings, parse_settings
from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import NotFound, ValidationFailed

SETTINGS = "settings"
SEGMENTS = "segments"


class AnalyticsStore(Protocol):
    def frames(self, program_id: int, *, until: dt.datetime | None = None) -> Frames: ...
    def save_snapshot(self, program_id: int, kind: str, as_of: dt.date, document: dict[str, Any]) -> None: ...
    def snapshots(self, program_id: int, kind: str, *, limit: int = 400) -> list[dict[str, Any]]: ...
    def latest_snapshot(self, program_id: int, kind: str) -> dict[str, Any] | None: ...
    def save_config(self, program_id: int, kind: str, document: dict[str, Any], *, by: str) -> int: ...
    def config(self, program_id: int, kind: str, version: int | None = None) -> dict[str, Any] | None: ...
    def organization_tiers(self, program_id: int) -> dict[str, str]: ...
    def write_segments(self, program_id: int, membership: Mapping[str, list[str]]) -> int: ...


class Context(Protocol):
    """What analytics needs from the rest of the program: money figures and tier progress."""

    def money(self, program_id: int) -> ProgramMoney: ...
    def tier_progress(self, program_id: int) -> pl.DataFrame | None: ...


class AnalyticsService:
    def __init__(self, store: AnalyticsStore, clock: Clock, context: Context) -> None:
        self.store = store
        self.clock = clock
        self.context = context

    # -- inputs --------------------------------------------------------------------------------
    def as_of(self, as_of: dt.date | None) -> dt.date:
        """The day results are computed for: yesterday by default (today is not over yet)."""
        today = self.clock.now().date()
        if as_of is None:
            return today - dt.timedelta(days=1)
        if as_of > today:
            raise ValidationFailed(f"as_of {as_of} is in the future", field="as_of")
        return as_of

    def frames(self, program_id: int, as_of: dt.date) -> Frames:
        until = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return self.store.frames(program_id, until=until)

    # -- settings and segments ---------------------------------------------------------------
    def settings(self, program_id: int) -> AnalyticsSettings:
        stored = self.store.config(program_id, SETTINGS)
        return parse_settings(stored["document"] if stored else None)

    def settings_document(self, program_id: int) -> dict[str, Any]:
        stored = self.store.config(program_id, SETTINGS)
        return {"version": stored["version"] if stored else 0,
                "settings": self.settings(program_id).model_dump(mode="json")}

    def save_settings(self, program_id: int, document: dict[str, Any], *, by: str) -> dict[str, Any]:
        try:
            parsed = parse_settings(document)
        except ValueError as exc:
            field = getattr(exc, "field", "settings")
            raise ValidationFailed(str(exc), field=field) from None
        version = self.store.save_config(program_id, SETTINGS, parsed.model_dump(mode="json"), by=by)
        return {"version": version, "settings": parsed.model_dump(mode="json")}

    def segments(self, program_id: int) -> tuple[int, SegmentSet]:
        stored = self.store.config(program_id, SEGMENTS)
        if stored is None:
            return 0, SegmentSet()
        return stored["version"], parse_segments(stored["document"])

    def save_segments(self, program_id: int, document: dict[str, Any], *, by: str) -> dict[str, Any]:
        """Validate and store a new version of the program's segments; when facts from a run exist,
        membership is recomputed at once and written to the organizations' attributes."""
        try:
            parsed = parse_segments(document)
        except SegmentInvalid as exc:
            raise ValidationFailed(str(exc), field=f"segments.{exc.field}" if exc.field != "segments"
                                   else "segments") from None
        version = self.store.save_config(program_id, SEGMENTS, parsed.model_dump(mode="json"), by=by)
        counts = self._apply_segments(program_id, parsed)
        return {"version": version, "segments": parsed.model_dump(mode="json")["segments"], "members": counts}

    def _apply_segments(self, program_id: int, segments: SegmentSet) -> dict[str, int] | None:
        latest = self.store.latest_snapshot(program_id, "facts")
        if latest is None:
            return None
        facts = _facts_frame(latest["document"])
        return self._write_membership(program_id, segments, facts)

    def _write_membership(self, program_id: int, segments: SegmentSet, facts: pl.DataFrame) -> dict[str, int]:
        found = membership(segments, facts)
        self.store.write_segments(program_id, found)
        return {s.code: sum(1 for codes in found.values() if s.code in codes) for s in segments.segments}

    def segment_members(self, program_id: int, code: str) -> dict[str, Any]:
        _, segments = self.segments(program_id)
        segment = next((s for s in segments.segments if s.code == code), None)
        if segment is None:
            raise NotFound(f"no segment {code!r}")
        latest = self.store.latest_snapshot(program_id, "facts")
        if latest is None:
            raise NotFound("no analytics run yet: run `allegiance analytics run` first")
        facts = _facts_frame(latest["document"])
        found = membership(SegmentSet(segments=[segment]), facts)
        orgs = sorted(org for org, codes in found.items() if codes)
        rows = facts.filter(pl.col("org").is_in(orgs))
        return {"code": code, "as_of": latest["as_of"], "organizations": records(rows)}

    # -- the job -------------------------------------------------------------------------------
    def run(self, program_id: int, as_of: dt.date | None = None, *, engine: str = "duckdb",
            kinds: tuple[str, ...] = KINDS) -> RunResult:
        """Compute every result for ``as_of``, store one snapshot per kind (a re-run the same day
        replaces it) and refresh segment membership. A result the data cannot support yet is
        skipped with the reason, never stored half-made."""
        day = self.as_of(as_of)
        settings = self.settings(program_id)
        frames = self.frames(program_id, day)
        result = RunResult(day)
        steps: list[tuple[str, Callable[[], Document]]] = [
            ("overview", lambda: _report().overview(frames, day, settings, self.context.money(program_id))),
            ("cohorts", lambda: _report().cohorts(frames, day, engine)),
            ("rfm", lambda: _report().rfm(frames, day, engine)),
            ("clv", lambda: _report().clv(frames, day, settings, engine=engine)),
            ("churn", lambda: self._churn(frames, day, settings, result.documents.get("clv"), engine=engine)),
            ("health", lambda: _report().health(frames, day, settings, engine=engine)),
            ("recommendations", lambda: _report().recommendations(frames, day, settings,
                                                               self.context.tier_progress(program_id))),
        ]
        for kind, compute in steps:
            if kind not in kinds:
                continue
            began = time.perf_counter()
            try:
                result.documents[kind] = compute()
            except NotEnoughData as exc:
                result.skipped[kind] = str(exc)
            result.seconds[kind] = time.perf_counter() - began
        if "facts" in kinds:
            result.facts = _report().facts(frames, day, result.documents, self.store.organization_tiers(program_id))
            result.documents["facts"] = {"rows": records(result.facts)}
        for kind, document in result.documents.items():
            self.store.save_snapshot(program_id, kind, day, {**document, "settings_version":
                                                             self.settings_document(program_id)["version"]})
        if result.facts is not None:
            _, segments = self.segments(program_id)
            result.documents.setdefault("segments", {"members": self._write_membership(program_id, segments,
                                                                                      result.facts)})
        return result

    def _churn(self, frames: Frames, day: dt.date, settings: AnalyticsSettings, clv: Document | None, *,
               engine: str = "duckdb") -> Document:
        value = None
        if clv is not None:
            value = pl.DataFrame([(r["org"], round(r["clv"] or 0)) for r in clv["rows"]],
                                 schema={"org": pl.String(), "value_minor": pl.Int64()}, orient="row")
        document = _report().churn(frames, day, settings, value, engine=engine)
        try:
            document["evaluation"] = _report().churn_evaluation(frames, day, settings)
        except NotEnoughData as exc:
            document["evaluation"] = {"unavailable": str(exc)}
        return document

    # -- reading what runs stored -------------------------------------------------------------
    def latest(self, program_id: int, kind: str) -> dict[str, Any]:
        if kind not in KINDS:
            raise NotFound(f"no analytics result {kind!r}; one of {', '.join(KINDS)}")
        found = self.store.latest_snapshot(program_id, kind)
        if found is None:
            raise NotFound(f"no {kind} result yet: run `allegiance analytics run` (or POST /analytics/runs) first")
        return found

    def history(self, program_id: int, kind: str, *, limit: int = 400) -> list[dict[str, Any]]:
        if kind not in KINDS:
            raise NotFound(f"no analytics result {kind!r}; one of {', '.join(KINDS)}")
        return self.store.snapshots(program_id, kind, limit=limit)

    def organization(self, program_id: int, org: str) -> dict[str, Any]:
        """Everything the latest results say about one organization (by external id)."""
        out: dict[str, Any] = {"org": org}
        for kind in ("facts", "churn", "health", "clv", "rfm"):
            found = self.store.latest_snapshot(program_id, kind)
            if found is not None:
                out[kind] = next((r for r in found["document"].get("rows", []) if r.get("org") == org), None)
                out.setdefault("as_of", found["as_of"])
        recs = self.store.latest_snapshot(program_id, "recommendations")
        if recs is not None:
            out["recommendations"] = [r for r in recs["document"]["rows"] if r["org"] == org]
            out["upsell"] = [r for r in recs["document"]["upsell"] if r["org"] == org]
        return out

    # -- evaluations on demand ----------------------------------------------------------------
    def evaluate_churn(self, program_id: int, as_of: dt.date | None = None,
                       overrides: Mapping[str, Any] | None = None) -> Document:
        day = self.as_of(as_of)
        settings = self._with(program_id, overrides)
        return _report().churn_evaluation(self.frames(program_id, day), day, settings)

    def evaluate_recommendations(self, program_id: int, as_of: dt.date | None = None,
                                 overrides: Mapping[str, Any] | None = None) -> Document:
        day = self.as_of(as_of)
        settings = self._with(program_id, overrides)
        return _report().recommendation_evaluation(self.frames(program_id, day), day, settings)

    def _with(self, program_id: int, overrides: Mapping[str, Any] | None) -> AnalyticsSettings:
        base = self.settings(program_id).model_dump(mode="json")
        try:
            return parse_settings({**base, **(overrides or {})})
        except ValueError as exc:
            raise ValidationFailed(str(exc), field=getattr(exc, "field", "settings")) from None


def _facts_frame(document: dict[str, Any]) -> pl.DataFrame:
    from allegiance.analytics.segments import FACT_SCHEMA

    return pl.DataFrame(document.get("rows", []), schema=FACT_SCHEMA, orient="row") if document.get("rows") else \
        pl.DataFrame(schema=FACT_SCHEMA)


def _report() -> ModuleType:
    """The computations, imported on first use (see `results` for why)."""
    from allegiance.analytics import report

    return report
