"""coop domain (issue 4)."""
