"""kill -9 in the middle of an import, then run it again: no duplicate, no loss, no partial chunk;
and the process reading the file for the importer does not outlive it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.pool import NullPool

from allegiance.bootstrap import Allegiance
from allegiance.storage import tables as t
from allegiance.synthetic import SynthConfig, generate, iter_event_rows
from tests.conftest import TEST_SECRET, ProgramFixture
from tests.storage.test_bulk_events import seed_program

CHUNK = 500
CONFIG = SynthConfig(seed=9, organizations=110, months=72, dealers=4)  # ~33,000 events


def _observer(db_url: str) -> Engine:
    """A separate connection, as another process would have."""
    return create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=NullPool)


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.events)).scalar_one())


def _children(pid: int) -> list[int]:
    """Child process ids (Linux /proc); an empty list where that is not available."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


@pytest.mark.slow
def test_an_import_killed_with_sigkill_resumes_without_duplicate_or_loss(
        allegiance: Allegiance, program: ProgramFixture, db_url: str, tmp_path: Path) -> None:
    world = generate(CONFIG)
    seed_program(allegiance, program.id, world)
    rows = list(iter_event_rows(world))
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    source_ids = {r["source_id"] for r in rows}
    assert len(rows) > 25_000
    command = [sys.executable, "-m", "allegiance", "events", "import", str(path), "--program", program.slug,
               "--chunk-size", str(CHUNK), "--parallel"]
    env = {**os.environ, "ALLEGIANCE_DATABASE_URL": db_url, "ALLEGIANCE_ENVIRONMENT": "test",
           "ALLEGIANCE_SECRET_KEY": TEST_SECRET}
    observer = _observer(db_url)
    pause = threading.Event()
    try:
        victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert victim.stderr is not None
        deadline = time.monotonic() + 60
        while _count(observer) < CHUNK and victim.poll() is None and time.monotonic() < deadline:
            pause.wait(0.05)
        still_running = victim.poll() is None
        readers = _children(victim.pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        with victim.stderr:  # closed whatever the assertions say
            told = victim.stderr.read().decode()[-500:] if not still_running else ""
        assert still_running, "the import ended before it could be killed: " + told
        if Path("/proc/self/task").is_dir():
            assert readers, "the import did not read the file in a second process"
        deadline = time.monotonic() + 30
        while any(map(_alive, readers)) and time.monotonic() < deadline:
            pause.wait(0.05)
        assert not any(map(_alive, readers)), "the reading process outlived the killed importer"

        committed = _count(observer)
        assert 0 < committed < len(rows)
        assert committed % CHUNK == 0, f"{committed} events: a partial chunk was committed"
        with observer.connect() as conn:
            imported = conn.execute(select(t.outbox.c.payload).where(t.outbox.c.topic == "events.imported")).all()
        assert sum(p["count"] for (p,) in imported) == committed  # each chunk's outbox row came with it

        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert rerun.returncode == 0, rerun.stderr
        with observer.connect() as conn:
            stored = conn.execute(select(t.events.c.source_id).where(t.events.c.program_id == program.id)
                                  ).scalars().all()
            counted = conn.execute(select(t.outbox.c.payload).where(t.outbox.c.topic == "events.imported")).all()
    finally:
        observer.dispose()
    assert len(stored) == len(source_ids)
    assert set(stored) == source_ids
    assert sum(p["count"] for (p,) in counted) == len(source_ids)
