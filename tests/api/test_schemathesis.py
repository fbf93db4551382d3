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
from allegiance.api.schemas import EventBatch, EventIn
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


def repaired(doc: dict[str, Any]) -> dict[str, Any]:
    """Work around the dangling refs of POST /events (see the xfail below) by adding the two
    models' schemas, so that fuzzing still reaches the event endpoint; a no-op once fixed."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (EventIn, EventBatch):
        if model.__name__ not in schemas:
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(found.pop("$defs", {}))
            schemas[model.__name__] = found
    return doc


def test_every_schema_reference_in_the_document_resolves() -> None:
    assert dangling_refs(repaired(document())) == set()
    assert "/api/v1/events" in document()["paths"]


@pytest.mark.xfail(strict=True, reason="bug: the OpenAPI document's POST /events body is oneOf "
                   "#/components/schemas/EventIn | EventBatch, but neither is in components (api/routes/events.py "
                   "openapi_extra names models that no route declares), so clients and fuzzers cannot use it")
def test_the_document_has_no_dangling_references() -> None:
    assert dangling_refs(document()) == set()


# The document is loaded once at import, and each test sends its cases to the app of its own fresh
# world. (``pytest.from_fixture`` would load it per test, but schemathesis 4.32's lazy loader breaks on
# pytest 9: it assigns ``node._nodeid``.)
schema = schemathesis.openapi.from_dict(repaired(document()), config=schemathesis.Config.from_dict(CONFIG))

INT64 = 2**63 - 1


def ids(value: Any, key: str = "") -> Iterator[int]:
    """Every integer under an ``*_id`` key (or anywhere, for path and query parameters)."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from ids(item, str(name))
    elif isinstance(value, list):
        for item in value:
            yield from ids(item, key)
    elif isinstance(value, int) and not isinstance(value, bool) and (key == "*" or key.endswith("_id")):
        yield value


@schema.hook
def filter_case(ctx: Any, case: Any) -> bool:
    """Inputs that hit bugs already reported and pinned by strict xfail tests (test_limits.py,
    test_authorization_matrix.py); delete a clause when its bug is fixed, so fuzzing covers it again."""
    params = [*(case.path_parameters or {}).values(), *(case.query or {}).values()]
    if any(abs(v) > INT64 for v in [*ids(params, "*"), *ids(case.body)]):
        return False  # bug: an id beyond 64 bits answers 500 (OverflowError / bigint out of range)
    body = case.body if isinstance(case.body, dict) else {}
    return not (case.method.upper() == "POST" and case.path.endswith("/api-keys")
                and body.get("participant_id") is not None and body.get("role") != "participant")
    # bug: POST /api-keys stores participant_id unchecked unless role=participant (500 on a missing one)


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
