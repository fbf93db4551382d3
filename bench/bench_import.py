"""Bulk import of synthetic events: ``import_rows`` in process, and the command line in a child
process for its peak memory.

Baseline, same run, same backend, same rows: a raw ``executemany`` INSERT of the finished rows
(subjects resolved, fingerprints computed beforehand, untimed) into the same ``events`` table, in
the importer's chunk size (2,000 per transaction) — the floor of what writing these rows costs.
Targets: SQLite ≥ 50,000 events/s, PostgreSQL ≥ 20,000 events/s, import ≥ 0.5 × raw; peak RSS of
the import command ≤ 400 MB on 5,000,000 events (``--long``; the default run measures it on the
default size).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from allegiance.events.model import IncomingEvent
from allegiance.events.rows import parse_row
from allegiance.storage import tables as t
from allegiance.storage.bulk_events import import_rows
from bench import db
from bench.common import REPO, Context, Figure, Result
from bench.synth_setup import SyntheticDb, prepare_synthetic

TITLE = "Bulk import of events"
CHUNK = 2000
TARGETS = {"sqlite": 50_000, "postgresql": 20_000}
RSS_TARGET_MB = 400
LONG_EVENTS = 5_000_000


def _raw_rows(syn: SyntheticDb, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for row in rows:
        event = parse_row(row)
        assert isinstance(event, IncomingEvent), event
        out.append({"program_id": syn.template.program_id, "source_id": event.source_id, "type": event.type,
                    "organization_id": syn.organizations.get(row["organization_external_id"] or ""),
                    "participant_id": syn.participants.get(row["participant_external_id"] or ""),
                    "occurred_at": event.occurred_at, "payload": event.payload,
                    "payload_hash": event.fingerprint(), "received_at": now})
    return out


def _count(url: str, program_id: int) -> int:
    with db.application(url) as app, app.read() as uow:
        return int(uow.conn.execute(select(func.count()).select_from(t.events)
                                    .where(t.events.c.program_id == program_id)).scalar_one())


def _raw(ctx: Context, backend: str, syn: SyntheticDb, values: list[dict[str, Any]]) -> float:
    url = db.new_database(ctx, backend, "raw", template=syn.template.url)
    try:
        with db.application(url) as app:
            begin = time.perf_counter()
            for start in range(0, len(values), CHUNK):
                with app.write() as uow:
                    uow.conn.execute(insert(t.events), values[start:start + CHUNK])
            seconds = time.perf_counter() - begin
        assert _count(url, syn.template.program_id) == len(values)
    finally:
        db.drop_database(ctx, url)
    return seconds


def _import(ctx: Context, backend: str, syn: SyntheticDb, rows: list[dict[str, Any]]) -> float:
    url = db.new_database(ctx, backend, "import", template=syn.template.url)
    try:
        with db.application(url) as app:
            begin = time.perf_counter()
            summary = import_rows(app, syn.template.program_id, ((n + 2, row) for n, row in enumerate(rows)),
                                  chunk_size=CHUNK)
            seconds = time.perf_counter() - begin
        if summary.accepted != len(rows):
            raise RuntimeError(f"import accepted {summary.accepted} of {len(rows)}: {summary.rejected[:3]}")
    finally:
        db.drop_database(ctx, url)
    return seconds


def _cli_available() -> bool:
    done = subprocess.run([db.cli(), "events", "import", "--help"], capture_output=True, timeout=60)
    return done.returncode == 0


def peak_rss(command: list[str], env: dict[str, str], log: Path, *, timeout_s: float) -> dict[str, Any]:
    """Run ``command``; its exit code, wall time and peak RSS, measured by the small ``bench.maxrss``
    wrapper (spawned from this big process, ``ru_maxrss`` would include this process's own peak)."""
    report = log.with_suffix(".rss.json")
    report.unlink(missing_ok=True)
    wrapper = [sys.executable, "-m", "bench.maxrss", "--out", str(report), "--", *command]
    with log.open("wb") as out:
        process = subprocess.Popen(wrapper, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO),
                                   start_new_session=True)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        os.killpg(process.pid, signal.SIGKILL)  # the wrapper and the command it started, nothing else
        process.wait()
        raise RuntimeError(f"{' '.join(command[:4])} did not finish within {timeout_s:.0f} s") from exc
    measured = json.loads(report.read_text())
    return {"exit_code": measured["exit_code"], "seconds": measured["seconds"],
            "peak_rss_mb": measured["peak_rss_kb"] / 1024, "output": log.read_text(errors="replace")[-2000:]}


def import_command(ctx: Context, backend: str, syn: SyntheticDb, path: Path) -> dict[str, Any]:
    """The command-line import of ``path`` into a fresh copy of the template, measured from outside."""
    url = db.new_database(ctx, backend, "cli", template=syn.template.url)
    try:
        if _cli_available():
            command = [db.cli(), "events", "import", str(path), "--program", syn.template.slug]
        else:
            command = [sys.executable, "-m", "bench.import_child", str(path),
                       "--program-id", str(syn.template.program_id)]
        measured = peak_rss(command, db.server_env(url), ctx.workdir / f"cli_{backend}.log",
                            timeout_s=max(600, syn.events / 1000))
        stored = _count(url, syn.template.program_id)
    finally:
        db.drop_database(ctx, url)
    if measured["exit_code"] != 0 or stored != syn.events:
        raise RuntimeError(f"import command failed (exit {measured['exit_code']}, {stored} of {syn.events} "
                           f"stored): {measured['output']}")
    return {**measured, "command": " ".join([*command[:3], "FILE", *command[4:]]), "events": syn.events,
            "events_per_s": syn.events / measured["seconds"]}


def _backend(ctx: Context, backend: str, events: int) -> dict[str, Any]:
    ctx.log(f"import: {backend}: generating {events:,} synthetic events and their organizations")
    syn = prepare_synthetic(ctx, backend, events)
    try:
        rows = list(syn.rows())
        if len(rows) != events:
            raise RuntimeError(f"the synthetic program has {len(rows)} events, {events} were asked for")
        values = _raw_rows(syn, rows)
        ctx.log(f"import: {backend}: raw executemany baseline")
        raw_s = _raw(ctx, backend, syn, values)
        ctx.log(f"import: {backend}: import_rows")
        import_s = _import(ctx, backend, syn, rows)
        path = ctx.workdir / f"events_{events}.jsonl"
        if not path.exists():
            syn.write_jsonl(path)
        ctx.log(f"import: {backend}: import command in a child process")
        command = import_command(ctx, backend, syn, path)
    finally:
        db.drop_database(ctx, syn.template.url)
    return {"events": events, "raw_seconds": raw_s, "raw_per_s": events / raw_s, "import_seconds": import_s,
            "import_per_s": events / import_s, "command": command}


def _long_rss(ctx: Context) -> dict[str, Any]:
    ctx.log(f"import: long run: {LONG_EVENTS:,} events through the import command (SQLite)")
    syn = prepare_synthetic(ctx, "sqlite", LONG_EVENTS)
    try:
        path = syn.write_jsonl(ctx.workdir / f"events_{LONG_EVENTS}.jsonl")
        return import_command(ctx, "sqlite", syn, path)
    finally:
        db.drop_database(ctx, syn.template.url)


def run(ctx: Context) -> Result:
    started = time.perf_counter()
    result = Result("import", TITLE)
    events = ctx.pick(1_000, 20_000, 200_000)
    runs: dict[str, Any] = {backend: _backend(ctx, backend, events) for backend in ctx.backends}
    for backend, measured in runs.items():
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        target = TARGETS[backend]
        rate, raw = measured["import_per_s"], measured["raw_per_s"]
        result.figures += [
            Figure(f"{name}: import_rows events/s ({events:,} events)", rate, "events/s",
                   "raw executemany events/s", raw, f"≥ {target:,}/s and ratio ≥ 0.5",
                   rate >= target and rate >= 0.5 * raw),
            Figure(f"{name}: import command events/s (child process, JSON Lines file)",
                   measured["command"]["events_per_s"], "events/s", "raw executemany events/s", raw, "none", None),
        ]
    sqlite_cmd = runs["sqlite"]["command"]
    result.figures.append(Figure(f"SQLite: import command peak RSS, {events:,} events", sqlite_cmd["peak_rss_mb"],
                                 "MB", "same (no baseline)", sqlite_cmd["peak_rss_mb"],
                                 f"≤ {RSS_TARGET_MB} MB (at 5,000,000 events)", None))
    if ctx.mode == "long":
        runs["long"] = _long_rss(ctx)
        rss = runs["long"]["peak_rss_mb"]
        result.figures.append(Figure(f"SQLite: import command peak RSS, {LONG_EVENTS:,} events", rss, "MB",
                                     f"peak RSS at {events:,} events", sqlite_cmd["peak_rss_mb"],
                                     f"≤ {RSS_TARGET_MB} MB", rss <= RSS_TARGET_MB))
    else:
        result.notes.append(f"Peak RSS at {LONG_EVENTS:,} events is measured only with --long; the default run "
                            f"reports it at {events:,} events (no verdict against the 5M target).")
    result.details = {"runs": runs, "chunk_size": CHUNK}
    result.seconds = time.perf_counter() - started
    return result
