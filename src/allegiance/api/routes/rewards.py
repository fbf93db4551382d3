"""Rewards routes (issue 4): the catalog, redemptions, approval policies, concierge requests,
donations and the gift register. One router, assembled from a module per resource."""

from __future__ import annotations

from fastapi import APIRouter

from allegiance.api.routes import rewards_catalog, rewards_concierge, rewards_policy, rewards_redemptions

router = APIRouter(tags=["rewards"])
for _module in (rewards_catalog, rewards_redemptions, rewards_policy, rewards_concierge):
    router.include_router(_module.router)
