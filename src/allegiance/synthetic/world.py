"""The shared world: organizations, their hidden behaviour, and the people in them.

Everything that several event sub-generators must agree on (who exists, who left when, which
customers drift away) is decided here once, from one seeded stream, so sub-generators stay
independent of each other and can be added without changing existing output.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from random import Random

from ._drivers import churn_driver
from .model import LatentProfile, OrganizationRecord, ParticipantRecord, SynthConfig
from .names import COUNTRIES, COUNTRY_WEIGHTS, CompanyName, company_name, site_name, subsidiary_name
from .people import staff
from .products import CATEGORY_SHARE
from .timeline import Timeline

DISTRIBUTOR_ID = "DIST-0001"
DRIFT_SHARE = 0.2  # customers that drift away during the window
JOIN_SHARE = 0.2  # customers that join during the window
_COUNTRIES = list(COUNTRY_WEIGHTS)
_COUNTRY_CUM = [sum(list(COUNTRY_WEIGHTS.values())[: i + 1]) for i in range(len(_COUNTRIES))]
# Share of orders per channel (online, dealer, phone) by country: Korea buys online most.
_CHANNELS = {"KR": (0.7, 0.2, 0.1), "TR": (0.35, 0.45, 0.2)}
_DEFAULT_CHANNELS = (0.5, 0.35, 0.15)


@dataclass(frozen=True)
class World:
    config: SynthConfig
    timeline: Timeline
    organizations: list[OrganizationRecord]
    participants: list[ParticipantRecord]
    latent: dict[str, LatentProfile]
    members: dict[str, list[ParticipantRecord]]


@dataclass
class _Customer:
    """Mutable draft of a customer; frozen into records once drift and people are decided."""

    external_id: str
    parent: str
    group_head: int  # index of the group head, or -1
    name: CompanyName
    country: str
    segment: str
    size: float
    joined_on: dt.date
    domain: str
    left_on: dt.date | None = None
    drift_start: dt.date | None = None


def _country(rng: Random) -> str:
    u = rng.random() * _COUNTRY_CUM[-1]
    return next(c for c, cum in zip(_COUNTRIES, _COUNTRY_CUM, strict=True) if u < cum)


def _segment(rng: Random, size: float, business_only: bool = False) -> str:
    u = 1.0 if business_only else rng.random()
    if u < 0.07:
        return "public-sector"
    if u < 0.11:
        return "education"
    return "enterprise" if size >= 40 else "mid-market" if size >= 6 else "small-business"


class _Domains:
    """Unique e-mail domains: two companies with the same name still get distinct ones."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}

    def __call__(self, slug: str, country: str) -> str:
        base = f"{slug or 'company'}.{COUNTRIES[country][3]}"
        n = self.used.get(base, 0) + 1
        self.used[base] = n
        return base if n == 1 else f"{slug or 'company'}{n}.{COUNTRIES[country][3]}"


def _draft_customers(rng: Random, config: SynthConfig, tl: Timeline,
                     dealers: list[OrganizationRecord], domains: _Domains) -> list[_Customer]:
    by_country: dict[str, list[str]] = {}
    for d in dealers:
        by_country.setdefault(d.country, []).append(d.external_id)
    drafts: list[_Customer] = []
    taken: set[str] = set()  # names inside groups, which would otherwise repeat
    heads: list[int] = []
    subsidiaries: list[int] = []
    n = config.organizations
    for i in range(n):
        ext = f"CUS-{i + 1:06d}"
        u = rng.random()
        # Customer 0 always heads a group and the last one joins a group if nothing else did,
        # so even tiny datasets have a hierarchy deeper than distributor -> dealer -> customer.
        force_sub = i == n - 1 and i > 0 and not subsidiaries
        if i > 0 and (u < 0.06 or force_sub) and heads:
            parent_index = rng.choice(heads)
        elif i > 0 and u < 0.08 and subsidiaries:
            parent_index = rng.choice(subsidiaries)
        else:
            parent_index = -1
        if parent_index < 0:
            is_head = i == 0 or u > 0.97
            country = _country(rng)
            # Group heads are big; everyone else is Pareto-sized: many small buyers, few whales.
            size = 20 * rng.paretovariate(1.5) if is_head else rng.paretovariate(1.16)
            size = min(size, 400.0)
            segment = _segment(rng, size) if size < 20 else "enterprise"
            name = company_name(rng, country, segment)
            parent = rng.choice(by_country.get(country) or [d.external_id for d in dealers])
            if is_head:
                heads.append(i)
                taken.add(name.name)
            # Newer customers get higher ids, as they would in a real CRM.
            if i < int(n * (1 - JOIN_SHARE)) or is_head:
                joined = tl.start - dt.timedelta(days=rng.randint(30, 12 * 365))
            else:
                joined = tl.start + dt.timedelta(days=rng.randint(0, int(tl.n_days * 0.75)))
            drafts.append(_Customer(ext, parent, -1, name, country, segment, size, joined,
                                    domains(name.slug, country)))
            continue
        drafts.append(_group_member(rng, tl, ext, drafts, parent_index, taken))
        if drafts[-1].group_head == parent_index:
            subsidiaries.append(i)
    return drafts


def _group_member(rng: Random, tl: Timeline, ext: str, drafts: list[_Customer], parent_index: int,
                  taken: set[str]) -> _Customer:
    """A subsidiary of a group head, or a site of a subsidiary; named uniquely within groups."""
    owner = drafts[parent_index]
    head = owner if owner.group_head < 0 else drafts[owner.group_head]
    is_site = owner.group_head >= 0
    country = owner.country if is_site or rng.random() < 0.7 else _country(rng)
    for attempt in range(6):
        if is_site:
            name = CompanyName(site_name(rng, owner.name.name, country), owner.name.stem,
                               owner.name.slug, owner.name.latin)
        else:
            # A second national company in one country gets a trade name instead.
            name = subsidiary_name(rng, head.name, head.country if attempt < 2 else country,
                                   country)
        if name.name not in taken:
            break
    else:
        name = CompanyName(f"{name.name} ({ext})", name.stem, name.slug, name.latin)
    taken.add(name.name)
    size = min(rng.paretovariate(1.3) * 2, 400.0)
    # Group companies are businesses; a site shares its company's segment.
    segment = owner.segment if is_site else _segment(rng, size, business_only=True)
    joined = max(owner.joined_on, tl.start - dt.timedelta(days=rng.randint(30, 8 * 365)))
    group_head = owner.group_head if is_site else parent_index
    return _Customer(ext, owner.external_id, group_head, name, country, segment, size, joined,
                     head.domain)


def _decide_drift(rng: Random, tl: Timeline, drafts: list[_Customer]) -> None:
    """Pick the customers that fade out: a slow decay over months, then they stop."""
    eligible = [c for c in drafts
                if (tl.end - max(c.joined_on, tl.start)).days >= min(120, int(tl.n_days * 0.6))]
    count = min(len(eligible), round(DRIFT_SHARE * len(drafts)))
    for c in rng.sample(eligible, count):
        active_from = max(c.joined_on, tl.start)
        span = (tl.end - active_from).days
        decay = min(rng.randint(90, 240), int(span * 0.6))
        left = active_from + dt.timedelta(days=rng.randint(int(span * 0.2) + decay, span))
        c.left_on, c.drift_start = left, left - dt.timedelta(days=decay)


def build_world(config: SynthConfig) -> World:
    rng = Random(f"allegiance-synthetic/{config.seed}/world")
    tl = Timeline(config.start, config.months)
    domains = _Domains()
    dist_name = company_name(rng, "DE", "enterprise")
    orgs = [OrganizationRecord(DISTRIBUTOR_ID, dist_name.name, "distributor", None, "enterprise",
                               "DE", "de", "active", tl.start - dt.timedelta(days=3650), None)]
    org_domains = [domains(dist_name.slug, "DE")]
    by_weight = sorted(_COUNTRIES, key=lambda c: -COUNTRY_WEIGHTS[c])
    for i in range(config.dealers):
        country = by_weight[i % len(by_weight)]
        name = company_name(rng, country, "mid-market")
        joined = tl.start - dt.timedelta(days=rng.randint(365, 8 * 365))
        orgs.append(OrganizationRecord(f"DLR-{i + 1:04d}", name.name, "dealer", DISTRIBUTOR_ID,
                                       "mid-market", country, COUNTRIES[country][0], "active",
                                       joined, None))
        org_domains.append(domains(name.slug, country))
    drafts = _draft_customers(rng, config, tl, orgs[1:], domains)
    _decide_drift(rng, tl, drafts)
    for c in drafts:
        orgs.append(OrganizationRecord(
            c.external_id, c.name.name, "customer", c.parent, c.segment, c.country,
            COUNTRIES[c.country][0], "left" if c.left_on else "active", c.joined_on, c.left_on))
        org_domains.append(c.domain)

    sizes = [60.0] + [8.0] * config.dealers + [c.size for c in drafts]
    drift_start: list[dt.date | None] = [None] * (1 + config.dealers)
    drift_start += [c.drift_start for c in drafts]
    participants: list[ParticipantRecord] = []
    members: dict[str, list[ParticipantRecord]] = {}
    champions: dict[str, str | None] = {}
    emails: set[str] = set()
    for org, domain, size, drift in zip(orgs, org_domains, sizes, drift_start, strict=True):
        people, champion = staff(rng, tl, org, domain, size, drift, len(participants), emails)
        participants.extend(people)
        members[org.external_id] = people
        champions[org.external_id] = champion

    latent = {c.external_id: _profile(rng, c, champions[c.external_id]) for c in drafts}
    # Drawn from per-customer streams of their own, so the world's stream above is unchanged.
    latent = {k: replace(p, churn_driver=churn_driver(config.seed, p)) for k, p in latent.items()}
    return World(config, tl, orgs, participants, latent, members)


def _profile(rng: Random, c: _Customer, champion: str | None) -> LatentProfile:
    # Customers differ in what they buy (a print shop lives on paper and toner), not only how much.
    affinity = tuple(max(1e-6, round(s * rng.gammavariate(0.8, 1.25), 6)) for s in CATEGORY_SHARE)
    return LatentProfile(
        external_id=c.external_id,
        size=round(c.size, 4),
        orders_per_month=round(0.5 * c.size**0.8 * rng.lognormvariate(0.0, 0.35), 4),
        value_multiplier=round(c.size**0.25 * rng.lognormvariate(0.0, 0.35), 4),
        growth_per_year=round(rng.gauss(0.03, 0.15), 4),
        discount=round(min(0.18, 0.025 * math.log1p(c.size)), 4),
        drift_start=c.drift_start,
        champion_external_id=champion,
        recycles=rng.random() < 0.6,
        category_affinity=affinity,
        channel_weights=_CHANNELS.get(c.country, _DEFAULT_CHANNELS),
    )

