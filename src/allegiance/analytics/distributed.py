"""The same pure per-organization functions on Apache Spark, for histories that outgrow one machine.

Why: churn features, churn scores with their reasons, health scores and lifetime-value forecasts
are Polars functions over `Frames`. Every one of them computes an organization's row from that
organization's own rows only, so the history can be cut into buckets of organizations and the
*unchanged* function run on each bucket in parallel; stacking the buckets' outputs gives the
result of one call over the whole history. :func:`by_organization` does that cutting on Spark
(``groupBy(bucket).applyInArrow``, Arrow in and out, no pandas conversion) and simply calls the
function on the embedded (DuckDB) engine, so both engines run one implementation and a test
(``tests/analytics/test_distributed.py``) checks that their results are equal.

How a bucket is built: every non-empty frame is tagged with its name and its row number and
stacked into one long table (columns of the same name have the same type in every frame, see
`frames.SCHEMAS`); each row goes to bucket ``pmod(xxhash64(org), buckets)``. In the worker the
bucket's rows are split back into frames, each restored to its declared schema and to its
original row order, so the function sees exactly the subsequence of every frame that belongs to
the bucket's organizations. Its output (a Polars frame of the declared ``schema``) goes back
through Arrow. Anything the function closes over (a trained churn model, fitted parameters, a
configuration) travels with it: pyspark pickles the function with cloudpickle and broadcasts
the pickle once it exceeds its broadcast threshold (1 MB by default).

Which inputs cross organizations (checked in the code of each function):

- `churn.features.churn_features`: every aggregate is a ``group_by("org")`` of one frame joined
  to the population (one row per organization, `population` keeps the first row of a duplicated
  org, and all rows of an org share a bucket, in their original order). One exception:
  ``roles_engaged_180d`` maps each event's participant to *the participant's* organization in
  ``people``, which may differ from the event's ``org`` (a person acting for another customer).
  ``route_participants=True`` also sends a copy of such an event to the bucket of the
  participant's organization; the copy can only reach that organization's role count, because
  every other aggregate is keyed by the event's own org, which is not in that bucket's
  population. The churn, health and training helpers here all route participants.
- `churn.model.churn_labels` / `training_set`: the population and ``orders`` per org.
- `churn.model.score_churn`: row by row given the fitted model (probabilities, tree-SHAP
  contributions and reasons read the organization's own feature row); only the final sort is
  global, and it is redone after the buckets are stacked.
- `scoring.health.health_scores_from_features`: element-wise expressions of one feature row.
- `clv.summary.rfm_summary`: ``group_by`` org (and day). The BG/NBD / Pareto/NBD and Gamma-Gamma
  *fits* are the one step that pools organizations: on Spark they run on the driver from the
  RFM summary compressed to distinct (x, t_x, T) triples and (x, monetary) pairs with counts,
  which the fits take as ``weights`` (the same compression the fits apply internally, so the
  parameters are the embedded ones); predictions given the parameters are row by row.

Training the churn model stays on the driver: its training set is one row per organization per
cutoff, small next to the event history it is extracted from, and a seeded LightGBM fit on a
few thousand rows takes seconds. Extracting the training features and scoring are the parts
that grow with the history, and both run per bucket here.

pyspark is imported inside functions only; the module imports no storage or web code. The
lifetime-value functions on the same runner are in :mod:`allegiance.analytics.distributed_clv`.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from allegiance.analytics.churn.features import FEATURE_NAMES, churn_features
from allegiance.analytics.churn.model import ChurnModel, LabelRule, score_churn, training_set
from allegiance.analytics.frames import SCHEMAS, Frames, conform
from allegiance.analytics.scoring.health import COMPONENTS, HealthScoreConfig, health_scores_from_features
from allegiance.analytics.sql.engines import SPARK_EXTRA, Engine, EngineUnavailable, SparkEngine, get_engine

Schema = Mapping[str, pl.DataType]
FrameFunction = Callable[[Frames], pl.DataFrame]

BUCKET = "__bucket"
FRAME = "__frame"
ROW = "__row"
# Frames whose events name a participant; `route_participants` copies them to the participant's bucket.
PARTICIPANT_FRAMES = ("orders", "activity", "responses", "program")
_PANDAS_WARNING = "PySpark does not yet fully support pandas"

FEATURES_SCHEMA: dict[str, pl.DataType] = {
    "org": pl.String(), "cutoff": pl.Date(), "segment": pl.String(), **{n: pl.Float64() for n in FEATURE_NAMES}}
TRAINING_SCHEMA: dict[str, pl.DataType] = {**FEATURES_SCHEMA, "churned": pl.Boolean()}
SCORE_SCHEMA: dict[str, pl.DataType] = {
    "org": pl.String(), "cutoff": pl.Date(), "p_churn": pl.Float64(), "reasons": pl.List(pl.String()),
    "reason_families": pl.List(pl.String()), "reason_texts": pl.List(pl.String()), "main_family": pl.String(),
    "intervention": pl.String()}
HEALTH_SCHEMA: dict[str, pl.DataType] = {
    "org": pl.String(), "cutoff": pl.Date(), "health_score": pl.Float64(),
    **{f"{c}_score": pl.Float64() for c in COMPONENTS}, **{f"{c}_contribution": pl.Float64() for c in COMPONENTS},
    "config_version": pl.String()}


# -- the engine-independent runner ------------------------------------------------------------------
def spark_engine(engine: str | Engine) -> SparkEngine | None:
    """The SparkEngine ``engine`` names (``"spark"`` or an instance), None for the embedded ones.

    ``"duckdb"`` never constructs anything; ``"spark"`` raises `EngineUnavailable` without pyspark or
    Java; any other name raises ValueError (as `sql.get_engine`).
    """
    if isinstance(engine, str):
        if engine.strip().lower() == "duckdb":
            return None
        engine = get_engine(engine)
    return engine if isinstance(engine, SparkEngine) else None


def by_organization(engine: str | Engine, frames: Frames, fn: FrameFunction, schema: Schema, *,
                    buckets: int | None = None, route_participants: bool = False) -> pl.DataFrame:
    """``fn(frames)`` computed bucket by bucket of organizations on Spark, or in one call embedded.

    ``fn`` must be a per-organization function (module docstring): its rows for an organization
    depend only on that organization's rows of the frames. It returns a Polars frame with the
    columns of ``schema`` (types are cast to it; supported: String, Float64, Int64, Int32, Int8,
    Boolean, Date, UTC Datetime and lists of those). The result has ``schema``; its row order is
    the buckets' concatenation on Spark, so callers sort it. ``buckets`` defaults to Spark's
    shuffle partitions (2 on ``local[2]``); a bucket is processed in one Python worker's memory,
    so raise it with the history. ``route_participants``: see the module docstring.
    """
    spark = spark_engine(engine)
    if spark is None or not _has_rows(frames):
        return _conform(fn(frames), schema)
    with _bucketed(spark, frames, fn, schema, buckets=buckets, route_participants=route_participants) as result:
        table = result.toArrow()
    return _from_arrow(table, schema)


def _has_rows(frames: Frames) -> bool:
    return any(getattr(frames, name).height for name in SCHEMAS)


def _conform(frame: pl.DataFrame, schema: Schema) -> pl.DataFrame:
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"the function's result lacks columns {missing}")
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def _from_arrow(table: pa.Table, schema: Schema) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return _conform(frame, schema)


_DDL: dict[type[pl.DataType], str] = {
    pl.String: "STRING", pl.Float64: "DOUBLE", pl.Int64: "BIGINT", pl.Int32: "INT", pl.Int8: "TINYINT",
    pl.Boolean: "BOOLEAN", pl.Date: "DATE", pl.Datetime: "TIMESTAMP"}


def _ddl_type(dtype: Any) -> str:
    if isinstance(dtype, type):
        dtype = dtype()
    if isinstance(dtype, pl.List):
        return f"ARRAY<{_ddl_type(dtype.inner)}>"
    if isinstance(dtype, pl.Datetime) and dtype.time_zone not in (None, "UTC"):
        raise TypeError(f"datetimes reach Spark in UTC; convert {dtype} first")
    name = _DDL.get(type(dtype))
    if name is None:
        raise TypeError(f"no Spark type for {dtype}")
    return name


def spark_ddl(schema: Schema) -> str:
    """The Spark DDL string of a Polars schema (``"`org` STRING, `p` DOUBLE"``)."""
    return ", ".join(f"`{name}` {_ddl_type(dtype)}" for name, dtype in schema.items())


def _plain(arrow_type: pa.DataType, large: bool) -> pa.DataType:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return pa.large_string() if large else pa.string()
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_list_view(arrow_type):
        inner = _plain(arrow_type.value_type, large)
        return pa.large_list(inner) if large else pa.list_(inner)
    return arrow_type


def _arrow_schema(schema: Schema, *, large: bool) -> pa.Schema:
    """The Arrow schema Spark expects back from a worker for ``schema`` (strings and lists with
    32-bit offsets unless ``spark.sql.execution.arrow.useLargeVarTypes``, timestamps in UTC)."""
    fields = pl.DataFrame(schema=dict(schema)).to_arrow().schema
    return pa.schema([pa.field(f.name, _plain(f.type, large)) for f in fields])


def _frames_of(table: pa.Table) -> Frames:
    """A bucket's long table split back into frames, each with its declared schema and original order."""
    long = pl.from_arrow(table)
    assert isinstance(long, pl.DataFrame)
    parts: dict[str, pl.DataFrame] = {}
    for name in long[FRAME].unique().to_list():
        part = long.filter(pl.col(FRAME) == name).sort(ROW)
        parts[name] = part.select([pl.col(c).cast(t) for c, t in SCHEMAS[name].items()]).rechunk()
    return Frames(**parts)


def _arrow_out(frame: pl.DataFrame, schema: Schema, target: pa.Schema) -> pa.Table:
    return _conform(frame, schema).to_arrow().cast(target)


def _long_frame(frames: Frames) -> pl.DataFrame:
    parts = [conform(name, getattr(frames, name)).with_columns(
        pl.lit(name).alias(FRAME), pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW))
        for name in SCHEMAS if getattr(frames, name).height]
    return pl.concat(parts, how="diagonal")


@contextmanager
def _quiet_pandas_check() -> Iterator[None]:
    """pyspark builds Arrow UDFs through `pandas_udf`, which warns (FutureWarning) on pandas 3
    although no pandas conversion happens on this path; the warning is silenced, nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
        yield


@contextmanager
def _bucketed(spark: SparkEngine, frames: Frames, fn: FrameFunction, schema: Schema, *, buckets: int | None,
              route_participants: bool) -> Iterator[Any]:
    """The lazy Spark DataFrame of ``fn`` applied per bucket; valid (staged inputs kept) inside the block."""
    if importlib.util.find_spec("pandas") is None:
        raise EngineUnavailable(f"pyspark's Arrow UDFs need pandas installed: pip install '{SPARK_EXTRA}'")
    from pyspark.sql import functions as F

    session = spark.session
    count = int(buckets if buckets is not None else session.conf.get("spark.sql.shuffle.partitions"))
    if count < 1:
        raise ValueError(f"buckets must be >= 1, got {count}")
    large = str(session.conf.get("spark.sql.execution.arrow.useLargeVarTypes")).lower() == "true"
    target = _arrow_schema(schema, large=large)

    def run(table: pa.Table) -> pa.Table:
        return _arrow_out(fn(_frames_of(table)), schema, target)

    long = _long_frame(frames)
    staging = tempfile.mkdtemp(prefix="allegiance-spark-")
    try:
        if long.height > spark.stage_rows:
            path = str(Path(staging) / "frames.parquet")
            long.write_parquet(path)
            source = session.read.parquet(path)
        else:
            source = session.createDataFrame(long.to_arrow())
        source = source.withColumn(BUCKET, F.pmod(F.xxhash64(F.col("org")), F.lit(count)))
        if route_participants and "participant" in long.columns and frames.people.height:
            owners = (source.where(F.col(FRAME) == "people")
                      .select(F.col("participant").alias("__p"), F.col(BUCKET).alias("__pb")).distinct())
            copies = (source.where(F.col(FRAME).isin(list(PARTICIPANT_FRAMES)) & F.col("participant").isNotNull())
                      .join(owners, F.col("participant") == F.col("__p"))
                      .where(F.col("__pb") != F.col(BUCKET))
                      .withColumn(BUCKET, F.col("__pb")).drop("__p", "__pb"))
            source = source.unionByName(copies)
        with _quiet_pandas_check():
            result = source.groupBy(BUCKET).applyInArrow(run, spark_ddl(schema))
        yield result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- churn and health -----------------------------------------------------------------------------
def _features(frames: Frames, cutoff: dt.date, kinds: tuple[str, ...] | None) -> pl.DataFrame:
    return churn_features(frames, cutoff, kinds=kinds)


def churn_features_on(engine: str | Engine, frames: Frames, cutoff: dt.date,
                      kinds: tuple[str, ...] | None = ("customer",), *, buckets: int | None = None) -> pl.DataFrame:
    """`churn_features` on the chosen engine: one row per organization at risk at ``cutoff``,
    columns ``FEATURES_SCHEMA``, sorted by org (the embedded result, row for row)."""
    fn = partial(_features, cutoff=cutoff, kinds=kinds)
    return by_organization(engine, frames, fn, FEATURES_SCHEMA, buckets=buckets, route_participants=True).sort("org")


def _training(frames: Frames, cutoffs: tuple[dt.date, ...], horizon_days: int, rule: LabelRule,
              kinds: tuple[str, ...] | None) -> pl.DataFrame:
    return training_set(frames, cutoffs, horizon_days, rule=rule, kinds=kinds)


def training_set_on(engine: str | Engine, frames: Frames, cutoffs: Sequence[dt.date], horizon_days: int, *,
                    rule: LabelRule = "left", kinds: tuple[str, ...] | None = ("customer",),
                    buckets: int | None = None) -> pl.DataFrame:
    """`churn.training_set` on the chosen engine: features and label of every organization at
    every cutoff, sorted by (cutoff, org) (the embedded order, so the seeded fit is the same).
    Only the extraction runs per bucket; fit the model on the driver (`fit_churn_model`)."""
    if not cutoffs:
        raise ValueError("no cutoffs given")
    fn = partial(_training, cutoffs=tuple(sorted(set(cutoffs))), horizon_days=horizon_days, rule=rule, kinds=kinds)
    out = by_organization(engine, frames, fn, TRAINING_SCHEMA, buckets=buckets, route_participants=True)
    return out.sort("cutoff", "org")


@dataclass(frozen=True)
class ChurnScores:
    """Both outputs of one pass: the `churn_features` frame (sorted by org) and the `score_churn`
    frame (sorted by p_churn descending, then org)."""

    features: pl.DataFrame
    scored: pl.DataFrame


def _scores(frames: Frames, model: ChurnModel, cutoff: dt.date, kinds: tuple[str, ...] | None,
            top: int) -> pl.DataFrame:
    features = churn_features(frames, cutoff, kinds=kinds)
    scored = score_churn(model, features, top=top)
    return features.join(scored.drop("cutoff"), on="org", how="left")


def score_churn_on(engine: str | Engine, frames: Frames, model: ChurnModel, cutoff: dt.date,
                   kinds: tuple[str, ...] | None = ("customer",), *, top: int = 3,
                   buckets: int | None = None) -> ChurnScores:
    """Churn features at ``cutoff`` and their scores with reasons (`score_churn`) on the chosen
    engine, in one pass over the history; ``model`` (trained on the driver) travels to the
    workers with the function."""
    fn = partial(_scores, model=model, cutoff=cutoff, kinds=kinds, top=top)
    out = by_organization(engine, frames, fn, {**FEATURES_SCHEMA, **SCORE_SCHEMA}, buckets=buckets,
                          route_participants=True)
    return ChurnScores(features=out.select(list(FEATURES_SCHEMA)).sort("org"),
                       scored=out.select(list(SCORE_SCHEMA)).sort(["p_churn", "org"], descending=[True, False]))


def _health(frames: Frames, cutoff: dt.date, config: HealthScoreConfig | None,
            kinds: tuple[str, ...] | None) -> pl.DataFrame:
    return health_scores_from_features(churn_features(frames, cutoff, kinds=kinds), config)


def health_on(engine: str | Engine, frames: Frames, cutoff: dt.date, config: HealthScoreConfig | None = None,
              kinds: tuple[str, ...] | None = ("customer",), *, buckets: int | None = None) -> pl.DataFrame:
    """`scoring.health_scores` on the chosen engine: ``HEALTH_SCHEMA``, sorted by org."""
    fn = partial(_health, cutoff=cutoff, config=config, kinds=kinds)
    return by_organization(engine, frames, fn, HEALTH_SCHEMA, buckets=buckets, route_participants=True).sort("org")
