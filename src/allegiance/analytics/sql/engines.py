"""SQL engines that run the same SQL text over Polars frames: DuckDB (embedded, the default) and
Apache Spark (local mode, the optional ``allegiance[spark]`` extra).

Why two engines: DuckDB answers a single program in-process in about a second; Spark is what an
operator already runs when the orders live in a data lake. The SQL files next to this module are
written once, in the subset of SQL both dialects read identically, so a number computed on one
engine is the number computed on the other (a test runs both on the same sample and compares).

The dialect differences this module papers over (and nothing else):

- **Named parameters.** The SQL files write ``:name`` (Spark's native marker). DuckDB spells it
  ``$name``, so :func:`duckdb_params` rewrites ``:name`` outside string literals, quoted
  identifiers and comments; ``::`` casts are left alone. Values are bound, never pasted in.
- **Session time zone.** Both engines are pinned to UTC, so ``CAST(occurred_at AS DATE)`` is the
  UTC calendar day on both (DuckDB would otherwise use the machine's zone for TIMESTAMPTZ).
- **Timestamps in DuckDB.** Frames reach DuckDB with their UTC datetimes as naive UTC wall-clock
  TIMESTAMPs (a metadata-only change in Polars), and naive datetimes in its results are tagged UTC
  again, as Spark's TIMESTAMP is. Same values, same days, but DuckDB's cast of a TIMESTAMPTZ to
  DATE goes through ICU time zone rules and costs 10-20x more than the plain TIMESTAMP cast
  (0.6-0.8 s against 0.03-0.07 s over 5,000,000 rows, measured).
- **Result types.** DuckDB widens ``SUM(BIGINT)`` to HUGEINT and types ``NTILE`` as BIGINT, Spark as
  INT; the SQL casts every output column explicitly, and the facade conforms the result to a
  declared Polars schema.

Date arithmetic needs no macro: days between two dates is ``CAST(d1 - d2 AS INT)`` and a month is
the integer ``year(d) * 12 + month(d) - 1``, turned back into a date with ``make_date``; both
dialects accept these unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Mapping
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import duckdb
import polars as pl

SPARK_EXTRA = "allegiance[spark]"
# Frames with more rows reach Spark through a temporary Parquet file instead of driver memory:
# Spark keeps an in-memory (createDataFrame) input on the driver heap, several copies of it while
# planning; 500,000 rows exhausted a 2 GB heap by the third RFM + cohort run, while 50,000-row inputs
# level off near 0.7 GB of live heap (measured with jmap over 16 runs).
STAGE_ROWS = 50_000
_SQL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A string literal, a quoted identifier, a line comment, a block comment, or a `:name` marker
# that is not the second colon of a `::` cast nor glued to a preceding word.
_PARAM_SCAN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|(?<![:\w]):([A-Za-z_]\w*)",
                         re.DOTALL)

ParamValue = int | float | str | bool | date | datetime | None


class EngineUnavailable(RuntimeError):
    """The chosen engine cannot run here (package or Java runtime missing); the message says what to install."""


@runtime_checkable
class Engine(Protocol):
    """Runs one SQL statement over named Polars frames and returns the result as a Polars frame.

    ``sql`` is either the name of a SQL file shipped with this package (``"rfm"`` for ``rfm.sql``)
    or SQL text. ``tables`` maps view names used in the SQL to frames; ``params`` binds ``:name``
    markers. The result keeps the SQL's column order and row order.
    """

    name: str

    def query(self, sql: str, tables: Mapping[str, pl.DataFrame],
              params: Mapping[str, ParamValue] | None = None) -> pl.DataFrame: ...

    def close(self) -> None: ...


def load_sql(name: str) -> str:
    """The text of ``<name>.sql`` shipped next to this module (read with importlib.resources)."""
    resource = resources.files(__package__).joinpath(f"{name}.sql")
    if not resource.is_file():
        raise KeyError(f"no SQL file {name}.sql in {__package__}")
    return resource.read_text(encoding="utf-8")


def resolve_sql(sql: str) -> str:
    """A bare identifier names a shipped SQL file; anything else is SQL text and is returned as is."""
    return load_sql(sql) if _SQL_NAME.match(sql.strip()) else sql


def duckdb_params(sql: str) -> str:
    """Rewrite Spark-style ``:name`` parameter markers to DuckDB's ``$name``.

    Literals, quoted identifiers and comments are copied untouched, so ``'12:30'`` or
    ``-- note:x`` survive, and ``x::INT`` casts are not markers.
    """
    def replace(match: re.Match[str]) -> str:
        return f"${match.group(1)}" if match.group(1) else match.group(0)

    return _PARAM_SCAN.sub(replace, sql)


def _duckdb_arrow(frame: pl.DataFrame) -> Any:
    """The frame as DuckDB should scan it: zone-aware datetimes as naive UTC, newest Arrow layout
    (string views), so DuckDB reads Polars' buffers without a copy."""
    aware = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime) and dtype.time_zone]
    if aware:
        frame = frame.with_columns(pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for c in aware)
    return frame.to_arrow(compat_level=pl.CompatLevel.newest())


def _tag_utc(frame: pl.DataFrame) -> pl.DataFrame:
    naive = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime) and not dtype.time_zone]
    return frame.with_columns(pl.col(c).dt.replace_time_zone("UTC") for c in naive) if naive else frame


class DuckDBEngine:
    """The embedded default. Each query gets a fresh in-memory connection pinned to UTC; the frames
    are registered as Arrow-backed views (no copy; UTC datetimes as naive UTC TIMESTAMPs) and the
    result comes back through Arrow."""

    name = "duckdb"

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads

    def query(self, sql: str, tables: Mapping[str, pl.DataFrame],
              params: Mapping[str, ParamValue] | None = None) -> pl.DataFrame:
        text = duckdb_params(resolve_sql(sql))
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            if self.threads is not None:
                con.execute(f"SET threads = {int(self.threads)}")
            for view, frame in tables.items():
                con.register(view, _duckdb_arrow(frame))
            result = con.sql(text, params=dict(params) if params else None)
            if result is None:
                raise ValueError("the SQL returned no rows: it must be a single query")
            out = pl.from_arrow(result.to_arrow_table())
        finally:
            con.close()
        assert isinstance(out, pl.DataFrame)
        return _tag_utc(out)

    def close(self) -> None:
        """Nothing to release: connections live for one query."""


def java_home() -> str | None:
    """``$JAVA_HOME`` if it holds a ``bin/java``, else the JDK the ``java`` on PATH resolves to
    (``/usr/bin/java`` → ``/usr/lib/jvm/java-17-openjdk-amd64``), else None."""
    env = os.environ.get("JAVA_HOME")
    if env and (Path(env) / "bin" / "java").exists():
        return env
    java = shutil.which("java")
    if java:
        return str(Path(java).resolve().parent.parent)
    return None


def spark_unavailable_reason() -> str | None:
    """Why the Spark engine cannot start here (None when it can): no pyspark, or no Java runtime."""
    if importlib.util.find_spec("pyspark") is None:
        return f"the Spark engine needs pyspark: pip install '{SPARK_EXTRA}'"
    if java_home() is None:
        return (f"the Spark engine needs a Java 17+ runtime (set JAVA_HOME or put `java` on PATH; on Debian: "
                f"apt-get install openjdk-17-jre-headless) besides pip install '{SPARK_EXTRA}'")
    return None


class SparkEngine:
    """Local Apache Spark. The session starts on the first query (``local[2]``, two shuffle
    partitions, no UI, UTC, ANSI mode, adaptive execution off, Arrow transfer on; ``conf``
    overrides; 2 GB driver heap) and is shared by every SparkEngine in the process. Frames become
    temp views: up to ``stage_rows`` rows as an in-memory Arrow table (``createDataFrame``; Spark
    keeps those rows on the driver heap as a local relation), larger ones through a temporary
    Parquet file that Spark scans like any table, so the heap does not bound the input. The result
    comes back with ``toArrow()``.

    Constructing it only checks that pyspark and Java are present (:class:`EngineUnavailable`
    otherwise, naming the ``allegiance[spark]`` extra); importing pyspark waits for the first query.
    """

    name = "spark"
    _lock = threading.Lock()

    def __init__(self, *, master: str = "local[2]", shuffle_partitions: int = 2,
                 conf: Mapping[str, str] | None = None, stage_rows: int = STAGE_ROWS) -> None:
        reason = spark_unavailable_reason()
        if reason:
            raise EngineUnavailable(reason)
        self.master = master
        self.shuffle_partitions = shuffle_partitions
        self.conf = dict(conf or {})
        self.stage_rows = stage_rows
        self._session: Any = None

    @property
    def session(self) -> Any:
        """The SparkSession, started on first use."""
        with self._lock:
            if self._session is None:
                self._session = self._start()
            return self._session

    def _start(self) -> Any:
        home = java_home()
        if home and not os.environ.get("JAVA_HOME"):
            os.environ["JAVA_HOME"] = home
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode: stay on loopback
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # find_spec saw it, the import still failed (broken install)
            raise EngineUnavailable(f"pyspark failed to import ({exc}): pip install '{SPARK_EXTRA}'") from exc
        settings = {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.default.parallelism": str(self.shuffle_partitions),
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.sql.ansi.enabled": "true",
            # Adaptive execution re-plans between stages: worth it on a cluster, 2-3x slower on the
            # small local inputs this engine is for (measured on the cohort query). Pass conf to undo.
            "spark.sql.adaptive.enabled": "false",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
            # Heap for the local relations of in-memory inputs and the results (the JVM's 1 GB default
            # ran out at 500,000 input rows; an out-of-memory error there hangs the Arrow transfer).
            "spark.driver.memory": "2g",
            **self.conf,
        }
        builder = SparkSession.builder.master(self.master).appName("allegiance-analytics")
        for key, value in settings.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:
            raise EngineUnavailable(f"Spark failed to start ({type(exc).__name__}: {exc}); "
                                    f"check the Java runtime and pip install '{SPARK_EXTRA}'") from exc
        session.sparkContext.setLogLevel("ERROR")
        # getOrCreate may hand back a session someone else started: pin what the SQL relies on.
        session.conf.set("spark.sql.session.timeZone", "UTC")
        session.conf.set("spark.sql.ansi.enabled", "true")
        return session

    def query(self, sql: str, tables: Mapping[str, pl.DataFrame],
              params: Mapping[str, ParamValue] | None = None) -> pl.DataFrame:
        text = resolve_sql(sql)
        spark = self.session
        with tempfile.TemporaryDirectory(prefix="allegiance-spark-") as staging:
            try:
                for view, frame in tables.items():
                    if frame.height > self.stage_rows:
                        path = str(Path(staging) / f"{view}.parquet")
                        frame.write_parquet(path)
                        source = spark.read.parquet(path)
                    else:
                        source = spark.createDataFrame(frame.to_arrow())
                    source.createOrReplaceTempView(view)
                result = spark.sql(text, args=dict(params) if params else None).toArrow()
            finally:
                for view in tables:
                    spark.catalog.dropTempView(view)
        out = pl.from_arrow(result)
        assert isinstance(out, pl.DataFrame)
        return out

    def close(self) -> None:
        """Stop the shared SparkSession (the next query starts a new one)."""
        with self._lock:
            if self._session is not None:
                self._session.stop()
                self._session = None


def get_engine(name: str | Engine = "duckdb") -> Engine:
    """``"duckdb"`` (default) or ``"spark"``; an Engine instance is returned unchanged.

    Raises :class:`EngineUnavailable` for Spark when pyspark or Java is missing, ValueError for an
    unknown name.
    """
    if not isinstance(name, str):
        return name
    key = name.strip().lower()
    if key == "duckdb":
        return DuckDBEngine()
    if key == "spark":
        return SparkEngine()
    raise ValueError(f"unknown SQL engine {name!r}: choose 'duckdb' or 'spark'")
