"""Shared vocabulary of every domain: errors, clock, identifiers. No I/O, no frameworks."""
