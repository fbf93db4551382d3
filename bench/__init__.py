"""Allegiance benchmarks: ``make bench`` (``bash scripts/bench``) → ``python -m bench.run``.

Every figure is measured, never assumed, and printed next to a baseline measured in the same run
on the same machine, because an absolute number from an unknown machine says little. Load comes
from ``wrk`` in a separate process, against ``allegiance serve`` in its own subprocess, on
loopback only, and every load loop is bounded in time. Results go to ``bench/results/latest.json``
and ``docs/benchmarks.md``. None of this runs in ``make test`` except a toy-size smoke test.
"""
