"""A backtest on two cores: a second process reads the stored events and evaluates them against the
draft (``RulesService.evaluations``) while this one settles them (``Simulation.apply``).

Why: a backtest is pure Python under the GIL — reading and decoding the events, their subjects and
``evaluate()`` were 44 % of the 1,000,000-event run, settling and accounting the awards 53 % — so
only a process overlaps them. The split is exact: evaluation reads nothing the simulation changes
(the draft, the stored events, organizations, people and tiers), and the events arrive in the
order they would have been fed in one process, so the report is the same
(``tests/storage/test_backtest_feed.py``).

The child is ``python -m allegiance.storage.backtest_feed``: the request (settings, program, draft
document, period) as JSON on its standard input, then length-prefixed frames of evaluated
events on its standard output (``marshal`` of ``rules.backtest_events.packed`` tuples: loading pickled
``Firing`` objects cost the settling side ~20 µs each, more than it saved), ending with an empty
frame — a child that dies half-way is reported, never taken for the end of the events. The pipe
is the bound: the child waits while a frame is unread, so memory stays at a few frames.
"""

from __future__ import annotations

import json
import marshal
import queue
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import IO

from allegiance.config import Settings
from allegiance.kernel.collector import rare_collections
from allegiance.rules.backtest_events import Draft, Evaluated, Feed, Unpacker, packed

_HEADER = struct.Struct("<Q")
FRAME_EVENTS = 2_000  # evaluated events per frame
FRAMES_AHEAD = 16  # frames the evaluating process may have written ahead of the settling one (~7 MB)
PARALLEL_MIN_EVENTS = 50_000  # below this, starting a second process costs more than it saves


class FeedFailed(RuntimeError):
    """The evaluating process stopped before the end of the events."""


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def evaluated_in_child(settings: Settings) -> Feed:
    """A ``Feed`` for ``RulesService.simulate`` that evaluates in a second process over the same
    database (``settings``)."""

    def feed(program_id: int, draft: Draft, start: datetime, end: datetime) -> Iterator[Evaluated]:
        request = {"settings": settings.model_dump(mode="json"), "program_id": program_id,
                   "document": draft.document, "version": draft.version, "start": start.isoformat(),
                   "end": end.isoformat()}
        errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed below; not a pipe, that a chatty child could fill
        child = subprocess.Popen([sys.executable, "-m", "allegiance.storage.backtest_feed"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
        assert child.stdin is not None and child.stdout is not None
        finished = False
        unpack = Unpacker()
        try:
            child.stdin.write(json.dumps(request, default=str).encode())
            child.stdin.close()
            while (header := _read_exactly(child.stdout, _HEADER.size)) is not None:
                (size,) = _HEADER.unpack(header)
                if size == 0:
                    finished = True
                    break
                frame = _read_exactly(child.stdout, size)
                if frame is None:
                    break
                for plain in marshal.loads(frame):  # our own child, on a private pipe
                    yield unpack(plain)
        finally:
            if not finished:
                child.kill()
            child.stdout.close()
            code = child.wait()
            errors.seek(0)
            said = errors.read().decode(errors="replace")
            errors.close()
        if not finished or code != 0:
            raise FeedFailed(f"the evaluating process stopped (exit code {code}): {said.strip()[-2000:]}")

    return feed


class _FrameWriter:
    """Frames written to the pipe by a thread of their own, up to ``FRAMES_AHEAD`` waiting.

    Without it the evaluating process stopped at every frame until the settling one had read the
    previous one: each side waited on the other in turn (the settling side 16 s of a 70 s
    1,000,000-event backtest). A blocked pipe write releases the GIL, so the evaluation goes on
    meanwhile. The end-of-events frame is written only by ``close``: an evaluation that fails
    leaves the stream without it, which the settling side reports as a failure."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.frames: queue.Queue[bytes | None] = queue.Queue(maxsize=FRAMES_AHEAD)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._write, name="frame-writer", daemon=True)
        self.thread.start()

    def _write(self) -> None:
        while (data := self.frames.get()) is not None:
            if self.failure is not None:
                continue  # drain, so that ``put`` never blocks on a writer that has stopped
            try:
                self.sink.write(_HEADER.pack(len(data)))
                self.sink.write(data)
            except BaseException as exc:  # handed to the evaluating thread, raised there
                self.failure = exc

    def put(self, data: bytes) -> None:
        if self.failure is not None:
            raise self.failure
        self.frames.put(data)

    def close(self, *, complete: bool) -> None:
        """Wait for the frames queued; then, if ``complete``, write the end of the events."""
        self.frames.put(None)
        self.thread.join()
        if self.failure is not None:
            raise self.failure
        if complete:
            self.sink.write(_HEADER.pack(0))
            self.sink.flush()


def _serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The child: evaluate the request's events and write them as frames."""
    from allegiance.bootstrap import build

    request = json.loads(source.read())
    app = build(Settings.model_validate(request["settings"]))
    writer = _FrameWriter(sink)
    complete = False
    try:
        program_id = int(request["program_id"])
        start, end = datetime.fromisoformat(request["start"]), datetime.fromisoformat(request["end"])
        with app.read() as uow, rare_collections():
            target = request["version"] if request["version"] is not None else request["document"]
            draft = uow.rules.draft(program_id, target, start, end)
            events = uow.rules.evaluations(program_id, draft, start, end)
            while frame := list(islice(events, FRAME_EVENTS)):
                writer.put(marshal.dumps([packed(event) for event in frame]))
            complete = True
    finally:
        try:
            writer.close(complete=complete)
        finally:
            app.close()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
