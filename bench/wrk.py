"""The load generator: ``wrk`` in its own process, driven by Lua scripts written here, its text
output parsed into numbers.

Every write script builds its request bodies in ``request()`` with a per-thread counter and a run
tag, so every event has a distinct ``source_id`` (a repeated one would be a cheap duplicate, not a
write). Latency percentiles come from ``--latency``. Runs are bounded by ``-d``.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
MAX_ERROR_SHARE = 0.001  # more errors than this and a run is refused, not reported
THREAD_PRELUDE = """
local counter = 0
local thread_count = 0
function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end
function init(args)
  tag = args[1] or "run"
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx/3xx answers plus socket errors

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ms(value: str, unit: str) -> float:
    return float(value) * UNITS[unit]


def parse(output: str) -> WrkResult:
    """Numbers from wrk's report (``--latency`` required for the percentiles)."""
    def grab(pattern: str) -> re.Match[str]:
        found = re.search(pattern, output)
        if found is None:
            raise ValueError(f"wrk output has no {pattern!r}:\n{output}")
        return found

    total = grab(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
    percentiles = {q: _ms(v, u) for q, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)", output, re.M)}
    latency = grab(r"Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m)")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket:
        errors += sum(int(g) for g in socket.groups())
    if set(percentiles) != {"50", "75", "90", "99"}:
        raise ValueError(f"wrk output has no latency distribution (run it with --latency):\n{output}")
    return WrkResult(requests=int(total.group(1)), seconds=_ms(total.group(2), total.group(3)) / 1e3,
                     rps=float(grab(r"Requests/sec:\s+([\d.]+)").group(1)),
                     p50_ms=percentiles["50"], p75_ms=percentiles["75"], p90_ms=percentiles["90"],
                     p99_ms=percentiles["99"], max_ms=_ms(latency.group(1), latency.group(2)), errors=errors)


def run(url: str, script: Path, *, seconds: float, connections: int, threads: int = 2, tag: str = "run",
        timeout_s: int = 10) -> WrkResult:
    """Load ``url`` for ``seconds`` with ``connections`` open connections; bounded by wrk's ``-d``."""
    threads = max(1, min(threads, connections))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s}s",
               "--latency", "-s", str(script), url, "--", tag]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse(done.stdout)
    if result.errors > MAX_ERROR_SHARE * max(1, result.requests):
        # A run where answers are errors (429, 5xx, timeouts) measures the error path, not the server.
        raise RuntimeError(f"{result.errors} of {result.requests} answers were non-2xx/3xx or socket errors "
                           f"({url}); the figures would be meaningless:\n{done.stdout}")
    return result


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII text


def _headers(token: str | None, json_body: bool) -> str:
    pairs = []
    if token:
        pairs.append(f'["Authorization"] = {_lua("Bearer " + token)}')
    if json_body:
        pairs.append('["Content-Type"] = "application/json"')
    return "{" + ", ".join(pairs) + "}"


def event_body_lua(organization_id: int, event_type: str) -> str:
    """A Lua expression building a unique event body from ``tag``, ``tid`` and ``counter``."""
    template = ('{"source_id":"%s-%d-%d","type":' + json.dumps(event_type)
                + ',"occurred_at":"2025-03-01T12:00:00+00:00","organization_id":' + str(organization_id)
                + ',"payload":{"amount_minor":%d}}')
    return f"string.format({_lua(template)}, tag, tid, counter, counter % 100000)"


def post_events_script(path: Path, *, token: str | None, organization_id: int, event_type: str,
                       target: str = "/api/v1/events") -> Path:
    """POST one unique event per request."""
    path.write_text(THREAD_PRELUDE + f"""
local headers = {_headers(token, True)}
function request()
  counter = counter + 1
  return wrk.format("POST", {_lua(target)}, headers, {event_body_lua(organization_id, event_type)})
end
""")
    return path


def get_script(path: Path, *, token: str | None, targets: list[str]) -> Path:
    """GET the given paths in turn."""
    items = ", ".join(_lua(t) for t in targets)
    path.write_text(THREAD_PRELUDE + f"""
local headers = {_headers(token, False)}
local targets = {{{items}}}
function request()
  counter = counter + 1
  return wrk.format("GET", targets[(counter % #targets) + 1], headers)
end
""")
    return path


def mixed_script(path: Path, *, token: str, reads: list[str], organization_id: int, event_type: str,
                 writes_per_cycle: int = 1) -> Path:
    """Each cycle sends every read path once, then ``writes_per_cycle`` unique event writes."""
    items = ", ".join(_lua(t) for t in reads)
    path.write_text(THREAD_PRELUDE + f"""
local get_headers = {_headers(token, False)}
local post_headers = {_headers(token, True)}
local reads = {{{items}}}
local cycle = #reads + {writes_per_cycle}
function request()
  counter = counter + 1
  local slot = counter % cycle
  if slot < #reads then
    return wrk.format("GET", reads[slot + 1], get_headers)
  end
  return wrk.format("POST", "/api/v1/events", post_headers, {event_body_lua(organization_id, event_type)})
end
""")
    return path


def measure(url: str, script: Path, *, warmup_s: float, seconds: float, connections: int,
            tag: str) -> WrkResult:
    """A warm-up run (discarded: imports, caches, connection pools, JIT of the Lua) then the measured run."""
    if warmup_s > 0:
        run(url, script, seconds=warmup_s, connections=connections, tag=f"{tag}w")
    return run(url, script, seconds=seconds, connections=connections, tag=f"{tag}m")
