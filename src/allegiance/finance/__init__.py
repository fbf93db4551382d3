"""finance domain (issue 4)."""
