"""Prepared chunks of a bulk file, read and prepared in a second process while this one writes.

Why a process: preparing a row (JSON, fingerprint, schema validation, ~10 µs) and storing it
(~15 µs) are both pure CPU under the GIL, so a thread would not overlap them; a process on the
second core does. Why ``python -m allegiance.events.producer`` rather than ``multiprocessing``:
the child starts in ~0.1 s importing only this package (``spawn`` would re-import the
command-line program as ``__mp_main__``, ``fork`` copies a process with database connections
and threads), and the protocol is plain length-prefixed frames on its standard output: ``marshal``
(prepared chunks are only tuples, lists, strings, ints and None; 3x faster to write than pickle,
and the reader is our own child on a private pipe, the one case marshal is meant for).

Safe to kill, either side:

* the writer commits chunk by chunk, so what a killed import stored is whole chunks; this process
  only reads the file, so killing it (or it dying) loses nothing;
* the stream ends with a ``done`` frame: a child that dies half-way is reported, never taken for
  the end of the file;
* the pipe and a one-slot queue are the bound: a thread of the writer decodes the next chunk while
  the writer stores the current one, the child prepares the one after and then waits to write it,
  so memory stays at a few chunks whatever the file size; if the writer dies (``kill -9``) the
  child's next write fails (EPIPE) and it exits. Ctrl-C is the writer's to handle: the child
  ignores SIGINT and is stopped by the writer.
"""

from __future__ import annotations

import contextlib
import gc
import json
import marshal
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from allegiance.events.prepare import PreparedChunk, prepare_columns, prepare_pairs
from allegiance.events.readers import RowSource, UnreadableFile, open_rows
from allegiance.events.rows import PayloadChecker

_HEADER = struct.Struct("<Q")


def prepared_chunks(source: RowSource, checker: PayloadChecker, chunk_size: int) -> Iterator[PreparedChunk]:
    """The chunks of an open file, prepared in this process: columns for Parquet, rows otherwise."""
    batches = source.column_batches(chunk_size)
    if batches is not None:
        for first_line, columns in batches:
            yield prepare_columns(first_line, columns, checker)
        return
    rows = iter(source)
    while batch := list(islice(rows, chunk_size)):
        yield prepare_pairs(batch, checker)


class ProducerFailed(RuntimeError):
    """The reading process ended without finishing the file (it crashed or was killed)."""


class Producer:
    """The child process for one file: iterate it for prepared chunks, in file order; ``close``
    (or ``with``) stops it. Raises ``UnreadableFile`` where the file turns out to be unreadable,
    after the chunks before that point, as reading in-process does."""

    def __init__(self, path: Path, fmt: str, schemas: Mapping[str, dict[str, Any]], chunk_size: int,
                 zone: str | None = None) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "allegiance.events.producer"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._out: IO[bytes] = self._process.stdout
        try:
            with self._process.stdin:  # closed even when the write fails (no file left to the GC)
                self._process.stdin.write(json.dumps([str(path), fmt, dict(schemas), chunk_size, zone]).encode())
        except BrokenPipeError:
            pass  # it died at once: reading the stream says so
        self._frames: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._reader = threading.Thread(target=self._read, name="allegiance-import-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """The reading thread: frames into the queue, then None for the end of the stream. Reading
        the pipe releases the GIL, and so does the writer inside SQLite, so the two overlap."""
        frame: Any = ()
        try:
            while frame is not None and frame[:1] in ((), ("chunk",)):
                frame = self._frame()
                self._frames.put(frame)
        except (OSError, ValueError, EOFError):  # the pipe closed under us, or a torn frame
            self._frames.put(None)

    def __iter__(self) -> Iterator[PreparedChunk]:
        while True:
            frame = self._frames.get()
            if frame is None:
                code = self._process.wait()
                raise ProducerFailed(f"the process reading the file stopped unexpectedly (exit code {code})")
            kind = frame[0]
            if kind == "chunk":
                yield PreparedChunk(*frame[1])
            elif kind == "unreadable":
                raise UnreadableFile(frame[1], field=frame[2])
            else:
                return

    def _frame(self) -> Any:
        header = self._out.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack(header)
        body = self._out.read(size)
        return marshal.loads(body) if len(body) == size else None

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        while self._reader.is_alive():  # it ends at the end of the stream, once it can hand that over
            with contextlib.suppress(queue.Empty):
                self._frames.get(timeout=0.1)
        self._out.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _send(out: IO[bytes], frame: tuple[Any, ...]) -> None:
    body = marshal.dumps(frame)
    out.write(_HEADER.pack(len(body)))
    out.write(body)
    out.flush()


def main() -> None:
    """The child: read the job from stdin, write frames to stdout (see the module doc)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Parsed JSON makes no reference cycles, yet the cyclic collector keeps scanning the chunk in
    # flight: collecting ~70x less often made preparing a row ~20% cheaper (14.8 -> 11.6 us).
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing else may write into the frame stream
    path, fmt, schemas, chunk_size, zone = json.loads(sys.stdin.buffer.read())
    try:
        try:
            with open_rows(path, fmt) as source:
                for chunk in prepared_chunks(source, PayloadChecker(schemas, zone), chunk_size):
                    _send(out, ("chunk", (chunk.rows, chunk.rejects, chunk.count)))
            _send(out, ("done",))
        except UnreadableFile as exc:
            _send(out, ("unreadable", exc.message, exc.field))
        out.close()
    except BrokenPipeError:
        os._exit(0)  # the writer is gone (killed, or stopped us): nothing left to do


if __name__ == "__main__":
    main()
