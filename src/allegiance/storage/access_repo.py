"""API keys and operator users."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from allegiance.access.model import KeyRole, Principal
from allegiance.kernel.clock import Clock
from allegiance.kernel.secrets import hash_password, new_api_key, secret_matches, split_api_key, verify_password
from allegiance.storage import tables as t
from allegiance.storage.cache import caches_of
from allegiance.storage.database import after_commit

_DUMMY_HASH = hash_password("not-a-real-password")


class SqlAccess:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    def create_key(self, program_id: int, name: str, role: KeyRole, *, organization_id: int | None = None,
                   participant_id: int | None = None) -> tuple[int, str]:
        full, prefix, secret_hash = new_api_key()
        key_id = self.conn.execute(insert(t.api_keys).values(
            program_id=program_id, name=name, prefix=prefix, secret_hash=secret_hash, role=role.value,
            organization_id=organization_id, participant_id=participant_id, created_at=self.clock.now(),
        ).returning(t.api_keys.c.id)).scalar_one()
        return int(key_id), full

    def principal_for_key(self, key: str) -> Principal | None:
        parts = split_api_key(key)
        if parts is None:
            return None
        prefix, secret = parts
        row = self.conn.execute(select(t.api_keys).where(t.api_keys.c.prefix == prefix)).first()
        if row is None or row.revoked_at is not None or not secret_matches(secret, row.secret_hash):
            return None
        if row.participant_id is not None:  # a person's key ends when they leave their organization
            status = self.conn.execute(select(t.participants.c.status)
                                       .where(t.participants.c.id == row.participant_id)).scalar()
            if status == "left":
                return None
        return Principal(program_id=row.program_id, role=KeyRole(row.role), key_id=row.id,
                         organization_id=row.organization_id, participant_id=row.participant_id)

    def keys(self, program_id: int) -> list[dict[str, Any]]:
        k = t.api_keys
        rows = self.conn.execute(select(k.c.id, k.c.name, k.c.prefix, k.c.role, k.c.organization_id,
                                        k.c.participant_id, k.c.created_at, k.c.revoked_at)
                                 .where(k.c.program_id == program_id).order_by(k.c.id))
        return [dict(r._mapping) for r in rows]

    def revoke_key(self, program_id: int, key_id: int) -> bool:
        """Revoke a key; this process stops accepting it as soon as the transaction commits."""
        revoked = bool(self.conn.execute(update(t.api_keys).where(
            t.api_keys.c.id == key_id, t.api_keys.c.program_id == program_id, t.api_keys.c.revoked_at.is_(None)
        ).values(revoked_at=self.clock.now())).rowcount)
        if revoked:
            self.forget_principals_on_commit()
        return revoked

    def forget_principals_on_commit(self) -> None:
        """Drop this process's cached principals once the current write commits: after a change
        that can end keys (a revocation, a participant leaving)."""
        after_commit(self.conn, caches_of(self.conn).principals.invalidate)

    def create_user(self, email: str, name: str, password: str, *, participant_id: int | None = None) -> int:
        """An operator user, or (``participant_id``) an organization admin's sign-in to their pages."""
        return int(self.conn.execute(insert(t.users).values(
            email=email.lower(), name=name, password_hash=hash_password(password), is_active=True,
            created_at=self.clock.now(), participant_id=participant_id).returning(t.users.c.id)).scalar_one())

    def set_password(self, email: str, password: str) -> bool:
        return bool(self.conn.execute(update(t.users).where(t.users.c.email == email.lower())
                                      .values(password_hash=hash_password(password))).rowcount)

    def authenticate(self, email: str, password: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(t.users).where(t.users.c.email == email.lower())).first()
        # Hash even for an unknown e-mail, so response time does not reveal which accounts exist.
        matches = verify_password(password, row.password_hash if row else _DUMMY_HASH)
        if row is None or not row.is_active or not matches:
            return None
        return dict(row._mapping)

    def user(self, user_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(select(t.users).where(t.users.c.id == user_id)).first()
        return dict(row._mapping) if row else None
