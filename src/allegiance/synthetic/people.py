"""The people of one organization: who holds which role, how to reach them, who leaves.

Departures matter for churn: when the champion of a customer (its purchasing manager, or the
owner of a small firm) leaves shortly before the customer starts drifting away, a churn model has
a real, recoverable signal to find — but ordinary turnover elsewhere keeps it from being trivial.
"""

from __future__ import annotations

import datetime as dt
import math
from random import Random

from .model import OrganizationRecord, ParticipantRecord
from .names import COUNTRIES, person_name
from .timeline import Timeline

CHAMPION_LEAVES = 0.6  # share of drifting customers whose champion leaves first
TURNOVER_PER_YEAR = 0.1
OWNER_TURNOVER_PER_YEAR = 0.03
LEAVE_REASONS = ("resigned", "retired", "role_change", "dismissed")
_LEAVE_CUM = (0.6, 0.75, 0.92, 1.0)

_EXTRA_ROLES = ("engineer", "sales_rep", "other", "purchasing_manager", "accountant")
_EXTRA_CUM = (0.35, 0.6, 0.8, 0.9, 1.0)
_DEALER_ROLES = ("sales_rep", "engineer", "sales_rep", "engineer", "other")
_CHANNEL_NAMES = ("email", "sms", "messenger", "phone")
# Korea lives on messengers (KakaoTalk), Turkey on SMS and WhatsApp, Western Europe on e-mail.
_CHANNEL_CUM = {"ko": (0.3, 0.45, 0.9, 1.0), "tr": (0.35, 0.6, 0.85, 1.0)}
_DEFAULT_CHANNEL_CUM = (0.65, 0.75, 0.85, 1.0)


def _pick(rng: Random, names: tuple[str, ...], cum: tuple[float, ...]) -> str:
    u = rng.random()
    return next(n for n, c in zip(names, cum, strict=True) if u < c)


def _roles(rng: Random, org: OrganizationRecord, size: float) -> list[str]:
    if org.kind == "distributor":
        return ["owner", "purchasing_manager", "accountant"] + ["sales_rep", "engineer"] * 4 + [
            "other"]
    if org.kind == "dealer":
        count = rng.randint(3, 10)
        return ["owner", "accountant"] + [_DEALER_ROLES[i % 5] for i in range(count - 2)]
    count = min(12, 1 + int(1.7 * math.log(max(size, 1.0)) + rng.random() * 1.5))
    roles = ["owner", "purchasing_manager", "accountant"][: min(count, 2 if count < 4 else 3)]
    roles += [_pick(rng, _EXTRA_ROLES, _EXTRA_CUM) for _ in range(count - len(roles))]
    return roles


def _email(first: str, last: str, domain: str, used: set[str]) -> str:
    local = f"{first}.{last}".replace("..", ".").strip(".") or "contact"
    candidate, n = f"{local}@{domain}", 1
    while candidate in used:
        n += 1
        candidate = f"{local}{n}@{domain}"
    used.add(candidate)
    return candidate


def staff(rng: Random, tl: Timeline, org: OrganizationRecord, domain: str, size: float,
          drift_start: dt.date | None, offset: int, emails: set[str],
          ) -> tuple[list[ParticipantRecord], str | None]:
    """People of `org` numbered from `offset`, and the champion whose leaving precedes a drift."""
    locale, time_zone = COUNTRIES[org.country][0], COUNTRIES[org.country][1]
    active_from = max(org.joined_on, tl.start)
    active_to = min(org.left_on or tl.end, tl.end)
    span = (active_to - active_from).days
    years = span / 365.25
    roles = _roles(rng, org, size)
    champion_index = -1
    if drift_start is not None and rng.random() < CHAMPION_LEAVES:
        champion_index = roles.index("purchasing_manager") if "purchasing_manager" in roles else 0
    pm_is_admin = rng.random() < 0.5
    people: list[ParticipantRecord] = []
    champion: str | None = None
    for i, role in enumerate(roles):
        ext = f"P-{offset + i + 1:07d}"
        name, first, last = person_name(rng, locale)
        birthday = None
        if rng.random() >= 0.3:
            birthday = dt.date(rng.randint(1958, 2001), 1, 1) + dt.timedelta(rng.randint(0, 364))
        channel = _pick(rng, _CHANNEL_NAMES, _CHANNEL_CUM.get(locale, _DEFAULT_CHANNEL_CUM))
        turnover = OWNER_TURNOVER_PER_YEAR if role == "owner" else TURNOVER_PER_YEAR
        left_on: dt.date | None = None
        if i == champion_index and drift_start is not None and span > 1:
            days = (drift_start - active_from).days - rng.randint(0, 90)
            left_on = active_from + dt.timedelta(days=min(span, max(1, days)))
            champion = ext
        elif span > 1 and rng.random() < 1 - math.exp(-turnover * years):
            left_on = active_from + dt.timedelta(days=rng.randint(1, span))
        people.append(ParticipantRecord(
            external_id=ext,
            organization_external_id=org.external_id,
            name=name,
            email=_email(first, last, domain, emails),
            role=role,
            is_org_admin=role == "owner" or (role == "purchasing_manager" and pm_is_admin),
            locale=locale,
            time_zone=time_zone,
            birthday=birthday,
            preferred_channel=channel,
            status="left" if left_on else "active",
            left_on=left_on,
        ))
    return people, champion


def leave_reason(rng: Random) -> str:
    return _pick(rng, LEAVE_REASONS, _LEAVE_CUM)
