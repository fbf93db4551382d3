from __future__ import annotations

import pytest

from allegiance.kernel.errors import ValidationFailed
from allegiance.ledger.errors import UnbalancedTransaction
from allegiance.ledger.model import Posting, TransactionDraft, TransactionKind, Unit


def test_a_transaction_must_balance_per_unit() -> None:
    with pytest.raises(UnbalancedTransaction):
        TransactionDraft(1, TransactionKind.AWARD, (Posting(1, -10, "PTS"), Posting(2, 9, "PTS")))
    with pytest.raises(UnbalancedTransaction):  # balanced in total, not per unit
        TransactionDraft(1, TransactionKind.AWARD, (Posting(1, -10, "PTS"), Posting(2, 10, "EUR")))
    TransactionDraft(1, TransactionKind.AWARD, (Posting(1, -10, "PTS"), Posting(2, 7, "PTS"), Posting(3, 3, "PTS")))


def test_zero_and_float_amounts_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        TransactionDraft(1, TransactionKind.AWARD, (Posting(1, 0, "PTS"), Posting(2, 0, "PTS")))
    with pytest.raises(ValidationFailed):
        TransactionDraft(1, TransactionKind.AWARD, (Posting(1, -1.5, "PTS"), Posting(2, 1.5, "PTS")))  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        TransactionDraft(1, TransactionKind.AWARD, ())


def test_units_format_in_their_scale() -> None:
    assert Unit("EUR", "Euro", 2).format(123456) == "1,234.56 EUR"
    assert Unit("EUR", "Euro", 2).format(-5) == "-0.05 EUR"
    assert Unit("PTS", "Points").format(4200) == "4,200 PTS"
