"""The same SQL on Spark (local[2]) and DuckDB gives the same frames, on the hand-computed examples
and on a synthetic program. One SparkSession for the module; skipped only without pyspark or Java."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from allegiance.analytics import frames
from allegiance.analytics import sql as asql
from allegiance.synthetic import SynthConfig, generate
from tests.analytics.sql.test_sql_duckdb import COHORT_ORDERS, RFM_ORDERS

_REASON = asql.spark_unavailable_reason()
pytestmark = [pytest.mark.spark, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]


@pytest.fixture(scope="module")
def spark() -> Iterator[asql.SparkEngine]:
    engine = asql.SparkEngine()
    yield engine
    engine.close()


def test_synthetic_program_gives_equal_results(spark: asql.SparkEngine) -> None:
    """Raw engine output (before the facade conforms types) is already equal, types included."""
    orders = frames.from_synthetic(generate(SynthConfig(organizations=150, months=12))).orders
    assert orders.height > 1000 and orders["org"].n_unique() > 100
    tables = {"orders": orders.select("org", "occurred_at", "amount_minor")}
    duck = asql.DuckDBEngine()
    for name, params in (("rfm", {"as_of": date(2024, 7, 15)}), ("rfm", {"as_of": date(2024, 12, 31)}),
                         ("cohort_retention", None), ("repeat_rate", None)):
        expected = duck.query(name, tables, params)
        assert expected.height >= 12, name
        assert_frame_equal(spark.query(name, tables, params), expected)
        if name == "rfm":
            assert expected["segment"].n_unique() >= 6


def test_timestamps_come_back_alike(spark: asql.SparkEngine) -> None:
    sql = "SELECT org, MAX(occurred_at) AS last_at FROM orders GROUP BY org ORDER BY org"
    tables = {"orders": RFM_ORDERS}
    assert_frame_equal(spark.query(sql, tables), asql.DuckDBEngine().query(sql, tables))


def test_facade_on_spark_matches_the_hand_computed_examples(spark: asql.SparkEngine) -> None:
    got = asql.rfm(RFM_ORDERS, date(2024, 3, 31), engine=spark)
    assert_frame_equal(got, asql.rfm(RFM_ORDERS, date(2024, 3, 31)))
    assert got["rfm_cell"].to_list() == ["443", "114", "522", "355", "231"]
    cohorts = asql.cohort_retention(COHORT_ORDERS, engine=spark)
    assert_frame_equal(cohorts, asql.cohort_retention(COHORT_ORDERS))
    assert cohorts["active_orgs"].to_list() == [2, 1, 1, 0, 1, 0, 1]


def test_parquet_staging_gives_the_same_results(spark: asql.SparkEngine) -> None:
    """Frames above ``stage_rows`` reach Spark through a temporary Parquet file; nothing changes."""
    staged = asql.SparkEngine(stage_rows=0)  # the same shared session; closed by the fixture
    assert staged.session is spark.session
    assert_frame_equal(asql.rfm(RFM_ORDERS, date(2024, 3, 31), engine=staged),
                       asql.rfm(RFM_ORDERS, date(2024, 3, 31)))
    assert_frame_equal(asql.cohort_retention(COHORT_ORDERS, engine=staged), asql.cohort_retention(COHORT_ORDERS))


def test_empty_orders_on_spark(spark: asql.SparkEngine) -> None:
    empty = pl.DataFrame(schema=frames.SCHEMAS["orders"])
    assert_frame_equal(asql.rfm(empty, date(2024, 1, 1), engine=spark), asql.rfm(empty, date(2024, 1, 1)))
