"""Analytics routes for the authorization matrix: operators only, program-wide.

The world's programs have no orders, so the evaluations answer the operator 409 ``not_enough_data``
(authorization passed, the data is too thin) and a run stores only what an empty program supports;
``ready`` runs the ``facts`` result once per program and saves a segment that matches everyone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import OPERATOR, World

NOWHERE = "nonexistent"
SEGMENTS = {"segments": [{"code": "everyone", "name": "Every organization"}]}


def ready(world: World, program_id: int) -> None:
    with world.allegiance.write() as uow:
        if uow.analytics_store.latest_snapshot(program_id, "facts") is None:
            uow.analytics.save_segments(program_id, SEGMENTS, by="matrix")
            uow.analytics.run(program_id, kinds=("facts",))


def external_id(world: World, owner: str) -> str:
    if owner not in world.sides:
        return NOWHERE
    side = world.sides[owner]
    with world.allegiance.read() as uow:
        return str(uow.programs.organization(side.program_id, side.organization_id)["external_id"])


def expected(rule: Callable[..., Any], req: Callable[..., Any], v1: str, program: str) -> dict[tuple[str, str], Any]:
    """The matrix rows of the analytics routes, built with the matrix's own ``Rule`` and ``Req``."""
    base = f"{v1}/analytics"
    only = {OPERATOR: program}

    def prepared(path: str, json: Any = None) -> Callable[[World, str], Any]:
        def build(world: World, owner: str) -> Any:
            ready(world, world.program_id)
            return req(path, json)

        return build

    def organization(world: World, owner: str) -> Any:
        ready(world, world.program_id)
        return req(f"{base}/organizations/{external_id(world, owner)}")

    return {
        ("GET", f"{base}/settings"): rule(200, only, prepared(f"{base}/settings"), owner="none"),
        ("PUT", f"{base}/settings"): rule(200, only, prepared(f"{base}/settings", {"margin": 0.3}), owner="none",
                                          write=True),
        ("GET", f"{base}/segments"): rule(200, only, prepared(f"{base}/segments"), owner="none"),
        ("PUT", f"{base}/segments"): rule(200, only, prepared(f"{base}/segments", SEGMENTS), owner="none",
                                          write=True),
        ("GET", f"{base}/segments/{{code}}/members"): rule(200, only, prepared(f"{base}/segments/everyone/members"),
                                                           owner="none"),
        ("GET", f"{base}/organizations/{{external_id}}"): rule(200, only, organization),
        ("POST", f"{base}/runs"): rule(201, only, prepared(f"{base}/runs", {"kinds": ["facts", "overview"]}),
                                       owner="none", write=True),
        ("POST", f"{base}/churn/evaluate"): rule(409, only, prepared(f"{base}/churn/evaluate", {}), owner="none"),
        ("POST", f"{base}/recommendations/evaluate"): rule(409, only, prepared(f"{base}/recommendations/evaluate", {}),
                                                           owner="none"),
        ("GET", f"{base}/{{kind}}"): rule(200, only, prepared(f"{base}/facts"), owner="none"),
        ("GET", f"{base}/{{kind}}/history"): rule(200, only, prepared(f"{base}/facts/history"), owner="none"),
    }
