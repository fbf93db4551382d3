"""The benchmark code works: each benchmark runs at a toy size (seconds) and returns figures with
the expected keys and positive numbers. No timing is asserted — speed is measured by ``make bench``,
never by the test suite. Benchmarks that drive a server need ``wrk``; without it they are skipped
(``scripts/bench`` installs it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from bench.bench_server_memory import slope
from bench.common import Context, Result, percentile
from bench.report import render

from bench import (
    bench_api_writes,
    bench_balance_read,
    bench_hot_accounts,
    bench_import,
    bench_rules,
    bench_server_memory,
    wrk,
)

PG_ADMIN_URL = os.environ.get("ALLEGIANCE_TEST_POSTGRES_URL")
NEEDS_WRK = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/bench installs it)")
FIGURE_KEYS = {"name", "value", "unit", "baseline_name", "baseline", "ratio", "target", "met"}

WRK_OUTPUT = """Running 20s test @ http://127.0.0.1:8123/api/v1/events
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    20.51ms    5.02ms 120.30ms   85.12%
    Req/Sec   780.12     60.01     0.90k    70.00%
  Latency Distribution
     50%   19.80ms
     75%   22.10ms
     90%   25.00ms
     99%    1.20s
  31234 requests in 20.02s, 6.54MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   1560.14
Transfer/sec:    334.21KB
"""


def _run(run: Callable[[Context], Result], tmp_path: Path) -> dict:
    result = run(Context(workdir=tmp_path / "work", postgres_url=PG_ADMIN_URL, mode="toy")).as_dict()
    assert set(result) >= {"name", "title", "figures", "details", "notes", "seconds"}
    assert result["figures"], "a benchmark must report at least one figure"
    for figure in result["figures"]:
        assert set(figure) >= FIGURE_KEYS
        assert figure["value"] > 0 and figure["baseline"] > 0 and figure["ratio"] > 0, figure
        assert figure["met"] in (True, False, None)
    return result


@NEEDS_WRK
def test_api_writes(tmp_path: Path) -> None:
    result = _run(bench_api_writes.run, tmp_path)
    runs = result["details"]["runs"]
    assert {"hello", "sqlite", "sqlite_normal"} <= set(runs)
    assert ("postgresql_2w" in runs) == (PG_ADMIN_URL is not None)
    assert runs["sqlite"]["events_stored"] >= runs["sqlite"]["requests"] > 0  # every answer was a stored event


def test_hot_accounts(tmp_path: Path) -> None:
    result = _run(bench_hot_accounts.run, tmp_path)
    for measured in result["details"]["runs"].values():
        assert measured["spread"]["failures"] == measured["hot"]["failures"] == 0
        # every award the benchmark counted is in the verified ledger (plus the warm-up's)
        assert measured["verified_transactions"] >= measured["spread"]["awards"] + measured["hot"]["awards"]
    doc = render({"run": {"command": "python -m bench.run", "machine": {"cpu": "test cpu"}},
                  "benchmarks": {"hot_accounts": result}}, order=["hot_accounts"])
    assert "test cpu" in doc and result["figures"][1]["name"] in doc


@NEEDS_WRK
def test_balance_read(tmp_path: Path) -> None:
    result = _run(bench_balance_read.run, tmp_path)
    for measured in result["details"]["runs"].values():
        assert measured["postings"] == 2 * result["details"]["awards"]
        assert measured["verified"]["rows in postings"] == measured["postings"]


def test_import(tmp_path: Path) -> None:
    result = _run(bench_import.run, tmp_path)
    for measured in result["details"]["runs"].values():
        assert measured["command"]["exit_code"] == 0 and measured["command"]["peak_rss_mb"] > 0


def test_rules(tmp_path: Path) -> None:
    result = _run(bench_rules.run, tmp_path)
    assert len(bench_rules.hundred_rules()["rules"]) == 100
    backtest = result["details"]["backtest"]["big"]
    assert backtest["events"] == backtest["scanned"] > 0 and backtest["awards"] > 0
    imported = result["details"]["import_sqlite"]
    assert imported["ladder_events"] > 0 and imported["with_ladder_per_s"] > 0  # every row accepted, or it raises
    assert imported["with_ladder_and_rules_per_s"] > 0 and imported["ladder_rebuild_per_s"] > 0


@NEEDS_WRK
def test_server_memory(tmp_path: Path) -> None:
    result = _run(bench_server_memory.run, tmp_path)
    samples = result["details"]["samples"]
    assert len(samples) >= 2 and samples[-1]["requests"] == result["details"]["requests"] > 0


def test_wrk_output_is_parsed() -> None:
    parsed = wrk.parse(WRK_OUTPUT)
    assert (parsed.requests, parsed.seconds, parsed.rps) == (31234, 20.02, 1560.14)
    assert (parsed.p50_ms, parsed.p99_ms, parsed.max_ms) == (19.8, 1200.0, 120.3)
    assert parsed.errors == 4 + 3


def test_wrk_output_without_latency_distribution_is_refused() -> None:
    with pytest.raises(ValueError, match="--latency"):
        wrk.parse(WRK_OUTPUT.replace("99%    1.20s", ""))


def test_percentile_and_slope() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4, 5], 100) == 5
    assert slope([(0, 10), (100, 20), (200, 30)]) == pytest.approx(0.1)
    assert slope([(5, 1)]) == 0.0
