"""The outbox relay: at-least-once delivery with a saved cursor, effects once per message."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection

from allegiance.bootstrap import Allegiance
from allegiance.storage.outbox import Message, Relay
from tests import factories as f
from tests.conftest import ProgramFixture


def test_every_message_is_handled_once_and_the_cursor_survives_a_restart(allegiance: Allegiance,
                                                                          program: ProgramFixture) -> None:
    seen: list[tuple[int, str]] = []

    def handler(_conn: Connection, message: Message) -> None:
        seen.append((message.id, message.topic))

    relay = Relay(allegiance.db, allegiance.clock)
    relay.subscribe("audit", "*", handler)
    f.organization(allegiance, program.id)
    first = relay.run_once()
    assert first == len(seen) > 0
    assert relay.run_once() == 0  # nothing new
    # a new relay (a restart) resumes from the saved cursor
    f.organization(allegiance, program.id)
    restarted = Relay(allegiance.db, allegiance.clock)
    restarted.subscribe("audit", "*", handler)
    assert restarted.run_once() == 1
    assert [topic for _, topic in seen].count("organization.created") == 2
    assert len({message_id for message_id, _ in seen}) == len(seen)


def test_a_failing_handler_is_retried_and_its_effect_not_duplicated(allegiance: Allegiance,
                                                                    program: ProgramFixture) -> None:
    attempts: list[int] = []

    def flaky(_conn: Connection, message: Message) -> None:
        attempts.append(message.id)
        if len(attempts) == 1:
            raise RuntimeError("channel down")

    relay = Relay(allegiance.db, allegiance.clock)
    relay.subscribe("mailer", "organization.created", flaky)
    f.organization(allegiance, program.id)
    with pytest.raises(RuntimeError, match="channel down"):
        relay.run_once()
    assert relay.cursor("mailer") == 0  # nothing acknowledged
    assert relay.run_once() == 1
    assert relay.run_once() == 0
    assert attempts[0] == attempts[1] and len(attempts) == 2
