from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from allegiance.cli.main import app

runner = CliRunner()


def test_synth_writes_parquet_and_jsonl_at_the_requested_scale(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--orgs", "12", "--months", "4", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    organizations = pq.read_table(tmp_path / "organizations.parquet")
    assert organizations.num_rows == 12 + 12 + 1  # customers, default dealers, the distributor
    events = pq.read_table(tmp_path / "events.parquet").num_rows
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert events == len(lines) > 0


def test_synth_refuses_an_unknown_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--orgs", "3", "--out", str(tmp_path), "--formats", "xml"])
    assert result.exit_code == 2
    assert "xml" in result.output
