"""One module per area of the pages; each exposes ``router`` built with ``routing.web_router``."""

from allegiance.web.routes import (
    accounts,
    analytics,
    approvals,
    auth,
    catalog,
    coop,
    home,
    organizations,
    redemptions,
    rules,
    tiers,
)

MODULES = (home, auth, organizations, accounts, redemptions, approvals, catalog, rules, tiers, coop, analytics)

__all__ = ["MODULES"]
