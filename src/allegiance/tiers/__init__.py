"""tiers domain (issue 4)."""
