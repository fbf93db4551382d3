"""Balance reads with a million postings in the database.

500,000 awards (1,000,000 postings) are bulk-loaded (``bench.ledger_load``) and proven valid with
``verify``. Then one account is read over and over, two ways: ``GET /api/v1/accounts/{id}`` through
the server (wrk) and a direct call of ``allegiance.storage.queries.account`` on an open connection.
Through the server, two loads: **one client** (one connection, each request sent when the previous
answer arrived: the latency of a read) and **four connections** (the server saturated on the 2
cores it shares with wrk: the latency then is mostly waiting in the queue, ``/healthz`` included).
The 5 ms target is the latency of a read, so it is checked on the one-client run and on the direct
calls; the saturated run is reported beside it. Two accounts are read: the company pool that
received half of the awards (a holder account: its balance is cached) and the program's ``issued``
account, on the other side of every award (a program account: its balance is the sum of 8 counter
shards, read on demand).
Baselines, same run: ``GET /healthz`` through the same server, and ``SELECT 1`` on the same
connection. Target: p99 ≤ 5 ms.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from allegiance.storage import queries
from allegiance.storage.verify import verify
from bench import db, wrk
from bench.common import Context, Figure, Result, latency_summary, time_calls
from bench.ledger_load import load_awards
from bench.server import Server

TITLE = "Balance read with 1,000,000 postings"
TARGET_MS = 5.0


def _direct(ctx: Context, url: str, program_id: int, accounts: dict[str, int]) -> dict[str, Any]:
    calls = ctx.pick(100, 1000, 3000)
    out: dict[str, Any] = {}
    with db.application(url) as app, app.read() as uow:
        conn = uow.conn
        out["select_1"] = latency_summary(time_calls(lambda: conn.execute(text("SELECT 1")).scalar(),
                                                     count=calls, max_seconds=15))
        for name, account_id in accounts.items():
            def read(account_id: int = account_id) -> None:
                assert queries.account(conn, program_id, account_id) is not None
            read()  # warm the page cache
            out[name] = latency_summary(time_calls(read, count=calls, max_seconds=15))
    return out


LOADS = {"one_client": 1, "saturated": 4}  # name -> wrk connections


def _http(ctx: Context, url: str, key: str, accounts: dict[str, int], label: str) -> dict[str, Any]:
    seconds = ctx.pick(1, 5, 10)
    out: dict[str, Any] = {load: {} for load in LOADS}
    with Server.allegiance(url, ctx.workdir / f"{label}.log") as server:
        targets = {"healthz": "/healthz", **{name: f"/api/v1/accounts/{i}" for name, i in accounts.items()}}
        for name, path in targets.items():
            script = wrk.get_script(ctx.workdir / f"{label}_{name}.lua", token=key, targets=[path])
            for load, connections in LOADS.items():
                out[load][name] = wrk.measure(server.base + path, script, warmup_s=ctx.pick(0, 2, 3),
                                              seconds=seconds, connections=connections, tag=name).as_dict()
    return out


def _backend(ctx: Context, backend: str, awards: int) -> dict[str, Any]:
    prepared = db.prepare(ctx, backend, f"read_{backend[:2]}", organizations=ctx.pick(10, 1000, 1000))
    try:
        with db.application(prepared.url) as app:
            ctx.log(f"balance_read: {backend}: loading {awards:,} awards")
            begin = time.perf_counter()
            loaded = load_awards(app, prepared.program_id, prepared.organizations, awards)
            load_s = time.perf_counter() - begin
            if app.db.dialect == "postgresql":
                with app.db.write_engine.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
            ctx.log(f"balance_read: {backend}: verifying the loaded ledger")
            begin = time.perf_counter()
            with app.read() as uow:
                report = verify(uow.conn)
            verify_s = time.perf_counter() - begin
        if not report.ok:
            raise RuntimeError(f"bulk-loaded ledger is invalid on {backend}: {report.problems[:3]}")
        accounts = {"holder": loaded.hot_account, "program": loaded.issued_account}
        ctx.log(f"balance_read: {backend}: direct reads")
        direct = _direct(ctx, prepared.url, prepared.program_id, accounts)
        ctx.log(f"balance_read: {backend}: HTTP reads")
        http = _http(ctx, prepared.url, prepared.key, accounts, f"read_{backend[:2]}")
    finally:
        db.drop_database(ctx, prepared.url)
    return {"postings": loaded.postings, "holder_postings": loaded.hot_postings, "load_seconds": load_s,
            "verify_seconds": verify_s, "verified": report.checked, "direct": direct, "http": http}


def run(ctx: Context) -> Result:
    started = time.perf_counter()
    result = Result("balance_read", TITLE)
    awards = ctx.pick(2_000, 50_000, 500_000)
    runs = {backend: _backend(ctx, backend, awards) for backend in ctx.backends}
    for backend, measured in runs.items():
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        http, direct = measured["http"], measured["direct"]
        holder_n, program_n = f"{measured['holder_postings']:,}", f"{measured['postings'] // 2:,}"
        for account, count in (("holder", holder_n), ("program", program_n)):
            what = "company pool" if account == "holder" else "program 'issued' account"
            one, busy = http["one_client"], http["saturated"]
            result.figures += [
                Figure(f"{name}: GET /api/v1/accounts/{{id}} p99, one client, {what} ({count} postings)",
                       one[account]["p99_ms"], "ms", "GET /healthz p99, one client", one["healthz"]["p99_ms"],
                       "≤ 5 ms", one[account]["p99_ms"] <= TARGET_MS),
                Figure(f"{name}: GET /api/v1/accounts/{{id}} p50, one client, {what}", one[account]["p50_ms"],
                       "ms", "GET /healthz p50, one client", one["healthz"]["p50_ms"], "none", None),
                Figure(f"{name}: GET /api/v1/accounts/{{id}} p99, {LOADS['saturated']} connections "
                       f"(saturated), {what}", busy[account]["p99_ms"], "ms",
                       f"GET /healthz p99, {LOADS['saturated']} connections", busy["healthz"]["p99_ms"],
                       "none (queueing)", None),
                Figure(f"{name}: queries.account() p99, {what}", direct[account]["p99_ms"], "ms",
                       "SELECT 1 p99", direct["select_1"]["p99_ms"], "≤ 5 ms",
                       direct[account]["p99_ms"] <= TARGET_MS),
                Figure(f"{name}: queries.account() p50, {what}", direct[account]["p50_ms"], "ms",
                       "SELECT 1 p50", direct["select_1"]["p50_ms"], "none", None),
            ]
    result.details = {"runs": runs, "awards": awards, "http_connections": LOADS}
    result.notes.append(f"Loaded {2 * awards:,} postings per backend with executemany; verify() proved each "
                        "loaded ledger valid before any read was timed.")
    result.seconds = time.perf_counter() - started
    return result
