"""``python -m bench.run``: run all benchmarks or a chosen subset, write ``bench/results/latest.json``
and regenerate ``docs/benchmarks.md``.

A run with ``--only`` merges its results into the previous ``latest.json`` (the other benchmarks
keep their last figures, each with its own date), so one benchmark can be re-measured alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    bench_analytics_sql,
    bench_api_writes,
    bench_balance_read,
    bench_churn,
    bench_clv,
    bench_hot_accounts,
    bench_import,
    bench_recommend,
    bench_rules,
    bench_server_memory,
)
from bench.common import REPO, Context, Result, machine
from bench.report import render

BENCHMARKS: dict[str, Callable[[Context], Result]] = {
    "api_writes": bench_api_writes.run,
    "hot_accounts": bench_hot_accounts.run,
    "balance_read": bench_balance_read.run,
    "import": bench_import.run,
    "server_memory": bench_server_memory.run,
    "rules": bench_rules.run,
    "analytics_sql": bench_analytics_sql.run,
    "churn": bench_churn.run,
    "clv": bench_clv.run,
    "recommend": bench_recommend.run,
}
RESULTS = REPO / "bench" / "results" / "latest.json"
DOC = REPO / "docs" / "benchmarks.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="small sizes and short runs (a few minutes in all)")
    sizes.add_argument("--long", action="store_true",
                       help="also the long runs: 5,000,000-event import RSS, 1,000,000-request server memory")
    parser.add_argument("--postgres-url", default=os.environ.get("ALLEGIANCE_BENCH_POSTGRES_URL"),
                        help="admin URL of a throw-away PostgreSQL server (default: $ALLEGIANCE_BENCH_POSTGRES_URL); "
                             "without one only SQLite is measured")
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: a new temporary directory)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"results JSON (default: {RESULTS})")
    parser.add_argument("--doc", type=Path, default=DOC, help=f"Markdown report (default: {DOC})")
    parser.add_argument("--no-doc", action="store_true", help="do not regenerate the Markdown report")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: regenerate the Markdown report from the results JSON (e.g. after "
                             "editing bench/analysis.md)")
    return parser.parse_args(argv)


def _shown(argv: list[str]) -> list[str]:
    """The arguments as typed, minus the PostgreSQL URL (it changes every run and may hold a password)."""
    shown: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--postgres-url":
            skip = True
        elif not arg.startswith("--postgres-url="):
            shown.append(shlex.quote(arg))
    return shown


def _previous(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        args.doc.write_text(render(_previous(args.results), order=list(BENCHMARKS)))
        return 0
    mode = "quick" if args.quick else "long" if args.long else "default"
    (REPO / "var").mkdir(exist_ok=True)  # where the default SQLite database lives: the same disk
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-", dir=REPO / "var"))
    ctx = Context(workdir=workdir, postgres_url=args.postgres_url, mode=mode)
    chosen = args.only or list(BENCHMARKS)
    shown = _shown(sys.argv[1:] if argv is None else argv)
    run_info: dict[str, Any] = {"command": " ".join(["python -m bench.run", *shown]), "mode": mode,
                "machine": machine(args.postgres_url), "load_average_before": os.getloadavg()}
    ctx.log(f"benchmarks {', '.join(chosen)} ({mode}) in {workdir}; "
            f"PostgreSQL: {'yes' if ctx.postgres_url else 'no'}")
    results: dict[str, Any] = {}
    failed = []
    for name in chosen:
        begin = time.perf_counter()
        load = os.getloadavg()
        try:
            outcome = BENCHMARKS[name](ctx).as_dict()
        except Exception as exc:
            traceback.print_exc()
            failed.append(name)
            outcome = {"name": name, "title": name, "figures": [], "details": {}, "seconds": 0.0,
                       "notes": [f"FAILED: {type(exc).__name__}: {exc}"[:2000]]}
        outcome.update({"measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "mode": mode,
                        "command": run_info["command"], "code": run_info["machine"]["code"],
                        "load_average_before": load, "wall_seconds": round(time.perf_counter() - begin, 1)})
        results[name] = outcome
        ctx.log(f"{name}: done in {outcome['wall_seconds']} s")
    run_info["load_average_after"] = os.getloadavg()
    previous = _previous(args.results) if args.only else {}
    merged = {"run": run_info, "benchmarks": {**previous.get("benchmarks", {}), **results}}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(merged, indent=2, default=str) + "\n")
    if not args.no_doc:
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        args.doc.write_text(render(merged, order=list(BENCHMARKS)))
        ctx.log(f"wrote {args.results} and {args.doc}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    for outcome in results.values():
        for figure in outcome["figures"]:
            verdict = {True: "met", False: "MISSED", None: "-"}[figure["met"]]
            print(f"{outcome['name']:14} {figure['name'][:70]:70} {figure['value']:>12,.2f} {figure['unit']:9} "
                  f"ratio {figure['ratio']:8.3f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
