"""Ledger use cases. Each runs inside the caller's unit of work and either writes a whole balanced
transaction (postings, lots, cached balances, chain hash, outbox row) or raises and writes nothing.

Raises: ``Overdraw`` (insufficient available balance), ``NotFound`` (account/hold/transaction not
in this program), ``ValidationFailed`` (bad amount or account kind), ``HoldAlreadyResolved``,
``AlreadyReversed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.ledger.errors import AlreadyReversed, HoldAlreadyResolved
from allegiance.ledger.model import AccountKind, Posting, TransactionDraft, TransactionKind
from allegiance.ledger.policy import AwardSplit, ExpiryPolicy, LeaverPolicy, OpenLot, allocate, expired_lots
from allegiance.ledger.ports import Account, Hold, LedgerPort

INHERIT = "inherit"  # a credit that keeps the expiry of the lots its debit consumed
REVERSIBLE = {TransactionKind.AWARD, TransactionKind.ADJUST, TransactionKind.SPEND, TransactionKind.TRANSFER}


@dataclass(frozen=True)
class Debit:
    account: Account
    amount: int
    lots: tuple[tuple[int, int], ...] | None = None  # explicit (lot_id, amount), else FIFO
    prefer: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Credit:
    account: Account
    amount: int
    expires_at: datetime | str | None = None  # a date, None (never) or INHERIT


@dataclass(frozen=True)
class Posted:
    transaction_id: int
    kind: TransactionKind
    hash: str
    postings: tuple[Posting, ...]
    metadata: dict[str, Any] = field(default_factory=dict)


def _positive(amount: int, name: str = "amount") -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValidationFailed("must be a positive integer in the unit's minor scale", field=name)


class LedgerService:
    def __init__(self, port: LedgerPort, clock: Clock) -> None:
        self.port = port
        self.clock = clock

    # -- the one write path -------------------------------------------------------------------
    def execute(
        self,
        program_id: int,
        kind: TransactionKind,
        debits: Sequence[Debit],
        credits: Sequence[Credit],
        *,
        memo: str = "",
        metadata: dict[str, Any] | None = None,
        organization_id: int | None = None,
        event_id: int | None = None,
        reverses_id: int | None = None,
    ) -> Posted:
        legs: list[Debit | Credit] = [*debits, *credits]
        # A transaction that takes from a holder locks all its holder accounts first, in id order:
        # what it takes is checked against a balance nobody else can change meanwhile. One that only
        # gives (an award) locks nothing up front: its balance updates lock the accounts, also in id
        # order, after its postings are written — so awards to one hot account queue for that short
        # tail, not for the whole transaction. Both orders are ascending: no deadlock (docs/ledger.md).
        takes = any(debit.account.kind.is_holder for debit in debits)
        holder_ids = sorted({leg.account.id for leg in legs if leg.account.kind.is_holder}) if takes else []
        locked = self.port.lock_accounts(holder_ids)
        postings: list[Posting] = []
        allocations: dict[int, list[tuple[int, int]]] = {}
        stream: list[tuple[int, datetime | None]] = []  # (amount, expiry) consumed by holder debits
        for debit in debits:
            _positive(debit.amount)
            account = locked.get(debit.account.id, debit.account)
            if account.kind.is_holder:
                if debit.lots is not None:
                    expiry = {lot.lot_id: lot.expires_at for lot in self.port.open_lots(account.id)}
                    chosen = [(OpenLot(lot_id, take, expiry.get(lot_id)), take) for lot_id, take in debit.lots]
                else:
                    chosen = allocate(
                        self.port.open_lots(account.id), debit.amount, account=account.address, prefer=debit.prefer
                    )
                allocations[len(postings)] = [(lot.lot_id, take) for lot, take in chosen]
                stream.extend((take, lot.expires_at) for lot, take in chosen)
            else:
                stream.append((debit.amount, None))
            postings.append(Posting(account.id, -debit.amount, account.unit))
        for credit in credits:
            _positive(credit.amount)
            if credit.expires_at == INHERIT:
                postings.extend(Posting(credit.account.id, amt, credit.account.unit, exp) for amt, exp in
                                _take(stream, credit.amount))
            else:
                _take(stream, credit.amount)
                expires = credit.expires_at if isinstance(credit.expires_at, datetime) else None
                postings.append(Posting(credit.account.id, credit.amount, credit.account.unit, expires))
        draft = TransactionDraft(
            program_id=program_id,
            kind=kind,
            postings=tuple(postings),
            memo=memo,
            metadata=metadata or {},
            reverses_id=reverses_id,
            organization_id=organization_id,
            event_id=event_id,
        )
        appended = self.port.append(draft, allocations, self.clock.now())
        self.port.emit(
            program_id,
            "ledger.transaction_posted",
            {
                "transaction_id": appended.transaction_id,
                "kind": kind.value,
                "event_id": event_id,
                "postings": [{"account_id": p.account_id, "amount": p.amount, "unit": p.unit} for p in postings],
            },
            organization_id,
        )
        digest = self.port.seal(appended.transaction_id)
        return Posted(appended.transaction_id, kind, digest, draft.postings, draft.metadata)

    # -- accounts ----------------------------------------------------------------------------
    def holder_account(
        self, program_id: int, unit: str, organization_id: int, participant_id: int | None = None
    ) -> Account:
        kind = AccountKind.PERSONAL if participant_id is not None else AccountKind.POOL
        return self.port.account_for(
            program_id, kind, unit, organization_id=organization_id, participant_id=participant_id
        )

    def system_account(self, program_id: int, kind: AccountKind, unit: str) -> Account:
        return self.port.account_for(program_id, kind, unit)

    def _account(self, program_id: int, account_id: int, *, holder: bool = True) -> Account:
        account = self.port.get_account(program_id, account_id)
        if account is None:
            raise NotFound(f"account {account_id} not found", field="account_id")
        if holder and account.kind not in (AccountKind.POOL, AccountKind.PERSONAL):
            raise ValidationFailed("only pool and personal accounts can be used here", field="account_id")
        return account

    # -- use cases ---------------------------------------------------------------------------
    def award(
        self,
        program_id: int,
        unit: str,
        amount: int,
        *,
        organization_id: int,
        participant_id: int | None,
        split: AwardSplit,
        expiry: ExpiryPolicy,
        earned_at: datetime | None = None,
        memo: str = "",
        metadata: dict[str, Any] | None = None,
        event_id: int | None = None,
    ) -> Posted:
        """Issue new value; an award naming a person is split between the company pool and them."""
        _positive(amount)
        org_share, person_share = split.split(amount) if participant_id is not None else (amount, 0)
        expires = expiry.expires_at(earned_at or self.clock.now())
        credits = []
        if org_share:
            credits.append(Credit(self.holder_account(program_id, unit, organization_id), org_share, expires))
        if person_share:
            account = self.holder_account(program_id, unit, organization_id, participant_id)
            credits.append(Credit(account, person_share, expires))
        issued = self.system_account(program_id, AccountKind.ISSUED, unit)
        return self.execute(
            program_id, TransactionKind.AWARD, [Debit(issued, amount)], credits,
            memo=memo, metadata=metadata, organization_id=organization_id, event_id=event_id,
        )

    def spend(self, program_id: int, account_id: int, amount: int, *, memo: str = "",
              metadata: dict[str, Any] | None = None) -> Posted:
        account = self._account(program_id, account_id)
        redeemed = self.system_account(program_id, AccountKind.REDEEMED, account.unit)
        return self.execute(program_id, TransactionKind.SPEND, [Debit(account, amount)], [Credit(redeemed, amount)],
                            memo=memo, metadata=metadata, organization_id=account.organization_id)

    def adjust(self, program_id: int, account_id: int, amount: int, *, memo: str,
               expiry: ExpiryPolicy | None = None, metadata: dict[str, Any] | None = None) -> Posted:
        """A signed correction by an operator, always with a reason (``memo``)."""
        if not memo.strip():
            raise ValidationFailed("an adjustment needs a reason", field="memo")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
            raise ValidationFailed("must be a non-zero integer", field="amount")
        account = self._account(program_id, account_id)
        adjustments = self.system_account(program_id, AccountKind.ADJUSTMENTS, account.unit)
        if amount > 0:
            expires = (expiry or ExpiryPolicy()).expires_at(self.clock.now())
            debits, credits = [Debit(adjustments, amount)], [Credit(account, amount, expires)]
        else:
            debits, credits = [Debit(account, -amount)], [Credit(adjustments, -amount)]
        return self.execute(program_id, TransactionKind.ADJUST, debits, credits, memo=memo, metadata=metadata,
                            organization_id=account.organization_id)

    def transfer(self, program_id: int, from_account_id: int, to_account_id: int, amount: int, *,
                 memo: str = "") -> Posted:
        """Move value between a pool and a person of the same organization; expiry travels along."""
        source = self._account(program_id, from_account_id)
        target = self._account(program_id, to_account_id)
        if source.id == target.id:
            raise ValidationFailed("source and destination are the same account", field="to_account_id")
        if source.organization_id != target.organization_id:
            raise ValidationFailed("transfers stay inside one organization", field="to_account_id")
        if source.unit != target.unit:
            raise ValidationFailed("both accounts must hold the same unit", field="to_account_id")
        return self.execute(program_id, TransactionKind.TRANSFER, [Debit(source, amount)],
                            [Credit(target, amount, INHERIT)], memo=memo, organization_id=source.organization_id)

    def reverse(self, program_id: int, transaction_id: int, *, memo: str) -> Posted:
        """Undo a transaction with an opposite one; the original stays, linked by ``reverses_id``."""
        header = self.port.transaction_header(program_id, transaction_id)
        if header is None:
            raise NotFound(f"transaction {transaction_id} not found", field="transaction_id")
        if TransactionKind(header["kind"]) not in REVERSIBLE:
            raise ValidationFailed(f"{header['kind']} transactions are resolved through their own flow",
                                   field="transaction_id")
        if self.port.is_reversed(transaction_id):
            raise AlreadyReversed(f"transaction {transaction_id} is already reversed", field="transaction_id")
        debits: list[Debit] = []
        credits: list[Credit] = []
        for account_id, amount, _unit, expires_at, lot_id in self.port.transaction_postings(transaction_id):
            account = self._account(program_id, account_id, holder=False)
            if amount > 0:  # was a credit: take it back, from the very lot it created first
                debits.append(Debit(account, amount, prefer=frozenset({lot_id}) if lot_id else frozenset()))
            else:
                credits.append(Credit(account, -amount, expires_at))
        return self.execute(program_id, TransactionKind.REVERSAL, debits, credits, memo=memo,
                            organization_id=header["organization_id"], reverses_id=transaction_id)

    # -- holds (two-phase) ---------------------------------------------------------------------
    def reserve(self, program_id: int, account_id: int, amount: int, *, ttl: timedelta, memo: str = "") -> Hold:
        account = self._account(program_id, account_id)
        escrow = self.port.account_for(
            program_id, AccountKind.HELD, account.unit, organization_id=account.organization_id,
            participant_id=account.participant_id, escrow_of=account.kind,
        )
        posted = self.execute(program_id, TransactionKind.HOLD, [Debit(account, amount)],
                              [Credit(escrow, amount, INHERIT)], memo=memo, organization_id=account.organization_id)
        now = self.clock.now()
        hold_id = self.port.insert_hold({
            "program_id": program_id, "organization_id": account.organization_id, "account_id": account.id,
            "escrow_account_id": escrow.id, "unit": account.unit, "amount": amount, "status": "pending",
            "memo": memo, "expires_at": now + ttl, "reserve_transaction_id": posted.transaction_id,
            "created_at": now,
        })
        hold = self.port.get_hold(program_id, hold_id)
        assert hold is not None
        return hold

    def _pending_hold(self, program_id: int, hold_id: int) -> Hold:
        hold = self.port.get_hold(program_id, hold_id, lock=True)
        if hold is None:
            raise NotFound(f"hold {hold_id} not found", field="hold_id")
        if hold.status != "pending":
            raise HoldAlreadyResolved(f"hold {hold_id} is already {hold.status}", field="hold_id", status=hold.status)
        return hold

    def post_hold(self, program_id: int, hold_id: int, amount: int | None = None) -> Hold:
        """Capture all or part of a hold; the remainder goes back to the holder."""
        hold = self._pending_hold(program_id, hold_id)
        capture = hold.amount if amount is None else amount
        _positive(capture)
        if capture > hold.amount:
            raise ValidationFailed(f"cannot post more than the {hold.amount} held", field="amount")
        escrow = self._account(program_id, hold.escrow_account_id, holder=False)
        holder = self._account(program_id, hold.account_id)
        redeemed = self.system_account(program_id, AccountKind.REDEEMED, hold.unit)
        credits = [Credit(redeemed, capture)]
        if capture < hold.amount:
            credits.append(Credit(holder, hold.amount - capture, INHERIT))
        posted = self.execute(program_id, TransactionKind.HOLD_POST, [Debit(escrow, hold.amount)], credits,
                              memo=hold.memo, organization_id=hold.organization_id, metadata={"hold_id": hold.id})
        return self._resolve(hold, "posted", posted.transaction_id, capture)

    def void_hold(self, program_id: int, hold_id: int, *, expired: bool = False) -> Hold:
        hold = self._pending_hold(program_id, hold_id)
        escrow = self._account(program_id, hold.escrow_account_id, holder=False)
        holder = self._account(program_id, hold.account_id)
        kind = TransactionKind.HOLD_EXPIRE if expired else TransactionKind.HOLD_VOID
        posted = self.execute(program_id, kind, [Debit(escrow, hold.amount)],
                              [Credit(holder, hold.amount, INHERIT)], memo=hold.memo,
                              organization_id=hold.organization_id, metadata={"hold_id": hold.id})
        return self._resolve(hold, "expired" if expired else "voided", posted.transaction_id, None)

    def _resolve(self, hold: Hold, status: str, transaction_id: int, posted_amount: int | None) -> Hold:
        if not self.port.resolve_hold(hold.id, status, transaction_id, posted_amount, self.clock.now()):
            raise HoldAlreadyResolved(f"hold {hold.id} was resolved concurrently", field="hold_id")
        resolved = self.port.get_hold(hold.program_id, hold.id)
        assert resolved is not None
        return resolved

    # -- jobs -------------------------------------------------------------------------------------
    def expire_due_holds(self, limit: int = 500) -> int:
        count = 0
        for hold in self.port.due_holds(self.clock.now(), limit):
            try:
                self.void_hold(hold.program_id, hold.id, expired=True)
                count += 1
            except HoldAlreadyResolved:
                continue
        return count

    def expire_lots_of(self, account_id: int) -> Posted | None:
        """Expire what is left of an account's past-due lots. Idempotent: a second run finds nothing."""
        locked = self.port.lock_accounts([account_id]).get(account_id)
        if locked is None or locked.kind not in (AccountKind.POOL, AccountKind.PERSONAL):
            return None
        due = expired_lots(self.port.open_lots(account_id), self.clock.now())
        if not due:
            return None
        total = sum(lot.remaining for lot in due)
        expired = self.system_account(locked.program_id, AccountKind.EXPIRED, locked.unit)
        return self.execute(
            locked.program_id, TransactionKind.EXPIRE,
            [Debit(locked, total, lots=tuple((lot.lot_id, lot.remaining) for lot in due))],
            [Credit(expired, total)], memo="points expired", organization_id=locked.organization_id,
            metadata={"lots": [lot.lot_id for lot in due]},
        )

    def participant_left(self, program_id: int, organization_id: int, participant_id: int,
                         policy: LeaverPolicy) -> list[Posted]:
        """Apply the leaver policy to each of the person's personal balances, as transactions."""
        if policy is LeaverPolicy.KEEP:
            return []
        posted = []
        for account in self.port.holder_accounts_of(program_id, participant_id):
            if account.kind is not AccountKind.PERSONAL or not account.balance:
                continue
            if policy is LeaverPolicy.SWEEP_TO_POOL:
                target = self.holder_account(program_id, account.unit, organization_id)
                credit = Credit(target, account.balance, INHERIT)
            else:
                credit = Credit(self.system_account(program_id, AccountKind.FORFEITED, account.unit), account.balance)
            posted.append(self.execute(program_id, TransactionKind.LEAVER, [Debit(account, account.balance)], [credit],
                                       memo=f"participant left: {policy.value}", organization_id=organization_id,
                                       metadata={"participant_id": participant_id, "policy": policy.value}))
        return posted


def _take(stream: list[tuple[int, datetime | None]], amount: int) -> list[tuple[int, datetime | None]]:
    """Pop ``amount`` off the front of the debit stream, as (amount, expiry) chunks."""
    out: list[tuple[int, datetime | None]] = []
    left = amount
    while left and stream:
        chunk, expiry = stream[0]
        take = min(chunk, left)
        out.append((take, expiry))
        left -= take
        if take == chunk:
            stream.pop(0)
        else:
            stream[0] = (chunk - take, expiry)
    if left:
        raise ValidationFailed("credits exceed debits", field="postings")
    # merge adjacent chunks with the same expiry: fewer lots, same meaning
    merged: list[tuple[int, datetime | None]] = []
    for take, expiry in out:
        if merged and merged[-1][1] == expiry:
            merged[-1] = (merged[-1][0] + take, expiry)
        else:
            merged.append((take, expiry))
    return merged
