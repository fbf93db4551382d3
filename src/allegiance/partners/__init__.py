"""Coalition partners (issue 4, section 6): merchants that issue and/or accept a program's points.

Each partner has one settlement account in the ledger (``partner:<id>:<unit>``, kind ``partner``).
Earning at a partner debits it and credits the participant/organization; redeeming at a partner
debits the holder and credits it. Its balance is therefore the partner's net position in points,
and the settlement report (money owed each way at the partner's rates) is computed from its
postings — never from a counter kept on the side.

Guarantees:

1. Every earning, redemption and reversal is one balanced ledger transaction (``LedgerService``),
   with the partner's rates at that moment written into the transaction's (hash-chained) metadata.
2. One effect per partner receipt: ``(partner, operation, reference)`` is unique; the same receipt
   again returns the first result, the same reference with other content is refused (409).
3. A redemption never overdraws: holder accounts are locked and lots allocated by the ledger;
   points reserved by holds are not available.
4. An operation is reversed at most once (the ledger's unique ``reverses_id``).
"""
