"""The portable SQL on DuckDB: hand-computed RFM, cohort and repeat-rate examples, NTILE invariants,
parameter rewriting and engine selection."""

from __future__ import annotations

import importlib.util
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from allegiance.analytics import frames
from allegiance.analytics import sql as asql
from allegiance.analytics.frames import SCHEMAS
from allegiance.analytics.sql import engines
from allegiance.synthetic import SynthConfig, generate


def _orders(rows: list[tuple[str, datetime, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(org, f"O-{i}", None, at, amount, None) for i, (org, at, amount) in enumerate(rows)],
        schema=SCHEMAS["orders"], orient="row")


def _at(y: int, m: int, d: int, hh: int = 12, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=UTC)


RFM_ORDERS = _orders([
    ("A", _at(2024, 3, 30), 100), ("A", _at(2024, 3, 1), 200), ("A", _at(2024, 2, 1), 300),
    ("A", _at(2024, 4, 2), 7777),  # after as_of: ignored
    ("B", _at(2024, 1, 15), 1000),
    ("C", _at(2024, 3, 31, 23, 59, 59), 50), ("C", _at(2024, 3, 31, 0, 0, 0), 50),
    ("D", _at(2024, 2, 10), 500), ("D", _at(2024, 2, 20), 500), ("D", _at(2024, 3, 10), 500),
    ("D", _at(2024, 3, 20), 500),
    ("E", _at(2024, 4, 1, 0, 0, 0), 9999),  # only after as_of: absent
    ("F", _at(2024, 3, 15), 10), ("F", _at(2024, 3, 16), 10),
])


def test_rfm_hand_computed() -> None:
    got = asql.rfm(RFM_ORDERS, date(2024, 3, 31))
    # recency: B 2024-01-15 -> 03-31 = 16 + 29 (leap Feb) + 31 = 76 days.
    # R tiles by recency desc: B76 F15 D11 A1 C0 -> 1..5; F by count asc, C and F tie at 2 -> C (lower id) first;
    # M by sum asc: F20 C100 A600 B1000 D2000.
    expected = pl.DataFrame({
        "org": ["A", "B", "C", "D", "F"],
        "first_order_on": [date(2024, 2, 1), date(2024, 1, 15), date(2024, 3, 31), date(2024, 2, 10),
                           date(2024, 3, 15)],
        "last_order_on": [date(2024, 3, 30), date(2024, 1, 15), date(2024, 3, 31), date(2024, 3, 20),
                          date(2024, 3, 16)],
        "recency_days": [1, 76, 0, 11, 15],
        "frequency": [3, 1, 2, 4, 2],
        "monetary_minor": [600, 1000, 100, 2000, 20],
        "r_score": [4, 1, 5, 3, 2],
        "f_score": [4, 1, 2, 5, 3],
        "m_score": [3, 4, 2, 5, 1],
        "rfm_cell": ["443", "114", "522", "355", "231"],
        "segment": ["loyal", "hibernating", "potential_loyalist", "loyal", "at_risk"],
    }, schema=asql.RFM_SCHEMA)
    assert_frame_equal(got, expected)


def test_rfm_as_of_accepts_datetime_and_moves_the_window() -> None:
    early = asql.rfm(RFM_ORDERS, datetime(2024, 2, 15, 18, tzinfo=UTC))
    assert early["org"].to_list() == ["A", "B", "D"]
    assert early["recency_days"].to_list() == [14, 31, 5]
    assert early["frequency"].to_list() == [1, 1, 1]


def test_rfm_of_no_orders_is_empty_with_schema() -> None:
    got = asql.rfm(pl.DataFrame(schema=SCHEMAS["orders"]), date(2024, 1, 1))
    assert got.height == 0
    assert got.schema == pl.Schema(asql.RFM_SCHEMA)


COHORT_ORDERS = _orders([
    ("A", _at(2024, 1, 5), 100), ("A", _at(2024, 1, 20), 50), ("A", _at(2024, 3, 2), 300),
    ("B", _at(2024, 1, 31, 23, 59, 59), 200), ("B", _at(2024, 2, 1, 0, 0, 0), 100),
    ("C", _at(2024, 2, 10), 400), ("C", _at(2024, 4, 30), 40),
])


def test_cohort_retention_hand_computed() -> None:
    got = asql.cohort_retention(COHORT_ORDERS)
    jan, feb = date(2024, 1, 1), date(2024, 2, 1)
    months = [date(2024, m, 1) for m in (1, 2, 3, 4, 2, 3, 4)]
    expected = pl.DataFrame({
        "cohort_month": [jan] * 4 + [feb] * 3,
        "month_offset": [0, 1, 2, 3, 0, 1, 2],
        "period_month": months,
        "cohort_size": [2, 2, 2, 2, 1, 1, 1],
        "active_orgs": [2, 1, 1, 0, 1, 0, 1],
        "retention_rate": [1.0, 0.5, 0.5, 0.0, 1.0, 0.0, 1.0],
        "revenue_minor": [350, 100, 300, 0, 400, 0, 40],
        "cohort_revenue_minor": [350] * 4 + [400] * 3,
        "revenue_retention": [1.0, 100 / 350, 300 / 350, 0.0, 1.0, 0.0, 0.1],
    }, schema=asql.COHORT_SCHEMA)
    assert_frame_equal(got, expected)


def test_cohort_zero_first_month_revenue_gives_null_revenue_retention() -> None:
    orders = _orders([("Z", _at(2024, 5, 3), 0), ("Z", _at(2024, 6, 3), 100), ("Y", _at(2024, 12, 30), 5)])
    got = asql.cohort_retention(orders).filter(pl.col("cohort_month") == date(2024, 5, 1))
    assert got["month_offset"].to_list() == list(range(8))  # May .. December, the last month with orders
    assert got["revenue_retention"].null_count() == 8
    assert got["retention_rate"].to_list()[:3] == [1.0, 1.0, 0.0]


def test_cohort_offsets_cross_a_year_boundary() -> None:
    orders = _orders([("A", _at(2023, 11, 30), 10), ("A", _at(2024, 2, 1), 20)])
    got = asql.cohort_retention(orders)
    assert got["period_month"].to_list() == [date(2023, 11, 1), date(2023, 12, 1), date(2024, 1, 1),
                                             date(2024, 2, 1)]
    assert got["active_orgs"].to_list() == [1, 0, 0, 1]


def test_repeat_rate_hand_computed() -> None:
    got = asql.repeat_rate(COHORT_ORDERS)
    expected = pl.DataFrame({
        "month": [date(2024, m, 1) for m in (1, 2, 3, 4)],
        "ordering_orgs": [2, 2, 1, 1],
        "repeat_orgs": [1, 0, 0, 0],
        "repeat_rate": [0.5, 0.0, 0.0, 0.0],
    }, schema=asql.REPEAT_RATE_SCHEMA)
    assert_frame_equal(got, expected)


def test_utc_day_not_local_day() -> None:
    """An order at 23:30 on Jan 31 in UTC is a January order, whatever the zone it was written in."""
    berlin = datetime(2024, 2, 1, 0, 30).replace(tzinfo=UTC) - timedelta(hours=1)
    frame = _orders([("A", berlin, 1)]).with_columns(pl.col("occurred_at").dt.convert_time_zone("Europe/Berlin"))
    assert asql.repeat_rate(frame)["month"].to_list() == [date(2024, 1, 1)]


def test_duckdb_engine_reads_zoned_datetimes_as_utc_and_returns_utc() -> None:
    frame = pl.DataFrame({"ts": [datetime(2024, 2, 1, 0, 30)]}).with_columns(
        pl.col("ts").dt.replace_time_zone("Europe/Berlin"))
    got = asql.DuckDBEngine().query("SELECT ts, CAST(ts AS DATE) AS day, hour(ts) AS h FROM t", {"t": frame})
    assert got["day"].to_list() == [date(2024, 1, 31)] and got["h"].to_list() == [23]
    assert got.schema["ts"] == pl.Datetime("us", "UTC")
    assert got["ts"].to_list() == [datetime(2024, 1, 31, 23, 30, tzinfo=UTC)]


@st.composite
def _random_orders(draw: Any) -> pl.DataFrame:
    orgs = draw(st.integers(min_value=1, max_value=23))
    rows = []
    for o in range(orgs):
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            day = draw(st.integers(min_value=0, max_value=120))
            rows.append((f"O{o:02d}", _at(2024, 1, 1) + timedelta(days=day), draw(st.integers(0, 10_000))))
    return _orders(rows)


@settings(max_examples=25, deadline=None)
@given(_random_orders())
def test_rfm_scores_are_balanced_monotone_quintiles(orders: pl.DataFrame) -> None:
    got = asql.rfm(orders, date(2024, 6, 30))
    n = got.height
    assert n == orders["org"].n_unique()
    for metric, score, better in (("recency_days", "r_score", -1), ("frequency", "f_score", 1),
                                  ("monetary_minor", "m_score", 1)):
        sizes = got.group_by(score).len()["len"].to_list()
        assert max(sizes) - min(sizes) <= 1 and sorted(got[score].unique().to_list()) == list(range(1, min(5, n) + 1))
        ranked = got.sort([pl.col(metric) * better, "org"])
        assert ranked[score].to_list() == sorted(ranked[score].to_list())  # monotone, ties split by org
    for row in got.iter_rows(named=True):
        assert row["rfm_cell"] == f"{row['r_score']}{row['f_score']}{row['m_score']}"
        assert row["segment"] == asql.segment_of(row["r_score"], row["f_score"])


def test_rfm_puts_organizations_that_left_into_the_lapsed_segments() -> None:
    """Synthetic truth: an organization that left the program a month or more before ``as_of`` has
    stopped ordering, so RFM must score it R <= 2 (hibernating, at risk, cannot lose)."""
    data = frames.from_synthetic(generate(SynthConfig(organizations=300, months=24)))
    as_of = date(2025, 6, 30)
    got = asql.rfm(data.orders, as_of).join(data.organizations.select("org", "left_on"), on="org")
    gone = got.filter(pl.col("left_on") <= as_of - timedelta(days=30))
    staying = got.filter(pl.col("left_on").is_null())
    assert gone.height >= 10 and staying.height >= 100
    assert set(gone["segment"]) <= {"hibernating", "at_risk", "cannot_lose"}
    assert staying["r_score"].mean() - gone["r_score"].mean() > 1.5


def test_segment_grid_is_complete_and_matches_sql() -> None:
    cells = {(r, f): asql.segment_of(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert set(cells.values()) == set(asql.SEGMENTS)
    values = ", ".join(f"({r}, {f})" for r, f in cells)
    sql_text = (asql.load_sql("rfm").split("CASE", 1)[1].split("END AS segment", 1)[0])
    got = asql.DuckDBEngine().query(
        f"SELECT r_score, f_score, CASE{sql_text}END AS segment FROM (VALUES {values}) AS g(r_score, f_score) "
        "ORDER BY r_score, f_score", {})
    assert {(r, f): s for r, f, s in got.iter_rows()} == cells


def test_duckdb_params_rewrites_markers_only() -> None:
    text = "SELECT :a, ':b', x::INT, \"c:d\" -- e:f\n, /* :g */ :h_2 FROM t WHERE y=:a"
    assert engines.duckdb_params(text) == "SELECT $a, ':b', x::INT, \"c:d\" -- e:f\n, /* :g */ $h_2 FROM t WHERE y=$a"


def test_query_by_text_with_params_and_tables() -> None:
    frame = pl.DataFrame({"k": ["x", "y", "z"], "v": [1, 2, 3]})
    got = asql.get_engine("duckdb").query("SELECT k FROM t WHERE v >= :low ORDER BY k", {"t": frame}, {"low": 2})
    assert got["k"].to_list() == ["y", "z"]


def test_sql_files_ship_as_package_data() -> None:
    for name in ("rfm", "cohort_retention", "repeat_rate"):
        assert "SELECT" in asql.load_sql(name)
    with pytest.raises(KeyError):
        asql.load_sql("nope")


def test_get_engine_choices() -> None:
    assert isinstance(asql.get_engine("DuckDB"), asql.DuckDBEngine)
    engine = asql.DuckDBEngine()
    assert asql.get_engine(engine) is engine
    with pytest.raises(ValueError, match="unknown SQL engine"):
        asql.get_engine("sqlite")


def test_spark_without_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    with pytest.raises(asql.EngineUnavailable, match=r"allegiance\[spark\]"):
        asql.get_engine("spark")


def test_spark_without_java_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(engines.shutil, "which", lambda name: None)
    with pytest.raises(asql.EngineUnavailable, match="Java"):
        asql.SparkEngine()


def test_java_home_follows_the_java_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    jdk = tmp_path / "jvm" / "jdk-17"
    (jdk / "bin").mkdir(parents=True)
    (jdk / "bin" / "java").write_text("")
    link = tmp_path / "java"
    link.symlink_to(jdk / "bin" / "java")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(engines.shutil, "which", lambda name: str(link))
    assert engines.java_home() == str(jdk.resolve())
