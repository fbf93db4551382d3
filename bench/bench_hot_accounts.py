"""Hot accounts: awards spread over 1,000 people vs every award to the same person.

Through the ledger service directly (no HTTP), ``writers`` threads, each award in its own write
transaction. The 1,000 people are in 1,000 different organizations, so in the spread case no holder
row is shared (an award also credits the person's company pool); in the hot case every award locks
the same personal and pool accounts. Baseline: the spread case, same run, same backend. Target:
hot ≥ 0.8 × spread. The ledger is verified afterwards, so speed never hides a wrong balance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from allegiance.bootstrap import Allegiance
from allegiance.storage.verify import verify
from bench import db
from bench.common import Context, Figure, Result, latency_summary

TITLE = "Hot accounts (ledger service, concurrent writers)"


def _hammer(app: Allegiance, program_id: int, pick: Callable[[int, int], tuple[int, int]], *,
            writers: int, seconds: float) -> dict[str, Any]:
    """``writers`` threads award for ``seconds``; ``pick(thread, n)`` names (organization, person)."""
    with app.read() as uow:
        settings = uow.programs.settings(program_id)
    durations: list[list[float]] = [[] for _ in range(writers)]
    failures: list[str] = []
    barrier = threading.Barrier(writers + 1)
    stop = threading.Event()

    def writer(index: int) -> None:
        barrier.wait()
        count = 0
        while not stop.is_set():
            organization, person = pick(index, count)
            begin = time.perf_counter()
            try:
                with app.write() as uow:
                    uow.ledger.award(program_id, settings.default_unit, 10, organization_id=organization,
                                     participant_id=person, split=settings.award_split, expiry=settings.expiry,
                                     memo="bench")
            except Exception as exc:  # reported, never hidden: a failure is a finding
                failures.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            durations[index].append(time.perf_counter() - begin)
            count += 1

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)  # the measured window; every writer stops at the end of it
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.perf_counter() - started
    every = [d for per_thread in durations for d in per_thread]
    summary = latency_summary(every) if every else {}
    return {"awards": len(every), "seconds": elapsed, "awards_per_s": len(every) / elapsed,
            "p50_ms": summary.get("p50_ms"), "p99_ms": summary.get("p99_ms"), "failures": len(failures),
            "first_failures": failures[:3]}


def _backend(ctx: Context, backend: str, *, people: int, writers: int, seconds: float) -> dict[str, Any]:
    prepared = db.prepare(ctx, backend, f"hot_{backend[:2]}", organizations=people)
    try:
        with db.application(prepared.url) as app:
            persons = db.create_participants(app, prepared.program_id, prepared.organizations)
            pairs = list(zip(prepared.organizations, persons, strict=True))

            def spread(thread: int, n: int) -> tuple[int, int]:
                return pairs[(thread + n * writers) % len(pairs)]

            def hot(_thread: int, _n: int) -> tuple[int, int]:
                return pairs[0]

            ctx.log(f"hot_accounts: {backend} warm-up")
            _hammer(app, prepared.program_id, spread, writers=writers, seconds=min(2.0, seconds / 4))
            ctx.log(f"hot_accounts: {backend} spread over {people} people, {writers} writers")
            spread_run = _hammer(app, prepared.program_id, spread, writers=writers, seconds=seconds)
            ctx.log(f"hot_accounts: {backend} all to one person")
            hot_run = _hammer(app, prepared.program_id, hot, writers=writers, seconds=seconds)
            with app.read() as uow:
                report = verify(uow.conn)
    finally:
        db.drop_database(ctx, prepared.url)
    if not report.ok:
        raise RuntimeError(f"ledger invalid after the hot-account run on {backend}: {report.problems[:3]}")
    return {"spread": spread_run, "hot": hot_run, "verified_transactions": report.checked["chained transactions"]}


def run(ctx: Context) -> Result:
    started = time.perf_counter()
    result = Result("hot_accounts", TITLE)
    people = ctx.pick(10, 1000, 1000)
    writers = ctx.pick(2, 4, 4)
    seconds = ctx.pick(0.5, 4.0, 10.0)
    runs = {backend: _backend(ctx, backend, people=people, writers=writers, seconds=seconds)
            for backend in ctx.backends}
    for backend, measured in runs.items():
        spread, hot = measured["spread"]["awards_per_s"], measured["hot"]["awards_per_s"]
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        result.figures += [
            Figure(f"{name}: awards/s spread over {people} people", spread, "awards/s",
                   "same (the baseline itself)", spread, "none", None),
            Figure(f"{name}: awards/s all to one person", hot, "awards/s", f"spread over {people} people",
                   spread, "ratio ≥ 0.8", hot >= 0.8 * spread if spread else False),
        ]
        failures = measured["spread"]["failures"] + measured["hot"]["failures"]
        if failures:
            examples = measured["hot"]["first_failures"] or measured["spread"]["first_failures"]
            result.notes.append(f"{name}: {failures} awards failed, e.g. {examples}")
    result.details = {"runs": runs, "people": people, "writers": writers, "seconds": seconds}
    result.seconds = time.perf_counter() - started
    return result
