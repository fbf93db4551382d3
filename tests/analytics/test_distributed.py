"""The pure per-organization functions give the same results on Spark (local[2], buckets of
organizations through ``applyInArrow``) as on the embedded engine: churn training features and
features (exact), p_churn (1e-9) and reasons (exact), health scores (1e-9), the CLV fit from
Spark-aggregated triples and its predictions (1e-6). One SparkSession for the module; the Spark
tests are skipped only without pyspark or Java, as in tests/analytics/sql/test_sql_spark.py."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from allegiance.analytics import distributed, distributed_clv, report
from allegiance.analytics import sql as asql
from allegiance.analytics.churn import churn_features, fit_churn_model, score_churn, training_set
from allegiance.analytics.clv import predict_clv, rfm_summary
from allegiance.analytics.clv.predict import PARAM_COLUMNS
from allegiance.analytics.frames import SCHEMAS, Frames, from_synthetic
from allegiance.analytics.scoring import HealthScoreConfig, health_scores
from allegiance.analytics.service import AnalyticsService
from allegiance.analytics.settings import AnalyticsSettings
from allegiance.kernel.clock import FixedClock
from allegiance.synthetic import SynthConfig, generate

_REASON = asql.spark_unavailable_reason()
skip_without_spark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")

AS_OF = dt.date(2025, 12, 31)
CUTOFF = dt.date(2025, 10, 1)
TRAIN_CUTOFFS = [dt.date(2024, 6, 1) + dt.timedelta(days=45 * i) for i in range(10)]
BUCKETS = 3
# Exact, up to the last bit of a division by a literal: Polars evaluates `column / 100.0` as a
# multiplication by the reciprocal, except where it meets the column one row at a time (true
# division), and where that happens depends on how it splits the frame internally, so the same
# row of two calls over different row sets can differ by one ulp (9343.46 against
# 9343.460000000001: 1 row of 524 at 600 organizations in 8 buckets, also without Spark; none on
# this sample). Strings, dates and lists compare exactly.
EXACT: dict[str, Any] = {"check_exact": False, "rel_tol": 1e-15, "abs_tol": 0.0}


@pytest.fixture(scope="module")
def spark() -> Iterator[asql.SparkEngine]:
    engine = asql.SparkEngine()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def program() -> Frames:
    return from_synthetic(generate(SynthConfig(seed=7, organizations=80, months=24)))


@pytest.mark.parametrize("engine", [pytest.param("spark", marks=[pytest.mark.spark, skip_without_spark]), "duckdb"])
def test_every_organization_lands_in_one_bucket_with_all_its_rows(request: pytest.FixtureRequest, engine: str,
                                                                  program: Frames) -> None:
    chosen: Any = request.getfixturevalue("spark") if engine == "spark" else engine

    def probe(frames: Frames) -> pl.DataFrame:
        """Per bucket: its organizations, all of them named in ``bucket``, and their order counts."""
        orgs = sorted(frames.organizations["org"].to_list())
        counts = frames.orders.group_by("org").agg(orders=pl.len())
        listed = pl.DataFrame({"org": orgs, "bucket": [",".join(orgs)] * len(orgs)},
                              schema={"org": pl.String(), "bucket": pl.String()})
        return listed.join(counts, on="org", how="left").with_columns(pl.col("orders").fill_null(0))

    schema = {"org": pl.String(), "bucket": pl.String(), "orders": pl.Int64()}
    got = distributed.by_organization(chosen, program, probe, schema, buckets=BUCKETS).sort("org")
    assert got["org"].to_list() == sorted(program.organizations["org"].to_list())  # each org exactly once
    expected = program.orders.group_by("org").agg(orders=pl.len())
    joined = got.join(expected, on="org", how="left", suffix="_all").with_columns(pl.col("orders_all").fill_null(0))
    assert joined["orders"].to_list() == joined["orders_all"].cast(pl.Int64).to_list()
    assert got["bucket"].n_unique() == (BUCKETS if engine == "spark" else 1)


@pytest.mark.spark
@skip_without_spark
def test_churn_training_features_scores_and_health_equal_the_embedded_ones(spark: asql.SparkEngine,
                                                                          program: Frames) -> None:
    train = distributed.training_set_on(spark, program, TRAIN_CUTOFFS, 180, buckets=BUCKETS)
    expected_train = training_set(program, TRAIN_CUTOFFS, 180)
    assert_frame_equal(train, expected_train, **EXACT)  # the same rows in the same order
    assert train.height > 700 and int(train["churned"].sum()) >= 40

    model = fit_churn_model(train)  # on the driver
    scores = distributed.score_churn_on(spark, program, model, CUTOFF, buckets=BUCKETS)
    features = churn_features(program, CUTOFF)
    assert_frame_equal(scores.features, features, **EXACT)
    expected = score_churn(model, features)
    assert expected["p_churn"].std() > 0.02 and expected["reasons"].list.len().sum() > 50
    by_org = scores.scored.join(expected, on="org", how="full", suffix="_embedded")
    assert by_org.height == expected.height == scores.scored.height
    assert (by_org["p_churn"] - by_org["p_churn_embedded"]).abs().max() <= 1e-9
    for column in ("reasons", "reason_families", "reason_texts", "main_family", "intervention"):
        assert by_org[column].to_list() == by_org[f"{column}_embedded"].to_list(), column

    config = HealthScoreConfig(version="test", weights={"purchase_trend": 2, "nps": 1, "complaints": 1,
                                                        "breadth": 0.5}, recency_scale_days=45)
    health = distributed.health_on(spark, program, CUTOFF, config, buckets=BUCKETS)
    expected_health = health_scores(program, CUTOFF, config)
    assert expected_health["health_score"].std() > 5
    assert_frame_equal(health, expected_health, check_exact=False, rel_tol=0, abs_tol=1e-9)


@pytest.mark.spark
@skip_without_spark
def test_clv_fitted_from_spark_triples_predicts_as_embedded(spark: asql.SparkEngine, program: Frames) -> None:
    orders = program.orders
    expected = predict_clv(orders, as_of=AS_OF, horizon_days=365, margin=0.3, discount_rate=0.008)
    # predict_clv_on fits on the driver from the distinct (x, t_x, T) triples and (x, monetary)
    # pairs Spark aggregated; its param_* columns are those parameters
    got = distributed_clv.predict_clv_on(spark, orders, as_of=AS_OF, horizon_days=365, margin=0.3,
                                     discount_rate=0.008, buckets=BUCKETS)
    assert got.height == expected.height > 60 and expected["clv"].std() > 0
    for name in PARAM_COLUMNS:
        want = expected[name][0]
        assert (got[name][0] is None) == (want is None), name
        if want is not None:
            assert math.isclose(got[name][0], want, rel_tol=1e-6), name
    assert_frame_equal(got, expected, check_exact=False, rel_tol=1e-6, abs_tol=1e-9)


def test_weighted_distinct_triples_fit_as_one_row_per_organization(program: Frames) -> None:
    """What the driver fits on (no Spark needed): the compressed summary gives the parameters of
    the per-organization fit in predict_clv."""
    summary = rfm_summary(program.orders, observation_end=AS_OF)
    counts = distributed_clv.clv_counts(summary)
    assert counts.triples["customers"].sum() == summary.height
    assert counts.spend["customers"].sum() == summary.filter((pl.col("frequency") > 0)
                                                             & (pl.col("monetary") > 0)).height
    for model in ("bgnbd", "paretonbd"):
        expected = predict_clv(program.orders, as_of=AS_OF, horizon_days=365, model=model)
        fitted = distributed_clv.fit_clv(counts, model).params()
        for name in PARAM_COLUMNS:
            want = expected[name][0]
            assert (fitted[name] is None) == (want is None), (model, name)
            if want is not None:
                assert math.isclose(fitted[name] or 0.0, want, rel_tol=1e-6), (model, name)
    with pytest.raises(ValueError, match="at least 3 organizations"):
        distributed_clv.fit_clv(distributed_clv.clv_counts(summary.head(0)))


def _roles_frames(a: str, b: str) -> Frames:
    """Organizations a and b; x works at b (people) but acts for a (an activity row with org a)."""
    at = dt.datetime(2025, 9, 1, tzinfo=dt.UTC)
    orgs = pl.DataFrame({"org": [a, b], "name": [a, b], "kind": ["customer"] * 2, "parent": [None, None],
                         "segment": ["enterprise", "education"], "country": ["DE", "FR"],
                         "status": ["active"] * 2, "joined_on": [dt.date(2024, 1, 1)] * 2, "left_on": [None, None]},
                        schema=SCHEMAS["organizations"])
    people = pl.DataFrame({"participant": [f"{a}-owner", f"{b}-owner", "x"], "org": [a, b, b],
                           "role": ["owner", "owner", "purchasing_manager"], "status": ["active"] * 3,
                           "left_on": [None] * 3}, schema=SCHEMAS["people"])
    orders = pl.DataFrame({"org": [a, b], "order_id": ["o1", "o2"], "participant": [f"{a}-owner", f"{b}-owner"],
                           "occurred_at": [at, at], "amount_minor": [10_000, 20_000], "channel": ["web", "web"]},
                          schema=SCHEMAS["orders"])
    activity = pl.DataFrame({"org": [a], "participant": ["x"], "type": ["training.completed"], "occurred_at": [at]},
                            schema=SCHEMAS["activity"])
    return Frames(organizations=orgs, people=people, orders=orders, activity=activity)


@pytest.mark.spark
@skip_without_spark
def test_a_participant_acting_for_another_organization_reaches_its_own_bucket(spark: asql.SparkEngine) -> None:
    names = pl.DataFrame({"org": [f"org-{i}" for i in range(12)]})
    placed = spark.query("SELECT org, CAST(pmod(xxhash64(org), 2) AS INT) AS bucket FROM o ORDER BY org", {"o": names})
    a = placed.filter(pl.col("bucket") == 0)["org"][0]
    b = placed.filter(pl.col("bucket") == 1)["org"][0]
    frames = _roles_frames(a, b)
    cutoff = dt.date(2025, 10, 1)
    expected = churn_features(frames, cutoff)
    roles = dict(zip(expected["org"], expected["roles_engaged_180d"], strict=True))
    assert roles == {a: 1.0, b: 2.0}  # x counts for b, the organization x belongs to
    staged = asql.SparkEngine(stage_rows=0)  # the same session; the frames reach it through Parquet
    assert_frame_equal(distributed.churn_features_on(staged, frames, cutoff, buckets=2), expected, **EXACT)
    unrouted = distributed.by_organization(spark, frames, lambda f: churn_features(f, cutoff),
                                           distributed.FEATURES_SCHEMA, buckets=2).sort("org")
    assert dict(zip(unrouted["org"], unrouted["roles_engaged_180d"], strict=True)) == {a: 1.0, b: 1.0}


def _close(got: Any, want: Any, path: str = "") -> None:
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            _close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _close(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9), path
    else:
        assert got == want, path


@pytest.mark.spark
@skip_without_spark
def test_report_documents_are_the_same_with_engine_spark(spark: asql.SparkEngine, program: Frames) -> None:
    settings = AnalyticsSettings(churn_horizon_days=180, churn_training_cutoffs=6, churn_cutoff_step_days=45)
    value = pl.DataFrame({"org": program.organizations["org"], "value_minor": range(program.organizations.height)},
                         schema={"org": pl.String(), "value_minor": pl.Int64()})
    churn = report.churn(program, AS_OF, settings, value, engine="spark")
    embedded = report.churn(program, AS_OF, settings, value)
    assert churn["training_rows"] > 300 and churn["at_risk"] > 0
    by_org = {r["org"]: r for r in embedded["rows"]}
    _close(sorted(churn["rows"], key=lambda r: r["org"]), [by_org[o] for o in sorted(by_org)])
    _close({k: v for k, v in churn.items() if k != "rows"}, {k: v for k, v in embedded.items() if k != "rows"})
    _close(report.health(program, AS_OF, settings, engine="spark"), report.health(program, AS_OF, settings))


# -- the service passes its engine on (no Spark needed) ---------------------------------------------
class _Store:
    def frames(self, program_id: int, *, until: dt.datetime | None = None) -> Frames:
        return Frames()

    def save_snapshot(self, program_id: int, kind: str, as_of: dt.date, document: dict[str, Any]) -> None:
        pass

    def config(self, program_id: int, kind: str, version: int | None = None) -> dict[str, Any] | None:
        return None


def test_the_service_runs_clv_churn_and_health_on_its_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}

    def recorder(kind: str) -> Any:
        def compute(*args: Any, engine: str = "duckdb", **kwargs: Any) -> dict[str, Any]:
            seen[kind] = engine
            return {"rows": []}
        return compute

    for kind in ("clv", "churn", "health"):
        monkeypatch.setattr(report, kind, recorder(kind))
    monkeypatch.setattr(report, "churn_evaluation", lambda *args, **kwargs: {})
    service = AnalyticsService(_Store(), FixedClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),  # type: ignore[arg-type]
                               None)  # type: ignore[arg-type]
    result = service.run(1, engine="spark", kinds=("clv", "churn", "health"))
    assert seen == {"clv": "spark", "churn": "spark", "health": "spark"}
    assert set(result.documents) == {"clv", "churn", "health"}
    service.run(1, kinds=("clv", "churn", "health"))
    assert seen == {"clv": "duckdb", "churn": "duckdb", "health": "duckdb"}
