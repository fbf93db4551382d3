"""The short-lived caches: expiry, invalidation, the epoch guard against storing a stale read, and
which database's caches a connection reaches."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from allegiance.bootstrap import Allegiance
from allegiance.storage.cache import Caches, TtlCache, caches_of
from allegiance.storage.database import Database, after_commit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_exactly_ttl_seconds() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(2.0, clock=clock)
    cache.put("k", 1, cache.epoch())
    clock.now += 1.999
    assert cache.get("k") == 1
    clock.now += 0.001
    assert cache.get("k") is None


def test_invalidate_drops_everything() -> None:
    cache: TtlCache[str, int] = TtlCache(60.0)
    cache.put("a", 1, cache.epoch())
    cache.put("b", 2, cache.epoch())
    cache.invalidate()
    assert (cache.get("a"), cache.get("b"), len(cache)) == (None, None, 0)


def test_a_value_read_before_an_invalidation_is_not_stored() -> None:
    """Reader takes the epoch, reads the old row; a revocation commits and invalidates; the reader's
    late ``put`` must not bring the old row back."""
    cache: TtlCache[str, str] = TtlCache(60.0)
    epoch = cache.epoch()
    cache.invalidate()
    cache.put("key", "stale principal", epoch)
    assert cache.get("key") is None
    cache.put("key", "fresh principal", cache.epoch())
    assert cache.get("key") == "fresh principal"


def test_ttl_zero_caches_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(0)
    cache.put("k", 1, cache.epoch())
    assert cache.get("k") is None


def test_the_cache_is_bounded() -> None:
    cache: TtlCache[int, int] = TtlCache(60.0, max_entries=3)
    for key in range(10):
        cache.put(key, key, cache.epoch())
    assert len(cache) <= 3
    assert cache.get(9) == 9


def test_configure_changes_ttl_and_clock_and_forgets() -> None:
    caches = Caches(60.0)
    caches.principals.put("k", object(), caches.principals.epoch())  # type: ignore[arg-type]
    clock = Clock()
    caches.configure(5.0, clock=clock)
    assert caches.principals.get("k") is None
    caches.event_types.put((1, "t"), {"type": "object"}, caches.event_types.epoch())
    clock.now += 5.0
    assert caches.event_types.get((1, "t")) is None


def test_connections_reach_their_own_databases_caches(tmp_path: Path) -> None:
    first = Database(f"sqlite:///{tmp_path / 'a.db'}")
    second = Database(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        with first.write() as conn:
            assert caches_of(conn) is first.caches
        with first.read() as conn:  # SQLite reads use another engine: same caches
            assert caches_of(conn) is first.caches
        with second.read() as conn:
            assert caches_of(conn) is second.caches
        assert first.caches is not second.caches
    finally:
        first.dispose()
        second.dispose()


def test_a_connection_no_database_made_caches_nothing(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        with engine.connect() as conn:
            caches = caches_of(conn)
            caches.event_types.put((1, "t"), {}, caches.event_types.epoch())
            assert caches.event_types.get((1, "t")) is None
    finally:
        engine.dispose()


def test_declaring_a_type_replaces_the_cached_schema_once_committed(allegiance: Allegiance) -> None:
    with allegiance.write() as uow:
        program = uow.programs.create_program("cache-p", "Cache")
        uow.events.declare_type(program["id"], "order.placed", {"type": "object", "required": ["a"]})
    with allegiance.read() as uow:
        assert uow.event_store.event_type_schema(program["id"], "order.placed") == {
            "type": "object", "required": ["a"]}
    try:
        with allegiance.write() as uow:
            uow.events.declare_type(program["id"], "order.placed", {"type": "object"})
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with allegiance.read() as uow:  # a rolled-back declaration changed nothing, cached or not
        assert uow.event_store.event_type_schema(program["id"], "order.placed") == {
            "type": "object", "required": ["a"]}
    with allegiance.write() as uow:
        uow.events.declare_type(program["id"], "order.placed", {"type": "object", "required": ["b"]})
    with allegiance.read() as uow:
        assert uow.event_store.event_type_schema(program["id"], "order.placed") == {
            "type": "object", "required": ["b"]}


def test_an_undeclared_type_is_not_cached_as_missing(allegiance: Allegiance) -> None:
    with allegiance.write() as uow:
        program = uow.programs.create_program("cache-q", "Cache")
    with allegiance.read() as uow:
        assert uow.event_store.event_type_schema(program["id"], "late.type") is None
    with allegiance.write() as uow:
        uow.events.declare_type(program["id"], "late.type", {"type": "object"})
    with allegiance.read() as uow:
        assert uow.event_store.event_type_schema(program["id"], "late.type") == {"type": "object"}


def test_after_commit_runs_after_the_commit_and_never_after_a_rollback(allegiance: Allegiance) -> None:
    """On both backends: what runs after commit sees the committed row from another connection."""
    seen: list[bool] = []

    def program_visible(slug: str) -> bool:
        with allegiance.read() as uow:
            return uow.program_store.program_by_slug(slug) is not None

    with allegiance.write() as uow:
        uow.programs.create_program("after-1", "After")
        after_commit(uow.conn, lambda: seen.append(program_visible("after-1")))
        assert seen == []
    assert seen == [True]
    try:
        with allegiance.write() as uow:
            uow.programs.create_program("after-2", "After")
            after_commit(uow.conn, lambda: seen.append(program_visible("after-2")))
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert seen == [True]


def test_a_feature_a_program_lacks_is_remembered_until_it_is_configured(allegiance: Allegiance) -> None:
    """Every event asks whether its program has tier ladders, discount cards or referral settings;
    that it has none is cached, and configuring one clears the cache when it commits (not before)."""
    with allegiance.write() as uow:
        program_id = int(uow.programs.create_program("cache-f", "Cache")["id"])
        organization_id = int(uow.programs.create_organization(program_id, {
            "external_id": "o-1", "name": "Org", "kind": "customer"})["id"])
    with allegiance.read() as uow:
        conn = uow.conn
        assert uow.tier_store.ladders(program_id) == []
        assert uow.tier_store.has_cards(program_id) is False
        assert uow.referral_store.settings(program_id) is None
    unconfigured = caches_of(conn).unconfigured
    for feature in ("ladders", "cards", "referrals"):
        assert unconfigured.get((feature, program_id)) is False

    try:
        with allegiance.write() as uow:
            uow.tier_store.insert_ladder(program_id, "gold", "organization", {"tiers": []}, "test")
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert unconfigured.get(("ladders", program_id)) is False  # nothing was written: still true

    with allegiance.write() as uow:
        uow.tier_store.insert_ladder(program_id, "gold", "organization", {"tiers": []}, "test")
    with allegiance.read() as uow:
        assert [row["code"] for row in uow.tier_store.ladders(program_id)] == ["gold"]
    with allegiance.write() as uow:
        uow.tier_store.save_card(program_id, organization_id, {"percent": "5"}, "test")
    with allegiance.read() as uow:
        assert uow.tier_store.has_cards(program_id) is True
    with allegiance.write() as uow:
        uow.referral_store.save_settings(program_id, {"qualifying_event": "order.placed"}, "test")
    with allegiance.read() as uow:
        settings = uow.referral_store.settings(program_id)
        assert settings is not None and settings["document"] == {"qualifying_event": "order.placed"}
