"""Short-lived in-process caches of rarely changing rows: API key principals, event type schemas,
active rule sets, and whether a program has configured the features every event asks about (tier
ladders, discount cards, referral settings).

Why: a single-event write used to spend a separate read transaction authenticating its key and a
query fetching the type's schema — more database work than the write itself. Both rows change
rarely, so each process keeps them for a few seconds (``Settings.cache_seconds``).

Staleness bound: a change made through *this* process (revoking a key, a participant leaving,
declaring a type) clears the cache when its transaction commits, before that request is
answered. A change made by another process (a second uvicorn worker, the CLI) is seen at most
``ttl`` seconds later. Only found rows are cached: an unknown key or type is looked up every time,
so a newly created key or type works at once.

Races: a reader that looked a row up before an invalidation must not store what it read after
it; ``epoch()`` is taken before the lookup and ``put`` drops the value if the cache was
invalidated in between.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine

from allegiance.access.model import Principal

K = TypeVar("K")
V = TypeVar("V")
DEFAULT_TTL_SECONDS = 2.0


class TtlCache(Generic[K, V]):
    """Entries expire ``ttl`` seconds after they were stored; ``invalidate`` drops them all.

    ``ttl == 0`` turns the cache off. At most ``max_entries`` are kept (then it starts afresh)."""

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._epoch = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def epoch(self) -> int:
        """Take before looking a value up; pass to ``put``."""
        return self._epoch

    def put(self, key: K, value: V, epoch: int) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if epoch != self._epoch:  # invalidated while the value was being read: it may be stale
                return
            if len(self._entries) >= self.max_entries:
                self._entries = {}
            self._entries[key] = (self.clock() + self.ttl, value)

    def invalidate(self) -> None:
        with self._lock:
            self._epoch += 1
            self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class Caches:
    """The caches of one database (shared by its read and write engines)."""

    ttl: float = DEFAULT_TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    principals: TtlCache[str, Principal] = field(init=False)  # sha256 of the key -> its principal
    event_types: TtlCache[tuple[int, str], dict[str, Any]] = field(init=False)  # (program, type) -> schema
    # program -> (active version or 0, its compiled rule set or None); "none active" is cached too,
    # since every event of a program without rules asks.
    rule_sets: TtlCache[int, tuple[int, Any]] = field(init=False)
    compiled_rules: dict[tuple[int, int], Any] = field(init=False)  # (program, version) -> compiled, immutable
    # (feature, program) -> False: the program has none ("ladders", "cards", "referrals"). Every event
    # asks each observer whether it has work; most programs use few features. Only absence is kept:
    # a configured feature is read from the database as before.
    unconfigured: TtlCache[tuple[str, int], bool] = field(init=False)

    def __post_init__(self) -> None:
        self.principals = TtlCache(self.ttl, clock=self.clock)
        self.event_types = TtlCache(self.ttl, clock=self.clock)
        self.rule_sets = TtlCache(self.ttl, clock=self.clock)
        self.compiled_rules = {}
        self.unconfigured = TtlCache(self.ttl, clock=self.clock)

    def configure(self, ttl: float, *, clock: Callable[[], float] | None = None) -> None:
        """Set the lifetime of every entry (0 = no caching), and the clock; drops what is cached."""
        self.ttl = ttl
        self.clock = clock or self.clock
        for cache in (self.principals, self.event_types, self.rule_sets, self.unconfigured):
            cache.ttl = ttl
            cache.clock = self.clock
            cache.invalidate()


_BY_ENGINE: WeakKeyDictionary[Engine, Caches] = WeakKeyDictionary()
_NONE = Caches(ttl=0)  # for a connection of an engine no Database made: nothing is cached


def register(engine: Engine, caches: Caches) -> None:
    _BY_ENGINE[engine] = caches


def caches_of(conn: Connection) -> Caches:
    """The caches of the database ``conn`` belongs to (repositories only hold a connection)."""
    return _BY_ENGINE.get(conn.engine, _NONE)


def unless_unconfigured(conn: Connection, feature: str, program_id: int, lookup: Callable[[], V], empty: V) -> V:
    """``lookup()``, unless the program is known to have nothing for ``feature`` (then ``empty``).
    An empty answer is remembered; whoever writes the feature's rows clears the cache when its
    transaction commits (``after_commit(conn, caches_of(conn).unconfigured.invalidate)``)."""
    cache = caches_of(conn).unconfigured
    if cache.get((feature, program_id)) is False:
        return empty
    epoch = cache.epoch()
    value = lookup()
    if not value:
        cache.put((feature, program_id), False, epoch)
    return value
