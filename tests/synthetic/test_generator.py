"""The synthetic program is deterministic, internally consistent and realistically shaped."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator

import jsonschema
import pytest

import allegiance.synthetic as synthetic
from allegiance.synthetic import (
    EVENT_TYPES,
    ROLES,
    SEGMENTS,
    EventRecord,
    EventSource,
    OrgContext,
    SynthConfig,
    SyntheticProgram,
    default_sources,
    event_type_catalog,
    generate,
)

SMALL = SynthConfig(seed=7, organizations=40, months=6)
# Long enough for drift to play out and for a tail of big customers to show.
MEDIUM = SynthConfig(seed=11, organizations=150, months=24, dealers=6)


@pytest.fixture(scope="module")
def small() -> SyntheticProgram:
    return generate(SMALL)


@pytest.fixture(scope="module")
def small_events(small: SyntheticProgram) -> list[EventRecord]:
    return list(small.events())


@pytest.fixture(scope="module")
def medium() -> SyntheticProgram:
    return generate(MEDIUM)


@pytest.fixture(scope="module")
def medium_events(medium: SyntheticProgram) -> list[EventRecord]:
    return list(medium.events())


def _customers(program: SyntheticProgram) -> list[synthetic.OrganizationRecord]:
    return [o for o in program.organizations if o.kind == "customer"]


# --- determinism -----------------------------------------------------------------------------


def test_the_same_config_gives_identical_data(small: SyntheticProgram,
                                              small_events: list[EventRecord]) -> None:
    # when
    again = generate(SMALL)
    # then
    assert again.organizations == small.organizations
    assert again.participants == small.participants
    assert again.latent == small.latent
    assert list(again.events()) == small_events
    assert repr(list(again.events())) == repr(small_events)  # payload key order too


def test_another_seed_gives_different_data(small: SyntheticProgram,
                                           small_events: list[EventRecord]) -> None:
    other = generate(SynthConfig(seed=8, organizations=40, months=6))
    assert [o.name for o in other.organizations] != [o.name for o in small.organizations]
    assert list(other.events()) != small_events


def test_events_stream_afresh_on_each_call(small: SyntheticProgram,
                                           small_events: list[EventRecord]) -> None:
    stream = small.events()
    assert isinstance(stream, Iterator)
    assert next(stream) == small_events[0]
    assert list(small.events()) == small_events


def test_an_added_sub_generator_leaves_existing_events_unchanged(
        small_events: list[EventRecord]) -> None:
    # given a new sub-generator, as surveys or tickets will be added later
    def pings(ctx: OrgContext, rng: object) -> list[EventRecord]:
        at = ctx.timeline.midnight[ctx.first_day] + dt.timedelta(hours=12)
        return [EventRecord(f"ping-{ctx.org.external_id}", "ping", ctx.org.external_id, None, at,
                            {})]

    # when
    extended = generate(SMALL, sources=(*default_sources(), EventSource("pings", pings)))
    events = list(extended.events())
    # then
    assert [e for e in events if e.type != "ping"] == small_events
    assert sum(e.type == "ping" for e in events) == len(extended.organizations)


# --- organizations and people ------------------------------------------------------------------


def test_the_channel_hierarchy_is_distributor_dealers_customers(small: SyntheticProgram) -> None:
    orgs = small.organizations
    kinds = Counter(o.kind for o in orgs)
    assert kinds == {"distributor": 1, "dealer": SMALL.dealers, "customer": SMALL.organizations}
    distributor = next(o for o in orgs if o.kind == "distributor")
    assert (distributor.external_id, distributor.parent_external_id) == ("DIST-0001", None)
    dealers = [o for o in orgs if o.kind == "dealer"]
    assert [d.external_id for d in dealers] == [f"DLR-{i:04d}" for i in range(1, SMALL.dealers + 1)]
    assert all(d.parent_external_id == "DIST-0001" for d in dealers)
    kind_of = {o.external_id: o.kind for o in orgs}
    customers = _customers(small)
    assert [c.external_id for c in customers][:2] == ["CUS-000001", "CUS-000002"]
    assert all(kind_of[c.parent_external_id or ""] in ("dealer", "customer") for c in customers)


def test_every_parent_exists_without_cycles_and_groups_are_three_deep(
        small: SyntheticProgram) -> None:
    parent = {o.external_id: o.parent_external_id for o in small.organizations}
    depths = []
    for org_id in parent:
        ancestors = [org_id]
        node = parent[org_id]
        while node is not None:
            assert node in parent, f"missing parent {node}"
            assert node not in ancestors, f"cycle through {node}"
            ancestors.append(node)
            node = parent[node]
        depths.append(len(ancestors) - 1)
    assert max(depths) >= 3


def test_every_organization_has_exactly_one_owner_who_is_an_admin(small: SyntheticProgram) -> None:
    owners = Counter(p.organization_external_id for p in small.participants if p.role == "owner")
    assert owners == {o.external_id: 1 for o in small.organizations}
    assert all(p.is_org_admin for p in small.participants if p.role == "owner")
    assert {p.role for p in small.participants} <= set(ROLES)
    assert {o.segment for o in small.organizations} <= set(SEGMENTS)


def test_ids_and_emails_are_unique_and_emails_ascii(medium: SyntheticProgram) -> None:
    org_ids = [o.external_id for o in medium.organizations]
    person_ids = [p.external_id for p in medium.participants]
    emails = [p.email for p in medium.participants]
    assert len(set(org_ids)) == len(org_ids)
    assert len(set(person_ids)) == len(person_ids)
    assert len(set(emails)) == len(emails)
    assert all(e.isascii() and e.count("@") == 1 and "." in e.split("@")[1] for e in emails)


def test_names_are_multilingual(medium: SyntheticProgram) -> None:
    names = [o.name for o in medium.organizations] + [p.name for p in medium.participants]
    assert any("\uac00" <= ch <= "\ud7a3" for n in names for ch in n), "no Hangul"
    assert any(ch in n for n in names for ch in "ıİşŞğĞ"), "no Turkish letters"
    assert {p.locale for p in medium.participants} >= {"ko", "tr", "de", "en"}


def test_people_share_their_organizations_locale_and_time_zone(small: SyntheticProgram) -> None:
    orgs = {o.external_id: o for o in small.organizations}
    zones = {"KR": "Asia/Seoul", "TR": "Europe/Istanbul", "DE": "Europe/Berlin"}
    for p in small.participants:
        org = orgs[p.organization_external_id]
        assert p.locale == org.locale
        assert p.time_zone == zones.get(org.country, p.time_zone)
        assert p.time_zone.count("/") == 1


def test_people_who_left_have_a_date_and_others_do_not(medium: SyntheticProgram) -> None:
    for p in medium.participants:
        assert (p.status == "left") == (p.left_on is not None)
    missing_birthdays = sum(p.birthday is None for p in medium.participants)
    assert 0.15 < missing_birthdays / len(medium.participants) < 0.45


# --- events ------------------------------------------------------------------------------------


def test_every_payload_validates_against_its_catalog_schema(small_events: list[EventRecord]) -> None:
    catalog = event_type_catalog()
    assert set(catalog) == set(EVENT_TYPES)
    validators = {}
    for name, schema in catalog.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        validators[name] = jsonschema.Draft202012Validator(schema)
    for e in small_events:
        validators[e.type].validate(e.payload)
    assert {e.type for e in small_events} >= {"order.placed", "invoice.paid", "training.completed"}


def test_the_catalog_rejects_a_negative_amount() -> None:
    schema = event_type_catalog()["invoice.paid"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"invoice_id": "I-1", "order_id": "O-1", "amount_minor": -1}, schema)


def test_source_ids_are_unique_and_times_are_utc(medium_events: list[EventRecord]) -> None:
    ids = [e.source_id for e in medium_events]
    assert len(set(ids)) == len(ids)
    assert all(e.occurred_at.utcoffset() == dt.timedelta(0) for e in medium_events)


def test_order_amounts_equal_the_sum_of_their_lines(medium_events: list[EventRecord]) -> None:
    for e in medium_events:
        if e.type == "order.placed":
            lines = e.payload["lines"]
            assert e.payload["amount_minor"] == sum(
                li["quantity"] * li["unit_price_minor"] for li in lines)
            assert len({li["sku"] for li in lines}) == len(lines)


def test_invoices_and_returns_follow_an_existing_order(medium_events: list[EventRecord]) -> None:
    orders = {e.payload["order_id"]: e for e in medium_events if e.type == "order.placed"}
    invoices = [e for e in medium_events if e.type == "invoice.paid"]
    returns = [e for e in medium_events if e.type == "order.returned"]
    assert invoices and returns
    for e in invoices + returns:
        order = orders[e.payload["order_id"]]
        assert e.organization_external_id == order.organization_external_id
        assert e.occurred_at > order.occurred_at
    for e in invoices:
        assert e.payload["amount_minor"] == orders[e.payload["order_id"]].payload["amount_minor"]
    for e in returns:
        assert 0 < e.payload["amount_minor"] <= orders[e.payload["order_id"]].payload["amount_minor"]
    assert 0.8 < len(invoices) / len(orders) < 0.97
    assert 0.01 < len(returns) / len(orders) < 0.06


def test_events_fall_inside_the_window_and_the_organizations_membership(
        medium: SyntheticProgram, medium_events: list[EventRecord]) -> None:
    orgs = {o.external_id: o for o in medium.organizations}
    start = dt.datetime.combine(MEDIUM.start, dt.time(), dt.UTC)
    end = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    last: dict[str, dt.datetime] = {}
    for e in medium_events:
        org = orgs[e.organization_external_id]
        assert start <= e.occurred_at < end
        assert e.occurred_at.date() >= org.joined_on
        assert org.left_on is None or e.occurred_at.date() <= org.left_on
        # sorted in time within each organization
        assert e.occurred_at >= last.get(org.external_id, e.occurred_at)
        last[org.external_id] = e.occurred_at
    joiners = [o for o in _customers(medium) if o.joined_on >= MEDIUM.start]
    assert joiners, "some customers should join during the window"


def test_people_act_only_until_they_leave(medium: SyntheticProgram,
                                          medium_events: list[EventRecord]) -> None:
    people = {p.external_id: p for p in medium.participants}
    by_person: dict[str, list[EventRecord]] = defaultdict(list)
    for e in medium_events:
        if e.participant_external_id is not None:
            person = people[e.participant_external_id]
            assert person.organization_external_id == e.organization_external_id
            by_person[person.external_id].append(e)
    leavers = [p for p in medium.participants if p.left_on is not None]
    assert leavers
    for p in leavers:
        events = by_person[p.external_id]
        departures = [e for e in events if e.type == "participant.left"]
        assert len(departures) == 1 and departures[0].occurred_at.date() == p.left_on
        assert max(e.occurred_at for e in events) == departures[0].occurred_at


def test_a_share_of_customers_drifts_away_and_orders_fade_first(
        medium: SyntheticProgram, medium_events: list[EventRecord]) -> None:
    customers = _customers(medium)
    drifting = [c for c in customers if c.status == "left"]
    assert 0.15 <= len(drifting) / len(customers) <= 0.25
    assert all(c.left_on is not None for c in drifting)
    orders: dict[str, list[dt.date]] = defaultdict(list)
    for e in medium_events:
        if e.type == "order.placed":
            orders[e.organization_external_id].append(e.occurred_at.date())
    first_half, last_half = 0, 0
    for c in drifting:
        assert c.left_on is not None
        active_from = max(c.joined_on, MEDIUM.start)
        first_half += sum(d < active_from + dt.timedelta(days=182) for d in orders[c.external_id])
        last_half += sum(d > c.left_on - dt.timedelta(days=182) for d in orders[c.external_id])
    assert last_half < 0.7 * first_half


def test_a_tenth_of_customers_brings_most_revenue(medium: SyntheticProgram,
                                                  medium_events: list[EventRecord]) -> None:
    revenue: Counter[str] = Counter()
    for e in medium_events:
        if e.type == "order.placed":
            revenue[e.organization_external_id] += e.payload["amount_minor"]
    top = sorted(revenue.values(), reverse=True)[: len(_customers(medium)) // 10]
    assert sum(top) > 0.4 * sum(revenue.values())


def test_orders_follow_the_season_and_the_working_week(medium_events: list[EventRecord]) -> None:
    orders = [e.occurred_at for e in medium_events if e.type == "order.placed"]
    by_month = Counter(t.month for t in orders)
    weekend = sum(t.weekday() >= 5 for t in orders)
    assert by_month[8] < 0.8 * by_month[11]
    assert weekend / len(orders) < 0.08


def test_the_package_exports_what_it_declares() -> None:
    for name in synthetic.__all__:
        assert hasattr(synthetic, name), name
    public = {n for n in dir(synthetic) if not n.startswith("_")}
    modules = {"context", "generator", "generator_activity", "generator_orders", "model", "names",
               "people", "products", "timeline", "world", "writer"}
    assert public - modules - {"annotations"} == set(synthetic.__all__)


def test_config_rejects_an_empty_program() -> None:
    with pytest.raises(ValueError, match="organizations"):
        SynthConfig(organizations=0)
