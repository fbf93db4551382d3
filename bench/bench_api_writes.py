"""Single-event API writes: ``POST /api/v1/events``, one event per request, 32 connections.

Baseline: a FastAPI hello-world that takes the same JSON body (``bench.hello``), served the same way
in the same run. Targets: SQLite ≥ 1,500 req/s with p99 ≤ 50 ms and ≥ 0.2 × the baseline;
PostgreSQL ≥ 1,000 req/s (1 and 2 uvicorn workers are both measured).

SQLite is also measured with ``ALLEGIANCE_SQLITE_SYNCHRONOUS=NORMAL`` (not the default ``FULL``),
with no target: the gap between the two is what one fsync per committed request costs on this disk.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from allegiance.storage import tables as t
from bench import db, wrk
from bench.common import Context, Figure, Result
from bench.server import Server

TITLE = "Single-event API writes (POST /api/v1/events)"


def _count_events(url: str, program_id: int) -> int:
    with db.application(url) as app, app.read() as uow:
        return int(uow.conn.execute(select(func.count()).select_from(t.events)
                                    .where(t.events.c.program_id == program_id)).scalar_one())


def _measure_server(ctx: Context, server: Server, script: Any, path: str, tag: str) -> wrk.WrkResult:
    with server:
        return wrk.measure(server.base + path, script, warmup_s=ctx.pick(0, 3, 5), seconds=ctx.pick(1, 8, 20),
                           connections=ctx.pick(4, 32, 32), tag=tag)


def _allegiance(ctx: Context, backend: str, label: str, *, workers: int = 1,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    prepared = db.prepare(ctx, backend, label)
    try:
        script = wrk.post_events_script(ctx.workdir / f"{label}.lua", token=prepared.integration_key,
                                        organization_id=prepared.organizations[0], event_type=db.EVENT_TYPE)
        server = Server.allegiance(prepared.url, ctx.workdir / f"{label}.log", workers=workers)
        server.env.update(env or {})
        ctx.log(f"api_writes: {label} ({backend}, {workers} worker(s))")
        result = _measure_server(ctx, server, script, "/api/v1/events", label)
        stored = _count_events(prepared.url, prepared.program_id)
    finally:
        db.drop_database(ctx, prepared.url)
    if stored < result.requests - result.errors:
        raise RuntimeError(f"{label}: wrk counted {result.requests} answers but only {stored} events are stored")
    return {**result.as_dict(), "events_stored": stored, "workers": workers}


def run(ctx: Context) -> Result:
    started = time.perf_counter()
    result = Result("api_writes", TITLE)
    hello_script = wrk.post_events_script(ctx.workdir / "hello.lua", token=None, organization_id=1,
                                          event_type=db.EVENT_TYPE, target="/hello")
    ctx.log("api_writes: FastAPI hello-world baseline")
    hello = _measure_server(ctx, Server.hello(ctx.workdir / "hello.log"), hello_script, "/hello", "hello").as_dict()
    runs: dict[str, dict[str, Any]] = {"hello": hello}
    runs["sqlite"] = _allegiance(ctx, "sqlite", "writes_sqlite")
    runs["sqlite_normal"] = _allegiance(ctx, "sqlite", "writes_sqlite_normal",
                                        env={"ALLEGIANCE_SQLITE_SYNCHRONOUS": "NORMAL"})
    if "postgresql" in ctx.backends:
        for workers in (1, 2):
            runs[f"postgresql_{workers}w"] = _allegiance(ctx, "postgresql", f"writes_pg{workers}", workers=workers)
    base_rps, base_p99 = hello["rps"], hello["p99_ms"]
    sqlite = runs["sqlite"]
    result.figures += [
        Figure("SQLite: requests/s", sqlite["rps"], "req/s", "hello-world req/s", base_rps,
               "≥ 1,500 req/s and ratio ≥ 0.2", sqlite["rps"] >= 1500 and sqlite["rps"] >= 0.2 * base_rps),
        Figure("SQLite: p99 latency", sqlite["p99_ms"], "ms", "hello-world p99", base_p99, "≤ 50 ms",
               sqlite["p99_ms"] <= 50),
        Figure("SQLite, synchronous=NORMAL: requests/s", runs["sqlite_normal"]["rps"], "req/s",
               "hello-world req/s", base_rps, "none (shows the fsync cost)", None),
        Figure("SQLite, synchronous=NORMAL: p99 latency", runs["sqlite_normal"]["p99_ms"], "ms",
               "hello-world p99", base_p99, "none", None),
    ]
    for workers in (1, 2):
        pg = runs.get(f"postgresql_{workers}w")
        if pg is None:
            continue
        result.figures += [
            Figure(f"PostgreSQL, {workers} worker(s): requests/s", pg["rps"], "req/s", "hello-world req/s",
                   base_rps, "≥ 1,000 req/s", pg["rps"] >= 1000),
            Figure(f"PostgreSQL, {workers} worker(s): p99 latency", pg["p99_ms"], "ms", "hello-world p99",
                   base_p99, "none", None),
        ]
    if "postgresql" not in ctx.backends:
        result.notes.append("PostgreSQL not measured: no server configured (--postgres-url).")
    errors = {name: r["errors"] for name, r in runs.items() if r["errors"]}
    if errors:
        result.notes.append(f"Non-2xx answers or socket errors during the measured runs: {errors}.")
    result.details = {"runs": runs, "connections": ctx.pick(4, 32, 32), "seconds": ctx.pick(1, 8, 20),
                      "warmup_seconds": ctx.pick(0, 3, 5), "wrk_threads": 2}
    result.seconds = time.perf_counter() - started
    return result
