"""partners domain (issue 4)."""
