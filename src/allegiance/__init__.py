"""Allegiance: B2B loyalty, retention and expansion programs.

The package is split by domain (``ledger``, ``programs``, ``events``, ``rules``...) with pure logic,
and thin adapters around it (``storage``, ``api``, ``web``, ``cli``). ``bootstrap.build`` is the one
place where adapters and domains meet.
"""

__version__ = "0.1.0"
