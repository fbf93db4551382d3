"""Liability and finance (issue 4, section 8): what the program owes in points and money, what
history says will never be claimed (breakage), what expires soon, and an export that reconciles
to the ledger to the last minor unit.

Everything here is *read* from the ledger (balances, lots, postings); the only thing written is
the once-per-(organization, unit, expiry date) ``points.expiring_soon`` outbox event and its claim
row. Pure estimators live in ``breakage.py`` and ``expiring.py``; money in ``kernel.rates``.
"""
