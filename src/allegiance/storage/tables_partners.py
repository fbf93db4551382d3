"""Tables of coalition partners, referrals, liability snapshots (issue 4).

Registered on the shared metadata; imported at the end of ``tables``.
"""

from __future__ import annotations

from allegiance.storage.tables import metadata  # noqa: F401
