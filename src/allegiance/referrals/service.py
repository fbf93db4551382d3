"""Referral use cases, and the event observer that converts referrals on a first qualifying order.

Conversion happens inside the transaction that records the qualifying order: a compare-and-set
moves the referral out of ``registered`` (so two concurrent first orders convert it once), then two
derived ``referral.converted`` events — one whose subject is the referrer (participant and
organization), one whose subject is the referred organization, told apart by ``payload.side`` —
are recorded through the same events pipeline, so the program's rules reward each side like any
other event, and their source ids (``referral:<id>:converted:<side>``) keep them unique.

Raises: ``NotFound``, ``ValidationFailed``, ``ReferralsNotConfigured``, ``AlreadyReferred``,
``InvalidReferralTransition``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from allegiance.events.model import IncomingEvent
from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.programs.service import ProgramsService
from allegiance.referrals.errors import AlreadyReferred, InvalidReferralTransition, ReferralsNotConfigured
from allegiance.referrals.model import (
    CODE,
    CONVERTED,
    DERIVED_SCHEMA,
    JOINED,
    ReferralSettings,
    ReferralStatus,
    RegisterReferral,
    amount_of,
    fraud_flags,
    new_code,
    normalized_code,
    window_start,
)
from allegiance.referrals.ports import ReferralsPort
from allegiance.rules.engine import EventContext

R = ReferralStatus


class EventRecorder(Protocol):
    """The slice of ``EventsService`` the referrals need: declare the derived types, record them."""

    def declare_type(self, program_id: int, name: str, schema: dict[str, Any], description: str = "") -> None: ...
    def record_one(self, program_id: int, event: IncomingEvent) -> Any: ...


class ReferralsService:
    def __init__(self, port: ReferralsPort, programs: ProgramsService, clock: Clock) -> None:
        self.port = port
        self.programs = programs
        self.clock = clock
        self.events: EventRecorder | None = None

    def bind(self, events: EventRecorder) -> None:
        """The events pipeline this observer records derived events into (set by the composition root)."""
        self.events = events

    # -- settings ------------------------------------------------------------------------------
    def settings(self, program_id: int) -> ReferralSettings:
        row = self.port.settings(program_id)
        if row is None:
            raise ReferralsNotConfigured("referrals are not set up in this program: PUT /api/v1/referrals/settings")
        return ReferralSettings.model_validate(row["document"])

    def set_settings(self, program_id: int, settings: ReferralSettings, by: str) -> ReferralSettings:
        """Save the scheme and declare the two derived event types, so rules can trigger on them."""
        assert self.events is not None, "bind() the events pipeline first"
        self.port.save_settings(program_id, settings.model_dump(mode="json"), by)
        self.events.declare_type(program_id, JOINED, DERIVED_SCHEMA, "a referred organization registered")
        self.events.declare_type(program_id, CONVERTED, DERIVED_SCHEMA,
                                 "a referred organization placed its first qualifying order")
        self.port.emit(program_id, "referrals.settings_changed", {"by": by}, None)
        return settings

    # -- codes ------------------------------------------------------------------------------------
    def code_for(self, program_id: int, participant_id: int, *, rotate: bool = False) -> dict[str, Any]:
        """A participant's code and link: the existing one, or a new one (``rotate`` retires the old,
        so a leaked code stops registering new referrals)."""
        settings = self.settings(program_id)
        person = self.programs.participant(program_id, participant_id)
        if person["status"] == "left":
            raise ValidationFailed("the participant has left the organization", field="participant_id")
        current = self.port.code_of(program_id, participant_id)
        if current is None or rotate:
            self.port.retire_codes(program_id, participant_id)
            for _ in range(8):  # a collision among 31^10 codes is astronomically rare; retry anyway
                code = new_code()
                if self.port.insert_code({"program_id": program_id, "participant_id": participant_id,
                                          "organization_id": person["organization_id"], "code": code,
                                          "active": True, "created_at": self.clock.now()}):
                    break
            else:  # pragma: no cover
                raise RuntimeError("could not draw a unique referral code")
            self.port.emit(program_id, "referral.code_issued", {"participant_id": participant_id},
                           person["organization_id"])
            current = self.port.code_of(program_id, participant_id)
            assert current is not None
        return self.code_view(current, settings)

    @staticmethod
    def code_view(row: dict[str, Any], settings: ReferralSettings) -> dict[str, Any]:
        return {"id": row["id"], "code": row["code"], "link": f"{settings.link_base}{row['code']}",
                "participant_id": row["participant_id"], "organization_id": row["organization_id"],
                "active": row["active"], "created_at": row["created_at"]}

    # -- registering a referred organization --------------------------------------------------------
    def register(self, program_id: int, body: RegisterReferral, by: str) -> dict[str, Any]:
        settings = self.settings(program_id)
        referred = self.programs.organization(program_id, body.organization_id)
        code_text = normalized_code(body.code)
        code = self.port.code(program_id, code_text) if CODE.match(code_text) else None
        if code is None or not code["active"]:
            raise ValidationFailed("no active referral code like this in the program", field="code")
        referrer = self.programs.participant(program_id, code["participant_id"])
        now = self.clock.now()
        since = window_start(now, settings)
        flags = fraud_flags(
            referrer_organization_id=code["organization_id"], referred_organization_id=referred["id"],
            referrer_email=referrer.get("email"), contact_email=body.contact_email,
            recent_from_code=self.port.count_since(program_id, since, code_id=code["id"]),
            recent_from_source=self.port.count_since(program_id, since, source=body.source) if body.source else 0,
            settings=settings)
        referral_id = self.port.insert_referral({
            "program_id": program_id, "code_id": code["id"], "referrer_participant_id": referrer["id"],
            "referrer_organization_id": code["organization_id"], "referred_organization_id": referred["id"],
            "contact_email": body.contact_email, "source": body.source, "status": R.REGISTERED.value,
            "flags": flags, "qualifying_event_id": None, "review_note": "", "reviewed_by": None, "version": 1,
            "created_at": now, "updated_at": now, "converted_at": None})
        if referral_id is None:
            raise AlreadyReferred(f"organization {referred['id']} was already referred", field="organization_id")
        row = self.referral(program_id, referral_id)
        self.port.emit(program_id, "referral.registered", {**_facts(row), "flags": flags},
                       row["referrer_organization_id"])
        if not flags:
            self._derive(row, JOINED, now, None)
        return row

    # -- the observer ------------------------------------------------------------------------------------
    def is_idle(self, program_id: int) -> bool:
        return self.port.settings(program_id) is None

    def quiet_for(self, program_id: int, events: Iterable[tuple[str, int | None]]) -> bool:
        """True when none of these events — ``(type, organization id)`` — can convert a referral: no
        qualifying order of an organization still waiting. A bulk import then runs its chunk
        without this observer (if one can, that chunk goes event by event: a conversion records
        derived events as it lands)."""
        document = self.port.settings(program_id)
        if document is None:
            return True
        qualifying = ReferralSettings.model_validate(document["document"]).qualifying_event
        candidates = {org for type_, org in events if type_ == qualifying and org is not None}
        return not candidates or not self.port.waiting_among(program_id, candidates)

    def after_event(self, event: EventContext, transaction_ids: Sequence[int]) -> None:
        """On a qualifying order of a referred organization still waiting: convert it, or hold it for
        review when it was flagged at registration."""
        if event.organization is None or event.type.startswith("referral."):
            return
        document = self.port.settings(event.program_id)
        if document is None:
            return
        settings = ReferralSettings.model_validate(document["document"])
        if event.type != settings.qualifying_event:
            return
        row = self.port.referral_of(event.program_id, event.organization["id"])
        if row is None or row["status"] != R.REGISTERED.value:
            return
        amount = amount_of(event.payload, settings.amount_field)
        if amount is None or amount < settings.min_amount:
            return
        target = R.HELD if row["flags"] else R.CONVERTED
        now = self.clock.now()
        values: dict[str, Any] = {"status": target.value, "qualifying_event_id": event.event_id, "updated_at": now}
        if target is R.CONVERTED:
            values["converted_at"] = now
        if not self.port.move(row["id"], row["version"], R.REGISTERED.value, values):
            return  # a concurrent first order converted (or held) it: once is enough
        moved = {**row, **values}
        if target is R.HELD:
            self.port.emit(event.program_id, "referral.held", {**_facts(moved), "flags": row["flags"]},
                           row["referrer_organization_id"])
            return
        self._derive(moved, CONVERTED, event.occurred_at, event.event_id)

    # -- review -----------------------------------------------------------------------------------------
    def approve(self, program_id: int, referral_id: int, by: str, note: str = "") -> dict[str, Any]:
        """An operator clears a held referral: it converts now (joined and converted events)."""
        row = self.referral(program_id, referral_id)
        if row["status"] != R.HELD.value:
            raise InvalidReferralTransition(f"a {row['status']} referral is not waiting for review",
                                            state=row["status"])
        now = self.clock.now()
        values = {"status": R.CONVERTED.value, "converted_at": now, "updated_at": now, "reviewed_by": by,
                  "review_note": note}
        if not self.port.move(row["id"], row["version"], R.HELD.value, values):
            raise InvalidReferralTransition("someone else reviewed this referral at the same moment",
                                            state=row["status"])
        moved = {**row, **values}
        self._derive(moved, JOINED, now, None)
        self._derive(moved, CONVERTED, now, row["qualifying_event_id"])
        return self.referral(program_id, referral_id)

    def reject(self, program_id: int, referral_id: int, by: str, reason: str) -> dict[str, Any]:
        """An operator refuses a referral (held or still waiting): nothing is ever credited for it."""
        if not reason.strip():
            raise ValidationFailed("a rejection needs a reason", field="reason")
        row = self.referral(program_id, referral_id)
        if row["status"] not in (R.HELD.value, R.REGISTERED.value):
            raise InvalidReferralTransition(f"a {row['status']} referral cannot be rejected", state=row["status"])
        values = {"status": R.REJECTED.value, "updated_at": self.clock.now(), "reviewed_by": by,
                  "review_note": reason}
        if not self.port.move(row["id"], row["version"], row["status"], values):
            raise InvalidReferralTransition("someone else changed this referral at the same moment",
                                            state=row["status"])
        self.port.emit(program_id, "referral.rejected", {**_facts(row), "reason": reason},
                       row["referrer_organization_id"])
        return self.referral(program_id, referral_id)

    # -- derived events ------------------------------------------------------------------------------------
    def _derive(self, row: dict[str, Any], event_type: str, at: datetime, qualifying_event_id: int | None) -> None:
        assert self.events is not None, "bind() the events pipeline first"
        kind = event_type.split(".", 1)[1]
        payload = {"referral_id": row["id"], "referrer_participant_id": row["referrer_participant_id"],
                   "referrer_organization_id": row["referrer_organization_id"],
                   "referred_organization_id": row["referred_organization_id"],
                   "qualifying_event_id": qualifying_event_id}
        for side, organization_id, participant_id in (
                ("referrer", row["referrer_organization_id"], row["referrer_participant_id"]),
                ("referred", row["referred_organization_id"], None)):
            self.events.record_one(row["program_id"], IncomingEvent(
                source_id=f"referral:{row['id']}:{kind}:{side}", type=event_type, occurred_at=at,
                payload={**payload, "side": side}, organization_id=organization_id, participant_id=participant_id))

    # -- reading -------------------------------------------------------------------------------------------
    def referral(self, program_id: int, referral_id: int) -> dict[str, Any]:
        row = self.port.referral(program_id, referral_id)
        if row is None:
            raise NotFound(f"referral {referral_id} not found", field="referral_id")
        return view(row)


def view(row: dict[str, Any]) -> dict[str, Any]:
    """A referral as clients see it; ``organization_id`` is the referrer's (whose list it is in)."""
    return {**row, "organization_id": row["referrer_organization_id"]}


def _facts(row: dict[str, Any]) -> dict[str, Any]:
    return {"referral_id": row["id"], "referrer_participant_id": row["referrer_participant_id"],
            "referrer_organization_id": row["referrer_organization_id"],
            "referred_organization_id": row["referred_organization_id"], "status": row["status"]}
