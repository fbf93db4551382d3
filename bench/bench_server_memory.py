"""Server memory under a long mixed load: does ``allegiance serve`` grow?

One uvicorn worker on SQLite (one process, so its VmRSS is the whole server). wrk sends a mix of
reads (an account, an organization, a page of events, a page of accounts) and unique event writes,
in segments; after each segment the server's VmRSS is read from /proc. Reported: RSS after the
warm-up (the baseline), RSS at the end, and the growth per 100,000 requests (least-squares slope
over the segment samples, so one noisy sample does not decide it). N = 200,000 requests by
default, 1,000,000 with ``--long``; the whole run is also bounded in time.
"""

from __future__ import annotations

import time
from typing import Any

from bench import db, wrk
from bench.common import Context, Figure, Result, rss_kb
from bench.server import Server

TITLE = "Server memory under mixed load"


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 when x does not vary)."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def _seed(prepared: db.Prepared) -> dict[str, int]:
    with db.application(prepared.url) as app:
        people = db.create_participants(app, prepared.program_id, prepared.organizations)
        with app.write() as uow:
            settings = uow.programs.settings(prepared.program_id)
            for org, person in zip(prepared.organizations, people, strict=True):
                uow.ledger.award(prepared.program_id, settings.default_unit, 500, organization_id=org,
                                 participant_id=person, split=settings.award_split, expiry=settings.expiry,
                                 memo="bench seed")
            pool = uow.ledger.holder_account(prepared.program_id, settings.default_unit, prepared.organizations[0])
    return {"pool": pool.id, "organization": prepared.organizations[0]}


def run(ctx: Context) -> Result:
    started = time.perf_counter()
    result = Result("server_memory", TITLE)
    target_requests = ctx.pick(300, 20_000, 200_000, 1_000_000)
    budget_s = ctx.pick(10, 120, 900, 3600)
    segment_s = ctx.pick(1, 10, 30, 60)
    connections = 8
    prepared = db.prepare(ctx, "sqlite", "memory", organizations=5)
    try:
        ids = _seed(prepared)
        reads = [f"/api/v1/accounts/{ids['pool']}", f"/api/v1/organizations/{ids['organization']}",
                 "/api/v1/events?limit=10", "/api/v1/accounts?limit=10"]
        script = wrk.mixed_script(ctx.workdir / "memory.lua", token=prepared.key, reads=reads,
                                  organization_id=ids["organization"], event_type=db.EVENT_TYPE)
        samples: list[dict[str, Any]] = []
        with Server.allegiance(prepared.url, ctx.workdir / "memory.log") as server:
            start_kb = server.rss_kb()
            ctx.log(f"server_memory: warm-up (RSS at start {start_kb / 1024:.1f} MB)")
            wrk.run(server.base + "/", script, seconds=ctx.pick(1, 3, 5), connections=connections, tag="warm")
            baseline_kb = server.rss_kb()
            total, errors, segment = 0, 0, 0
            samples.append({"requests": 0, "rss_kb": baseline_kb, "seconds": 0.0})
            load_started = time.perf_counter()
            while total < target_requests and time.perf_counter() - load_started < budget_s:
                segment += 1
                measured = wrk.run(server.base + "/", script, seconds=segment_s, connections=connections,
                                   tag=f"s{segment}")
                total += measured.requests
                errors += measured.errors
                samples.append({"requests": total, "rss_kb": server.rss_kb(), "rps": measured.rps,
                                "seconds": time.perf_counter() - load_started})
                ctx.log(f"server_memory: {total:,} requests, RSS {samples[-1]['rss_kb'] / 1024:.1f} MB")
            server_peak = rss_kb(server.pid, "VmHWM")
    finally:
        db.drop_database(ctx, prepared.url)
    end_kb = samples[-1]["rss_kb"]
    per_100k_mb = slope([(s["requests"], s["rss_kb"] / 1024) for s in samples]) * 100_000
    result.figures += [
        Figure(f"RSS after {total:,} requests", end_kb / 1024, "MB", "RSS after warm-up", baseline_kb / 1024,
               "none set (should stay flat)", None),
        Figure("RSS growth per 100,000 requests (slope)", per_100k_mb, "MB", "RSS after warm-up",
               baseline_kb / 1024, "none set (≈ 0 = no leak)", None),
    ]
    if total < target_requests:
        result.notes.append(f"Stopped at {total:,} of {target_requests:,} requests: the {budget_s} s time bound "
                            "was reached first.")
    if errors:
        result.notes.append(f"{errors} non-2xx answers or socket errors during the load.")
    result.details = {"requests": total, "target_requests": target_requests, "errors": errors,
                      "start_rss_kb": start_kb, "after_warmup_rss_kb": baseline_kb, "end_rss_kb": samples[-1]["rss_kb"],
                      "peak_rss_kb": server_peak, "samples": samples, "connections": connections,
                      "mix": {"reads": reads, "writes_per_cycle": 1}}
    result.seconds = time.perf_counter() - started
    return result
