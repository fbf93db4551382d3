"""What every benchmark shares: the run context, figures with their baselines, percentiles and the
machine description.

A figure is never printed alone: :class:`Figure` holds the measured value, the baseline measured
in the same run, their ratio and the project's target, so a reader can tell a slow machine from a
slow code path.
"""

from __future__ import annotations

import os
import platform
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

MODES = ("toy", "quick", "default", "long")
REPO = Path(__file__).resolve().parent.parent


def _stderr(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


@dataclass
class Context:
    """One run: where scratch files go, which PostgreSQL to use (None = SQLite only), which sizes."""

    workdir: Path
    postgres_url: str | None = None
    mode: str = "default"
    log: Callable[[str], None] = _stderr

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def backends(self) -> list[str]:
        return ["sqlite"] + (["postgresql"] if self.postgres_url else [])

    def pick(self, toy: Any, quick: Any, default: Any, long: Any | None = None) -> Any:
        """The size for this run's mode (``long`` falls back to ``default``)."""
        return {"toy": toy, "quick": quick, "default": default,
                "long": default if long is None else long}[self.mode]


@dataclass
class Figure:
    """One measured number, its same-run baseline and the target it is held to.

    ``ratio`` is always ``value / baseline``; ``met`` is None when the project set no target.
    """

    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


@dataclass
class Result:
    """What one benchmark returns: its figures, the raw measurements and plain-language notes."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "figures": [f.as_dict() for f in self.figures],
                "details": self.details, "notes": self.notes, "seconds": round(self.seconds, 1)}


def at_least(value: float, target: float) -> bool:
    return value >= target


def at_most(value: float, target: float) -> bool:
    return value <= target


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of unsorted values."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds, and the call rate one caller achieved."""
    total = sum(seconds)
    return {"calls": len(seconds), "p50_ms": percentile(seconds, 50) * 1e3, "p90_ms": percentile(seconds, 90) * 1e3,
            "p99_ms": percentile(seconds, 99) * 1e3, "max_ms": max(seconds) * 1e3,
            "calls_per_s": len(seconds) / total if total else 0.0}


def time_calls(fn: Callable[[], Any], *, count: int, max_seconds: float) -> list[float]:
    """Call ``fn`` up to ``count`` times (stopping after ``max_seconds``); each call's duration."""
    durations: list[float] = []
    deadline = time.perf_counter() + max_seconds
    while len(durations) < count and time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - start)
    return durations


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kb(pid: int, key: str = "VmRSS") -> int:
    """A process's resident memory (or ``VmHWM``, its peak) in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not found for pid {pid}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _postgres_version(url: str | None) -> str | None:
    if not url:
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()


def _wrk_version() -> str | None:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else None


def code_version() -> str:
    """The commit measured, and whether the work tree had uncommitted changes (read-only git calls)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=REPO, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes' if dirty else ''}"


def machine(postgres_url: str | None) -> dict[str, Any]:
    """The machine and software every figure was measured on."""
    packages: dict[str, str | None] = {}
    for name in ("fastapi", "starlette", "uvicorn", "sqlalchemy", "psycopg", "pydantic", "uvloop", "httptools"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "ram_gib": _ram_gib(),
        "kernel": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version, "postgresql": _postgres_version(postgres_url), "wrk": _wrk_version(),
        "packages": packages, "code": code_version(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
