"""Validation against the published CDNOW results (Fader, Hardie & Lee 2005; Fader & Hardie's
Pareto/NBD and Gamma-Gamma notes), from the data files shipped with the ``lifetimes`` package.

The published parameters come from the 2,357-customer 1/10 sample of the CDNOW cohort that made
its first purchase in the first quarter of 1997, calibrated on 1997-01-01..1997-09-30 (39 weeks,
T counted from each customer's first purchase, time in weeks at day resolution). The sample is
``CDNOW_sample.txt`` (master id, sample id, date, CDs, dollars); the same customers' rows are in
``CDNOW_master.txt``. ``lifetimes`` is not imported: only its data files are read.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from allegiance.analytics.clv import bgnbd, gammagamma, paretonbd
from allegiance.analytics.clv.summary import rfm_summary

CALIBRATION_END = dt.date(1997, 9, 30)
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LL = -9582.4
PUBLISHED_PARETO = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}
PUBLISHED_PARETO_LL = -9594.97
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def dataset(name: str) -> Path:
    try:
        files = importlib.metadata.files("lifetimes") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the lifetimes distribution (test data) is not installed")
    for f in files:
        if str(f).endswith(f"datasets/{name}"):
            return Path(str(f.locate()))
    pytest.skip(f"lifetimes has no datasets/{name}")


def agrees_to_3_significant_digits(fitted: float, published: float) -> bool:
    """|fitted - published| within half a unit of the third significant digit of ``published``."""
    unit = 10.0 ** (math.floor(math.log10(abs(published))) - 2)
    return abs(fitted - published) <= unit / 2 + 1e-12


def assert_params(fitted: dict[str, float], published: dict[str, float], scale: dict[str, float] | None = None) -> None:
    scale = scale or {}
    for name, value in published.items():
        got = fitted[name] / scale.get(name, 1.0)
        assert agrees_to_3_significant_digits(got, value), f"{name}: fitted {got:.5g}, published {value}"


@pytest.fixture(scope="module")
def summary_file() -> pl.DataFrame:
    """Fader & Hardie's precomputed summary: ID, x, t_x, T (weeks), zbar (dollars)."""
    return pl.read_csv(dataset("cdnow_customers_summary_with_transactions.csv"))


@pytest.fixture(scope="module")
def raw_orders() -> pl.DataFrame:
    """The cohort's transactions from CDNOW_master.txt as an ``orders`` frame (cents)."""
    sample_ids: dict[str, int] = {}
    for line in dataset("CDNOW_sample.txt").read_text().splitlines():
        master_id, sample_id, *_ = line.split()
        sample_ids[master_id] = int(sample_id)
    rows = []
    lines = dataset("CDNOW_master.txt").read_text().splitlines()
    for line in lines[1:]:  # header: customer_id date number_of_cds dollar_value
        customer, date, _cds, dollars = line.split()
        if customer in sample_ids:
            rows.append((str(sample_ids[customer]), dt.datetime.strptime(date, "%Y%m%d").replace(tzinfo=dt.UTC),
                         round(float(dollars) * 100)))
    assert len(sample_ids) == 2357
    return pl.DataFrame(rows, schema={"org": pl.String(), "occurred_at": pl.Datetime("us", "UTC"),
                                      "amount_minor": pl.Int64()}, orient="row")


@pytest.fixture(scope="module")
def raw_summary(raw_orders: pl.DataFrame) -> pl.DataFrame:
    return rfm_summary(raw_orders, observation_end=CALIBRATION_END, time_unit="weeks")


def columns(frame: pl.DataFrame, *names: str) -> list[np.ndarray]:
    return [frame[n].to_numpy().astype(np.float64) for n in names]


def test_summary_from_raw_transactions_reproduces_the_published_summary(raw_summary: pl.DataFrame,
                                                                        summary_file: pl.DataFrame) -> None:
    joined = (raw_summary.with_columns(pl.col("org").cast(pl.Int64).alias("ID"))
              .join(summary_file, on="ID", how="full", coalesce=True))
    assert joined.height == 2357 and joined["frequency"].null_count() == 0 and joined["x"].null_count() == 0
    assert (joined["frequency"] == joined["x"]).all()
    # The published file rounds to 2 decimals.
    assert (joined["recency"] - joined["t_x"]).abs().max() <= 0.005 + 1e-9  # type: ignore[operator]
    assert (joined["T"] - joined["T_right"]).abs().max() <= 0.005 + 1e-9  # type: ignore[operator]
    assert (joined["monetary"] / 100 - joined["zbar"]).abs().max() <= 0.005 + 1e-9  # type: ignore[operator]
    assert int(joined["x"].sum()) == 2457  # FHL 2005: 2,457 repeat purchases in the calibration period


def test_bgnbd_on_the_published_summary(summary_file: pl.DataFrame) -> None:
    fit = bgnbd.fit(*columns(summary_file, "x", "t_x", "T"))
    assert fit.converged and fit.n == 2357
    assert_params(fit.params._asdict(), PUBLISHED_BGNBD)
    assert fit.log_likelihood == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.05)


def test_bgnbd_from_raw_transactions(raw_summary: pl.DataFrame) -> None:
    fit = bgnbd.fit(*columns(raw_summary, "frequency", "recency", "T"))
    assert fit.converged
    assert_params(fit.params._asdict(), PUBLISHED_BGNBD)
    assert fit.log_likelihood == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.05)


def test_bgnbd_published_conditional_expectation(summary_file: pl.DataFrame) -> None:
    # FHL 2005, section 5: a customer with x = 2, t_x = 30.43, T = 38.86 is expected to make
    # 1.226 purchases in the next 39 weeks.
    fit = bgnbd.fit(*columns(summary_file, "x", "t_x", "T"))
    assert fit.expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)


def test_pareto_nbd_on_the_published_summary(summary_file: pl.DataFrame) -> None:
    fit = paretonbd.fit(*columns(summary_file, "x", "t_x", "T"))
    assert fit.converged
    assert_params(fit.params._asdict(), PUBLISHED_PARETO)
    assert fit.log_likelihood == pytest.approx(PUBLISHED_PARETO_LL, abs=0.01)


def test_pareto_nbd_from_raw_transactions(raw_summary: pl.DataFrame) -> None:
    fit = paretonbd.fit(*columns(raw_summary, "frequency", "recency", "T"))
    assert_params(fit.params._asdict(), PUBLISHED_PARETO)
    assert fit.log_likelihood == pytest.approx(PUBLISHED_PARETO_LL, abs=0.05)


def test_gamma_gamma_on_the_published_summary(summary_file: pl.DataFrame) -> None:
    repeat = summary_file.filter(pl.col("x") > 0)
    assert repeat.height == 946
    fit = gammagamma.fit(*columns(repeat, "x", "zbar"))
    assert fit.converged and fit.n == 946
    assert_params(fit.params._asdict(), PUBLISHED_GG)
    # The population mean order value is p gamma / (q - 1) = $35.17; a customer's expected value
    # lies between it and the customer's own mean, closer to its own the more purchases it has.
    assert fit.population_mean == pytest.approx(6.25 * 15.44 / 2.74, rel=2e-3)
    two, twenty = fit.expected_order_value([2, 20], [20.0, 20.0])
    assert 20.0 < twenty < two < fit.population_mean


def test_gamma_gamma_from_raw_transactions_in_cents(raw_summary: pl.DataFrame) -> None:
    repeat = raw_summary.filter(pl.col("frequency") > 0)
    fit = gammagamma.fit(*columns(repeat, "frequency", "monetary"))
    # Monetary values in cents: gamma scales by 100, p and q are unit-free.
    assert_params(fit.params._asdict(), PUBLISHED_GG, scale={"gamma": 100.0})
