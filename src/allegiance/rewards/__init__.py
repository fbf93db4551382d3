"""rewards domain (issue 4)."""
