"""Group commit for SQLite: concurrent write transactions share one COMMIT (one fsync).

Why: with ``synchronous=FULL`` every COMMIT waits for an fsync of the WAL, a few milliseconds on
ordinary disks, and SQLite has a single writer — so one commit per request caps the whole server
at a few hundred writes per second however fast the code is. PostgreSQL groups concurrent commits
itself; SQLite does not, so this module does it in-process.

How: writers queue in arrival order (FIFO, no barging) for the one write connection. The first
opens ``BEGIN IMMEDIATE``; each writer runs its block inside its own SAVEPOINT, so a block that
raises is rolled back alone and nothing of it is written. A writer that finishes while others are
queued hands the open transaction to the next one instead of committing; the last of the group
(nobody queued, or the group is full or old) commits for everyone. Every writer returns only
after that COMMIT: what a caller was told is written is on disk, exactly as before. If the COMMIT
fails — or SQLite dropped the transaction under a failing statement — every member of the group
gets an error and nothing of the group is written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, Engine

logger = logging.getLogger(__name__)
AFTER_COMMIT = "allegiance.after_commit"  # Connection.info key: callbacks to run once committed


class GroupCommitFailed(RuntimeError):
    """The shared transaction this write belonged to could not be committed; nothing was written."""


class _Group:
    """One open transaction and the blocks that ran in it."""

    __slots__ = ("callbacks", "conn", "done", "error", "members", "poisoned", "started", "transaction")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transaction = conn.begin()
        self.started = time.monotonic()
        self.members = 0  # blocks that completed (their savepoint released)
        self.poisoned = False  # the transaction can no longer be committed
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.callbacks: list[Callable[[], None]] = []


class GroupCommitter:
    """Runs write blocks on one SQLite connection, committing them in groups."""

    def __init__(self, engine: Engine, *, max_group: int = 64, max_group_seconds: float = 0.025) -> None:
        self.engine = engine
        self.max_group = max_group
        self.max_group_seconds = max_group_seconds
        self._mutex = threading.Lock()
        self._busy = False
        self._queue: deque[threading.Lock] = deque()  # one parked lock per waiting writer
        self._group: _Group | None = None
        self.commits = 0  # COMMITs issued: how well writes are being grouped (tests, diagnostics)
        self.on_queue: Callable[[int], None] | None = None  # called with the queue length as a writer joins it

    def _acquire(self) -> None:
        with self._mutex:
            if not self._busy:
                self._busy = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._queue.append(turn)
            queued = len(self._queue)
        try:
            if self.on_queue is not None:
                self.on_queue(queued)
            turn.acquire()  # released by the writer handing over: ownership passes directly to us
        except BaseException:  # interrupted while queued: leave the queue, or pass on what we were given
            with self._mutex:
                still_queued = turn in self._queue
                if still_queued:
                    self._queue.remove(turn)
            if not still_queued:
                self._give_up_ownership()
            raise

    def _give_up_ownership(self) -> None:
        """We own the connection but will run no block: close the open group (its members are
        waiting for its commit) or pass the connection on."""
        if self._group is not None:
            self._finish(self._group)
        else:
            self._release()

    def _release(self) -> None:
        with self._mutex:
            if self._queue:
                self._queue.popleft().release()
            else:
                self._busy = False

    def _hand_over(self, group: _Group) -> bool:
        """Pass the open transaction to the next queued writer, if the group may grow."""
        if group.poisoned or group.members >= self.max_group:
            return False
        if time.monotonic() - group.started >= self.max_group_seconds:
            return False
        with self._mutex:
            if not self._queue:
                return False
            self._queue.popleft().release()
        return True

    def _open(self) -> _Group:
        conn = self.engine.connect()
        try:
            group = _Group(conn)
        except BaseException:
            conn.close()
            raise
        conn.info[AFTER_COMMIT] = group.callbacks
        self._group = group
        return group

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One caller's write: atomic on its own (a savepoint), durable when this returns."""
        self._acquire()
        group = self._group
        try:
            if group is None:
                group = self._open()
            _savepoint(group.conn, "SAVEPOINT")
        except BaseException:
            if group is None:
                self._release()
            else:
                group.poisoned = True
                self._finish(group)
            raise
        kept = len(group.callbacks)
        failure: BaseException | None = None
        try:
            yield group.conn
        except BaseException as exc:
            failure = exc
        try:
            if failure is not None:
                del group.callbacks[kept:]
                _savepoint(group.conn, "ROLLBACK TO")
            _savepoint(group.conn, "RELEASE")
        except BaseException as exc:
            group.poisoned = True
            failure = failure or exc
        if not group.poisoned and not _in_transaction(group.conn):
            group.poisoned = True
        if failure is None:
            group.members += 1
        if not self._hand_over(group):
            self._finish(group)
        if failure is not None:
            raise failure
        group.done.wait()
        if group.error is not None:
            raise GroupCommitFailed(f"the write was not committed: {group.error}") from group.error

    def _finish(self, group: _Group) -> None:
        """Commit (or roll back) the group, wake its members, free the connection. Owner only."""
        try:
            if group.members and not group.poisoned:
                group.transaction.commit()
                self.commits += 1
            else:
                group.transaction.rollback()
                if group.members:
                    group.error = GroupCommitFailed("the shared transaction was lost by a failing statement")
        except BaseException as exc:
            group.error = exc
            with suppress(Exception):  # the commit's error is the one to report
                group.transaction.rollback()
        self._group = None
        try:
            if group.error is None:
                run_after_commit(group.callbacks)  # before any member is answered
            group.conn.info.pop(AFTER_COMMIT, None)
            group.conn.close()
        finally:
            self._release()
            group.done.set()


def run_after_commit(callbacks: list[Callable[[], None]]) -> None:
    """The data is committed whatever a callback does: a failing one is logged, the others still run."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            logger.exception("an after-commit callback failed")


def _savepoint(conn: Connection, verb: str) -> None:
    """Straight to the driver: SQLAlchemy's savepoint objects cost more than the statements, and the
    block's own ``begin_nested()`` (if any) nests inside this one and is closed before it."""
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:
        raise GroupCommitFailed("the write connection was invalidated")
    cursor = dbapi.cursor()
    try:
        cursor.execute(f"{verb} allegiance_write")
    finally:
        cursor.close()


def _in_transaction(conn: Connection) -> bool:
    """SQLite's own view: a failing statement (disk full, I/O error) can end the transaction."""
    try:
        return bool(conn.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]
    except Exception:  # an invalidated connection has no transaction left
        return False
