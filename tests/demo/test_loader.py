"""The demo program loads through the real paths, is valid, and loads only once."""

from __future__ import annotations

from sqlalchemy import func, select

from allegiance.bootstrap import Allegiance
from allegiance.demo.loader import demo_credentials, load_demo
from allegiance.storage import tables as t
from allegiance.storage.verify import verify


def test_the_demo_loads_a_valid_program_once(allegiance: Allegiance) -> None:
    summary = load_demo(allegiance, organizations=25, months=8)
    assert summary.created and summary.organizations >= 25 and summary.events > 100 and summary.awards > 0
    with allegiance.read() as uow:
        report = verify(uow.conn)
        kinds = set(uow.conn.execute(select(t.transactions.c.kind).distinct()).scalars())
        depth = uow.conn.execute(select(func.count()).select_from(t.organizations)
                                 .where(t.organizations.c.parent_id.is_not(None))).scalar_one()
    assert report.ok, report.problems
    assert {"award", "spend", "hold"} <= kinds
    assert depth > 0
    again = load_demo(allegiance, organizations=25, months=8)
    assert not again.created and again.events == summary.events
    email, password, key = demo_credentials(allegiance, summary.program_id)
    with allegiance.read() as uow:
        assert uow.access.authenticate(email, password) is not None
        principal = uow.access.principal_for_key(key)
    assert principal is not None and principal.program_id == summary.program_id
