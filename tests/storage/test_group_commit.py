"""SQLite group commit: queued writers share one COMMIT, yet each write stays atomic on its own and
none returns before its data is committed.

The races are driven, not hoped for: the first writer holds the connection until ``on_queue``
reports that every other writer is queued, so the group's make-up is known exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from allegiance.storage.database import Database, after_commit
from allegiance.storage.group_commit import GroupCommitFailed, GroupCommitter

Block = Callable[[Connection], None]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'group.db'}")
    with database.write() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE child (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
                          "parent_id INTEGER REFERENCES parent (id))"))
    yield database
    database.dispose()


def committer(db: Database) -> GroupCommitter:
    assert db.group_commit is not None
    db.group_commit.max_group_seconds = 60.0  # the test decides when the group closes, not the clock
    return db.group_commit


def insert(name: str) -> Block:
    def block(conn: Connection) -> None:
        conn.execute(text("INSERT INTO child (name) VALUES (:name)"), {"name": name})
    return block


def names(db: Database) -> set[str]:
    """What a fresh reader sees: only committed rows."""
    with db.read() as conn:
        return set(conn.execute(text("SELECT name FROM child")).scalars())


def run_as_one_group(db: Database, blocks: list[Block]) -> list[BaseException | None]:
    """Run ``blocks`` in threads; the first holds the connection until all others are queued, so
    they all share its transaction. Returns each block's exception (None = it returned)."""
    gc = committer(db)
    everyone_queued = threading.Event()
    gc.on_queue = lambda queued: everyone_queued.set() if queued == len(blocks) - 1 else None
    first_inside = threading.Event()
    outcomes: list[BaseException | None] = [None] * len(blocks)

    def writer(index: int) -> None:
        try:
            with db.write() as conn:
                if index == 0:
                    first_inside.set()
                    assert everyone_queued.wait(timeout=30)
                blocks[index](conn)
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=writer, args=(0,))]
    threads[0].start()
    assert first_inside.wait(timeout=30)
    threads += [threading.Thread(target=writer, args=(i,)) for i in range(1, len(blocks))]
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    gc.on_queue = None
    return outcomes


def test_queued_writers_share_one_commit(db: Database) -> None:
    before = committer(db).commits
    outcomes = run_as_one_group(db, [insert(f"w{i}") for i in range(8)])
    assert outcomes == [None] * 8
    assert names(db) == {f"w{i}" for i in range(8)}
    assert committer(db).commits - before == 1


def test_a_writer_returns_only_after_its_commit(db: Database) -> None:
    """Each writer, right after ``write()`` returns, finds its row from another connection."""
    seen: dict[str, bool] = {}
    gc = committer(db)
    everyone_queued = threading.Event()
    gc.on_queue = lambda queued: everyone_queued.set() if queued == 3 else None

    def writer(name: str, hold: threading.Event | None) -> None:
        with db.write() as conn:
            if hold is not None:
                hold.set()
                assert everyone_queued.wait(timeout=30)
            insert(name)(conn)
        seen[name] = name in names(db)

    inside = threading.Event()
    first = threading.Thread(target=writer, args=("a", inside))
    first.start()
    assert inside.wait(timeout=30)
    others = [threading.Thread(target=writer, args=(n, None)) for n in ("b", "c", "d")]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(timeout=60)
    assert seen == {"a": True, "b": True, "c": True, "d": True}


def test_a_failing_block_is_rolled_back_alone(db: Database) -> None:
    def half_then_fail(conn: Connection) -> None:
        insert("half-written")(conn)
        raise ValueError("refused")

    before = committer(db).commits
    outcomes = run_as_one_group(db, [insert("a"), half_then_fail, insert("c")])
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ValueError)
    assert names(db) == {"a", "c"}
    assert committer(db).commits - before == 1


def test_a_failing_statement_does_not_undo_the_others(db: Database) -> None:
    """A unique violation inside one block (the statement fails, SQLite keeps the transaction)."""
    outcomes = run_as_one_group(db, [insert("same"), insert("same"), insert("other")])
    assert outcomes[0] is None and outcomes[2] is None
    assert outcomes[1] is not None and "UNIQUE" in str(outcomes[1])
    assert names(db) == {"same", "other"}


def test_a_failed_commit_fails_every_member_and_writes_nothing(db: Database) -> None:
    """A deferred foreign key is only checked at COMMIT: the whole group's commit fails."""
    def dangling(conn: Connection) -> None:
        conn.execute(text("PRAGMA defer_foreign_keys = ON"))
        conn.execute(text("INSERT INTO child (name, parent_id) VALUES ('dangling', 999)"))

    outcomes = run_as_one_group(db, [insert("a"), dangling, insert("c")])
    assert all(isinstance(outcome, GroupCommitFailed) for outcome in outcomes), outcomes
    assert names(db) == set()
    with db.write() as conn:  # the connection is usable again afterwards
        insert("later")(conn)
    assert names(db) == {"later"}


def test_a_lost_transaction_fails_the_group_instead_of_half_committing(db: Database) -> None:
    """If SQLite ends the transaction under a block (here: a raw ROLLBACK, as an I/O error would),
    the earlier members' writes are gone: they must hear so, not be told they are written."""
    def lose_it(conn: Connection) -> None:
        dbapi: Any = conn.connection.dbapi_connection
        dbapi.execute("ROLLBACK")

    outcomes = run_as_one_group(db, [insert("a"), lose_it, insert("c")])
    assert isinstance(outcomes[0], GroupCommitFailed)
    assert outcomes[1] is not None
    assert names(db) <= {"c"}  # "c" may have started a fresh group after the failed one
    if "c" not in names(db):
        assert isinstance(outcomes[2], GroupCommitFailed)


def test_after_commit_runs_once_committed_and_not_for_a_rolled_back_block(db: Database) -> None:
    calls: list[str] = []

    def noting(name: str, fail: bool = False) -> Block:
        def block(conn: Connection) -> None:
            insert(name)(conn)
            after_commit(conn, lambda: calls.append(f"{name}:{'seen' if name in names(db) else 'unseen'}"))
            if fail:
                raise ValueError("refused")
        return block

    run_as_one_group(db, [noting("a"), noting("b", fail=True), noting("c")])
    assert sorted(calls) == ["a:seen", "c:seen"]


def test_after_commit_outside_a_write_runs_at_once(db: Database) -> None:
    calls: list[int] = []
    with db.read() as conn:
        after_commit(conn, lambda: calls.append(1))
        assert calls == [1]


def test_a_writer_interrupted_while_queued_leaves_the_queue(db: Database) -> None:
    """Nobody may wait forever for a writer that is gone (here its ``on_queue`` hook raises)."""
    gc = committer(db)
    inside = threading.Event()
    release = threading.Event()
    outcomes: dict[str, BaseException | None] = {}

    def interrupt(_queued: int) -> None:
        raise KeyboardInterrupt

    def holder() -> None:
        with db.write() as conn:
            inside.set()
            assert release.wait(timeout=30)
            insert("holder")(conn)

    first = threading.Thread(target=holder)
    first.start()
    assert inside.wait(timeout=30)
    gc.on_queue = interrupt
    try:
        with db.write() as conn:
            insert("interrupted")(conn)
    except KeyboardInterrupt as exc:
        outcomes["interrupted"] = exc
    gc.on_queue = None
    release.set()
    first.join(timeout=60)
    with db.write() as conn:  # the connection was not lost to the interrupted writer
        insert("after")(conn)
    assert isinstance(outcomes["interrupted"], KeyboardInterrupt)
    assert names(db) == {"holder", "after"}
