"""Property-based fuzzing of every operation in the app's own OpenAPI document (Schemathesis 4).

Run as an operator and as an org admin, on SQLite only (to bound CI time), with a fixed seed and
derandomized generation so CI is reproducible. Each response must: not be a 5xx; match the schema
the document declares for its status (where it declares one); and, for any 4xx, be a problem body
(``application/problem+json`` with type, title, status and code). A 500 found here is a bug to
report with its input — the checks are not to be weakened to make it pass.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from allegiance.api.app import create_api
from allegiance.bootstrap import build
from allegiance.config import Settings
from tests.api.conftest import OPERATOR, ORG_ADMIN, QUIET, TestClient, World

pytestmark = [QUIET]

CONFIG = {
    "seed": 20240501,
    "generation": {"max-examples": 25, "deterministic": True, "database": "none"},
    # The examples phase replays the document's examples; coverage would add hundreds of boundary
    # cases per operation, and stateful chaining needs links the document does not declare.
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
}


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """SQLite only: this module overrides the shared fixture that also runs on PostgreSQL."""
    path = tmp_path / "allegiance.db"
    shutil.copy(sqlite_template, path)
    yield f"sqlite:///{path}"


def document() -> dict[str, Any]:
    """The app's OpenAPI document, read from an app whose database is never touched."""
    with TestClient(create_api(build(Settings(database_url="sqlite://")))) as client:
        doc: dict[str, Any] = client.get("/openapi.json").json()
    return doc


def dangling_refs(doc: dict[str, Any]) -> set[str]:
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc)))
    return refs - set(doc.get("components", {}).get("schemas", {}))


def test_the_document_has_no_dangling_references() -> None:
    assert dangling_refs(document()) == set()
    assert "/api/v1/events" in document()["paths"]


# The document is loaded once at import, and each test sends its cases to the app of its own fresh
# world. (``pytest.from_fixture`` would load it per test, but schemathesis 4.32's lazy loader breaks on
# pytest 9: it assigns ``node._nodeid``.)
schema = schemathesis.openapi.from_dict(document(), config=schemathesis.Config.from_dict(CONFIG))

def problem_body(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is an RFC 9457 problem with the fields a client branches on."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type == "application/problem+json", f"{response.status_code} answered as {content_type!r}"
    body = response.json()
    missing = {"type", "title", "status", "code", "detail"} - set(body)
    assert not missing, f"problem body without {sorted(missing)}: {body}"
    assert body["status"] == response.status_code, body
    return True


CHECKS = [not_a_server_error, response_schema_conformance, problem_body]
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def run(world: World, case: Any, caller: str) -> None:
    case.call_and_validate(app=world.client.app, headers={"Authorization": f"Bearer {world.keys[caller]}"},
                           checks=CHECKS)


@pytest.mark.slow
@schema.parametrize()
@FUZZ
def test_api_as_operator(case: Any, world: World) -> None:
    run(world, case, OPERATOR)


@pytest.mark.slow
@schema.parametrize()
@FUZZ
def test_api_as_org_admin(case: Any, world: World) -> None:
    run(world, case, ORG_ADMIN)
