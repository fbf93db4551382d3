"""Who may move which account: the ledger half of the authorization policy."""

from __future__ import annotations

from typing import Any

from allegiance.access.model import KeyRole, Principal
from allegiance.api.deps import Scope
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import Forbidden, NotFound
from allegiance.ledger.model import AccountKind
from allegiance.ledger.policy import PoolSpenders
from allegiance.ledger.ports import Account
from allegiance.storage import queries


def visible_account(uow: UnitOfWork, principal: Principal, account_id: int, *, field: str = "account_id") -> Account:
    account = uow.ledger_store.get_account(principal.program_id, account_id)
    if account is None or not Scope.of(principal, uow).sees_account(account):
        raise NotFound(f"account {account_id} not found", field=field)
    return account


def visible_account_row(uow: UnitOfWork, principal: Principal, account_id: int) -> dict[str, Any]:
    """``visible_account`` as the row with its balance (``storage.queries.account``): a balance read
    then reads the account once, not once to check it and again to show it."""
    account = queries.account(uow.conn, principal.program_id, account_id)
    if account is None or not Scope.of(principal, uow).sees_account(account):
        raise NotFound(f"account {account_id} not found", field="account_id")
    return account


def spendable_account(uow: UnitOfWork, principal: Principal, account_id: int, *, field: str = "account_id") -> Account:
    """Pools are spent per the program's ``pool_spenders`` setting; people spend their own."""
    account = visible_account(uow, principal, account_id, field=field)
    if principal.role is KeyRole.OPERATOR or account.kind is not AccountKind.POOL:
        return account
    rule = uow.programs.settings(principal.program_id).pool_spenders
    allowed = rule is PoolSpenders.ANY_PARTICIPANT or (
        rule is PoolSpenders.ORG_ADMINS and principal.role is KeyRole.ORG_ADMIN)
    if not allowed:
        raise Forbidden(f"the program lets {rule.value} spend the organization pool", field=field)
    return account
