"""A backtest evaluated in a second process (``storage.backtest_feed``) reports exactly what the
one-process backtest reports, on SQLite and PostgreSQL; a second process that fails is an error,
never a partial report."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from allegiance.bootstrap import Allegiance
from allegiance.cli.main import app as cli
from allegiance.storage.backtest_feed import _HEADER, FRAMES_AHEAD, FeedFailed, _FrameWriter, evaluated_in_child
from tests.conftest import ProgramFixture, make_settings
from tests.rules.test_simulate import END, START, draft, program_with_history, record_all


@pytest.mark.parametrize(("count", "seed"), [(160, 11), (120, 5)])
def test_two_processes_report_what_one_process_reports(allegiance: Allegiance, program: ProgramFixture, count: int,
                                                       seed: int) -> None:
    events = program_with_history(allegiance, program, count, seed=seed)
    record_all(allegiance, program.id, events, "history")
    with allegiance.write() as uow:
        version = int(uow.rules.save(program.id, draft(), by="test")["version"])
    with allegiance.read() as uow:
        alone = uow.rules.simulate(program.id, version, START, END)
        paired = uow.rules.simulate(program.id, version, START, END, feed=evaluated_in_child(allegiance.settings))
        document = uow.rules.simulate(program.id, draft(), START, END, feed=evaluated_in_child(allegiance.settings))
    assert alone.events_read == count and alone.awards > 0 and alone.clawed_back and alone.caps_hit
    assert paired.as_dict() == alone.as_dict()
    assert {**document.as_dict(), "rule_set_version": version} == alone.as_dict()


def test_a_failed_second_process_is_an_error_not_a_short_report(allegiance: Allegiance, program: ProgramFixture,
                                                                tmp_path: Path) -> None:
    events = program_with_history(allegiance, program, 30)
    record_all(allegiance, program.id, events, "h")
    elsewhere = make_settings(f"sqlite:///{tmp_path / 'missing' / 'none.db'}")  # the child cannot open it
    with allegiance.read() as uow, pytest.raises(FeedFailed, match="exit code"):
        uow.rules.simulate(program.id, draft(), START, END, feed=evaluated_in_child(elsewhere))


def test_the_command_runs_in_two_processes_when_asked(allegiance: Allegiance, program: ProgramFixture,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = program_with_history(allegiance, program, 80)
    record_all(allegiance, program.id, events, "h")
    path = tmp_path / "draft.yaml"
    path.write_text(yaml.safe_dump(draft()))
    monkeypatch.setenv("ALLEGIANCE_DATABASE_URL", allegiance.settings.database_url)
    reports = []
    for flag in ("--parallel", "--no-parallel"):
        result = CliRunner().invoke(cli, ["rules", "simulate", program.slug, str(path), "--from", START.isoformat(),
                                          "--to", END.isoformat(), "--format", "json", flag])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.output))
    assert reports[0] == reports[1] and reports[0]["events_read"] == 80


def _frames(data: bytes) -> list[bytes]:
    """The frames of a child's output, ``b""`` for the end of the events."""
    frames, at = [], 0
    while at < len(data):
        (size,) = _HEADER.unpack_from(data, at)
        at += _HEADER.size
        frames.append(data[at:at + size])
        at += size
    return frames


@pytest.mark.parametrize("complete", [True, False])
def test_frames_written_ahead_keep_their_order_and_end_only_when_complete(complete: bool) -> None:
    sink = io.BytesIO()
    writer = _FrameWriter(sink)
    sent = [bytes([n % 256]) * (n + 1) for n in range(3 * FRAMES_AHEAD)]
    for data in sent:
        writer.put(data)
    writer.close(complete=complete)
    assert _frames(sink.getvalue()) == sent + ([b""] if complete else [])


class _BreakingPipe(io.RawIOBase):
    """A pipe whose reader goes away: the first write says it has started (``writing``), waits for
    ``gate``, then every write fails."""

    def __init__(self) -> None:
        self.writing = threading.Event()
        self.gate = threading.Event()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.writing.set()
        self.gate.wait(timeout=30)
        raise BrokenPipeError("the settling process has gone")


def test_a_pipe_that_breaks_stops_the_evaluation_instead_of_blocking_it() -> None:
    pipe = _BreakingPipe()
    writer = _FrameWriter(pipe)  # type: ignore[arg-type]
    writer.put(b"first")
    assert pipe.writing.wait(timeout=30)  # the writer holds the first frame, inside the pipe's write
    for _ in range(FRAMES_AHEAD):
        writer.put(b"queued")
    assert writer.frames.full()  # the evaluation is as far ahead as it may go
    pipe.gate.set()  # now the write fails: the queued frames must be drained, or close() waits for ever
    closing: list[BaseException] = []

    def close() -> None:  # in a thread the test can give up on
        try:
            writer.close(complete=True)
        except BrokenPipeError as exc:
            closing.append(exc)

    closer = threading.Thread(target=close, daemon=True)
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive(), "close() blocked on a writer that had stopped"
    # Every queued frame was taken off the queue: a writer that stopped at the failure would leave it
    # full, and a put() already waiting for room, then close(), would wait for ever.
    assert writer.frames.empty()
    assert len(closing) == 1  # the failure surfaces in close()...
    with pytest.raises(BrokenPipeError):
        writer.put(b"more")  # ...and in any later put(), which never blocks
