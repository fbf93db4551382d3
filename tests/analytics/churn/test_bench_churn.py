"""The churn benchmark's pieces: its numpy frames are valid frames, its per-organization loop
baseline computes exactly what `churn_features` computes (an independent check of the vectorized
code), and a toy run reports figures. No timing is asserted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from bench.bench_churn import CUTOFF, _same, build_frames, loop_features, prepare_loop, run
from bench.common import Context

from allegiance.analytics.churn.features import churn_features
from allegiance.analytics.frames import SCHEMAS, Frames, from_synthetic
from allegiance.synthetic import SynthConfig, generate

from .test_features import CUTOFF as EXAMPLE_CUTOFF
from .test_features import example


@pytest.fixture(scope="module")
def frames() -> Frames:
    return build_frames(1_500, seed=3)


def test_the_bench_frames_have_the_declared_schemas(frames: Frames) -> None:
    for name, schema in SCHEMAS.items():
        assert dict(getattr(frames, name).schema) == schema, name
    assert frames.orders.height > 20_000 and frames.responses.height > 1_000
    assert frames.organizations.filter(pl.col("left_on").is_not_null()).height > 100


@pytest.mark.parametrize("which", ["bench", "hand example", "synthetic program"])
def test_the_loop_baseline_equals_the_vectorized_features(frames: Frames, which: str) -> None:
    data, cutoff = {
        "bench": (frames, CUTOFF),
        "hand example": (example(), EXAMPLE_CUTOFF),
        "synthetic program": (from_synthetic(generate(SynthConfig(seed=4, organizations=300))), dt.date(2025, 3, 1)),
    }[which]
    features = churn_features(data, cutoff)
    orgs = data.organizations["org"].to_list()
    loop = loop_features(prepare_loop(data, orgs), cutoff)
    assert len(loop) == features.height > 0
    assert _same(loop, features)
    # and the comparison is strict enough to notice a difference
    assert not _same(loop, features.with_columns(pl.col("nps_trend").fill_null(0.0) + 0.5))


def test_a_toy_run_reports_its_figures(tmp_path: Path) -> None:
    result = run(Context(workdir=tmp_path, mode="toy")).as_dict()
    assert len(result["figures"]) == 3
    for figure in result["figures"]:
        assert figure["value"] > 0 and figure["baseline"] > 0 and figure["met"] in (True, False, None)
    assert result["details"]["loop_matches"] and result["details"]["scored_rows"] > 1_000
