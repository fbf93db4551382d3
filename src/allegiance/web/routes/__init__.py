"""One module per area of the pages; each exposes ``router`` built with ``routing.web_router``."""

from allegiance.web.routes import accounts, auth, home, organizations

MODULES = (home, auth, organizations, accounts)

__all__ = ["MODULES"]
