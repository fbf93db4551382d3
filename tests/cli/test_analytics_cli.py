"""``allegiance analytics`` through the real CLI entry point, on one demo program loaded once per
module (SQLite): the run table, live results equal to the stored snapshots, every output format
equal to the service's own documents, the evaluations side by side with their baselines, and bad
input (dates, kinds, files, segment fields) exiting 2 with the field named."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from allegiance.analytics import report
from allegiance.bootstrap import Allegiance, build
from allegiance.cli.analytics import job as cli_analytics_job
from allegiance.cli.main import app
from allegiance.demo.loader import load_demo
from tests.conftest import TEST_SECRET, ProgramFixture, make_settings

runner = CliRunner()


@dataclass
class Demo:
    app: Allegiance
    env: dict[str, str]
    program_id: int
    as_of: str
    run_output: str

    def invoke(self, *args: str) -> Any:
        return runner.invoke(app, ["analytics", *args], env=self.env)

    def latest(self, kind: str) -> dict[str, Any]:
        with self.app.read() as uow:
            return uow.analytics.latest(self.program_id, kind)["document"]


def _env(url: str) -> dict[str, str]:
    return {"ALLEGIANCE_DATABASE_URL": url, "ALLEGIANCE_ENVIRONMENT": "test", "ALLEGIANCE_SECRET_KEY": TEST_SECRET}


@pytest.fixture(scope="module")
def demo(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    path = tmp_path_factory.mktemp("analytics-cli") / "allegiance.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    application = build(make_settings(url))
    summary = load_demo(application, seed=3, organizations=60, months=24)
    env = _env(url)
    ran = runner.invoke(app, ["analytics", "run", "demo"], env=env)
    assert ran.exit_code == 0, ran.output
    with application.read() as uow:
        as_of = str(uow.analytics.latest(summary.program_id, "overview")["as_of"])
    yield Demo(application, env, summary.program_id, as_of, ran.output)
    application.close()


def test_run_prints_every_kind_with_its_size_and_stores_it(demo: Demo) -> None:
    for kind in report.KINDS:
        line = next(line for line in demo.run_output.splitlines() if f"│ {kind} " in line)
        assert "stored" in line, line
        document = demo.latest(kind)
        if "rows" in document:
            assert f"{len(document['rows']):,} rows" in line
    assert f"analytics as of {demo.as_of}: {len(report.KINDS)} results stored in" in demo.run_output
    with demo.app.read() as uow:
        assert all(str(uow.analytics.latest(demo.program_id, k)["as_of"]) == demo.as_of for k in report.KINDS)


def test_a_run_says_why_a_kind_is_skipped_and_still_exits_0(program: ProgramFixture, db_url: str) -> None:
    result = runner.invoke(app, ["analytics", "run", program.slug, "--only", "overview,clv", "--only", "churn"],
                           env=_env(db_url))
    assert result.exit_code == 0, result.output
    assert "skipped: lifetime value" in result.output and "skipped: churn" in result.output
    assert "│ overview " in result.output and "│ rfm " not in result.output  # only what was asked for
    assert "1 result stored" in result.output and "skipped clv (" in result.output


@pytest.mark.parametrize("command", [["metrics"], ["cohorts"], ["rfm"], ["clv"], ["health"], ["churn", "score"],
                                     ["churn", "evaluate"], ["recommend", "list"]])
def test_live_results_equal_the_stored_snapshot(demo: Demo, command: list[str]) -> None:
    live = demo.invoke(*command, "demo", "--as-of", demo.as_of, "--format", "json")
    stored = demo.invoke(*command, "demo", "--stored", "--format", "json")
    assert live.exit_code == 0 and stored.exit_code == 0, live.output + stored.output
    assert json.loads(live.stdout) == json.loads(stored.stdout)
    assert json.loads(live.stdout)  # not trivially equal: there are rows


def _csv_matches(text: str, rows: list[dict[str, Any]]) -> None:
    parsed = list(csv.DictReader(text.splitlines()))
    assert len(parsed) == len(rows)
    for got, want in zip(parsed, rows, strict=True):
        assert list(got) == list(want)
        for key, value in want.items():
            if value is None:
                assert got[key] == "", key
            elif isinstance(value, bool):
                assert got[key] == str(value).lower(), key
            elif isinstance(value, list):
                assert got[key] == "; ".join(str(v) for v in value), key
            elif isinstance(value, int | float):
                assert float(got[key]) == pytest.approx(value, rel=1e-12), key
            else:
                assert got[key] == str(value), key


def _expected_rows(demo: Demo, kind: str) -> list[dict[str, Any]]:
    document = demo.latest(kind)
    if kind == "churn":
        return sorted(document["rows"], key=lambda r: (-r["p_churn"], r["org"]))
    return list(document["rows"])


@pytest.mark.parametrize(("command", "kind"), [(["rfm"], "rfm"), (["churn", "score"], "churn"),
                                               (["health"], "health"), (["clv"], "clv"), (["cohorts"], "cohorts"),
                                               (["recommend", "list"], "recommendations")])
def test_every_format_writes_the_rows_of_the_stored_document(demo: Demo, tmp_path: Path, command: list[str],
                                                             kind: str) -> None:
    expected = _expected_rows(demo, kind)
    as_json = demo.invoke(*command, "demo", "--stored", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == expected

    as_csv = demo.invoke(*command, "demo", "--stored", "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    _csv_matches(as_csv.stdout, expected)

    target = tmp_path / f"{kind}.parquet"
    as_parquet = demo.invoke(*command, "demo", "--stored", "--format", "parquet", "--output", str(target))
    assert as_parquet.exit_code == 0, as_parquet.output
    assert f"wrote {len(expected):,} rows" in as_parquet.output
    assert pl.read_parquet(target).to_dicts() == expected

    by_suffix = tmp_path / f"{kind}.csv"  # a table format with --output takes the file's suffix
    assert demo.invoke(*command, "demo", "--stored", "--output", str(by_suffix)).exit_code == 0
    _csv_matches(by_suffix.read_text(), expected)


def test_churn_reasons_are_joined_in_csv_and_top_limits_the_rows(demo: Demo) -> None:
    expected = _expected_rows(demo, "churn")[:3]
    result = demo.invoke("churn", "score", "demo", "--stored", "--top", "3", "--format", "csv")
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert [r["org"] for r in rows] == [r["org"] for r in expected]
    assert rows[0]["reason_texts"] == "; ".join(expected[0]["reason_texts"])
    table = demo.invoke("churn", "score", "demo", "--stored", "--top", "3")
    assert table.exit_code == 0
    line = next(line for line in table.output.splitlines() if line.startswith(f"│ {expected[0]['org']} "))
    assert f"{expected[0]['p_churn']:.3f}" in line  # the row's first line, however narrow the terminal
    assert "3 of " in table.output


def test_metrics_headlines_carry_the_overview_numbers(demo: Demo) -> None:
    overview = demo.latest("overview")
    result = demo.invoke("metrics", "demo", "--stored", "--format", "json")
    values = {row["metric"]: row["value"] for row in json.loads(result.stdout)}
    retention = overview["revenue_retention"]
    assert values["repeat_customer_rate"] == overview["repeat_customer_rate"]["repeat_rate"]
    assert values["purchase_frequency"] == overview["purchase_frequency"]["frequency"]
    assert values["average_order_value_minor"] == overview["average_order_value"]["aov_minor"]
    assert (values["gross_revenue_retention"], values["net_revenue_retention"]) == (retention["grr"],
                                                                                    retention["nrr"])
    assert values["net_negative_churn"] == float(retention["net_negative_churn"])
    assert values["churn_rate_last_quarter"] == overview["churn_by_quarter"][-1]["churn_rate"]
    overall = overview["participation"]["overall"][0]
    assert [values[f"participation_{k}"] for k in ("enrolled", "active", "redeeming")] == [
        overall["enrolled"], overall["active"], overall["redeeming"]]
    assert (values["nps"], values["nps_ci_low"], values["nps_ci_high"]) == tuple(
        overview["nps"][k] for k in ("score", "ci_low", "ci_high"))
    assert values["retention_gain_value_minor"] == overview["retention_gain"]["total_uplift_minor"]
    assert values["program_roi"] == overview["program_roi"].get("roi")
    table = demo.invoke("metrics", "demo", "--stored")
    assert f"{overview['nps']['score']:.1f} (CI {overview['nps']['ci_low']:.1f}" in table.output
    assert overview["program_roi"]["status"] in table.output


def test_churn_evaluate_prints_the_model_and_the_baseline(demo: Demo) -> None:
    with demo.app.read() as uow:
        expected = uow.analytics.evaluate_churn(demo.program_id)
    result = demo.invoke("churn", "evaluate", "demo")
    assert result.exit_code == 0, result.output
    auc_line = next(line for line in result.output.splitlines() if "│ AUC " in line)
    assert f"{expected['model']['auc']:.3f}" in auc_line
    assert f"{expected['baseline_logistic_regression']['auc']:.3f}" in auc_line
    assert "logistic regression" in result.output and "reliability" in result.output
    first_bin = expected["model"]["reliability"][0]
    assert f"{first_bin['lower']:.1f}–{first_bin['upper']:.1f}" in result.output
    as_json = json.loads(demo.invoke("churn", "evaluate", "demo", "--format", "json").stdout)
    assert [r["method"] for r in as_json] == ["model", "baseline_logistic_regression"]
    assert [r["auc"] for r in as_json] == [expected["model"]["auc"], expected["baseline_logistic_regression"]["auc"]]
    assert as_json[1]["brier"] == expected["baseline_logistic_regression"]["brier"]


def test_recommend_evaluate_prints_hit_rates_of_the_three_methods(demo: Demo) -> None:
    with demo.app.read() as uow:
        expected = uow.analytics.evaluate_recommendations(demo.program_id, overrides={"recommend_level": "category",
                                                                                      "recommend_k": 3})
    result = demo.invoke("recommend", "evaluate", "demo", "--level", "category", "--k", "3")
    assert result.exit_code == 0, result.output
    for method in ("model", "global_popularity", "segment_popularity"):
        line = next(line for line in result.output.splitlines() if line.startswith(f"│ {method.split('_')[0]} "))
        hits = expected["methods"][method]["hit"]
        assert f"{hits['1'] * 100:.1f} %" in line and f"{hits['3'] * 100:.1f} %" in line
    rows = json.loads(demo.invoke("recommend", "evaluate", "demo", "--level", "category", "--k", "3",
                                  "--format", "json").stdout)
    by_method = {r["method"]: r for r in rows}
    assert set(by_method) == {"model", "global_popularity", "segment_popularity"}
    assert by_method["model"]["hit_at_3"] == expected["methods"]["model"]["hit"]["3"]
    assert by_method["segment_popularity"]["recall"] == expected["methods"]["segment_popularity"]["recall"]
    assert by_method["global_popularity"]["model_ratio_at_3"] == expected["ratio_vs_global"]["3"]
    assert by_method["segment_popularity"]["model_ratio_at_1"] == expected["ratio_vs_segment"]["1"]


def test_recommend_list_for_one_organization(demo: Demo) -> None:
    document = demo.latest("recommendations")
    org = document["rows"][0]["org"]
    rows = json.loads(demo.invoke("recommend", "list", "demo", "--stored", "--org", org, "--format", "json").stdout)
    assert rows == [r for r in document["rows"] if r["org"] == org] and rows
    unknown = demo.invoke("recommend", "list", "demo", "--stored", "--org", "NOBODY")
    assert unknown.exit_code == 2 and "--org" in unknown.output
    other_k = demo.invoke("recommend", "list", "demo", "--stored", "--k", "2")
    assert other_k.exit_code == 2 and "--k" in other_k.output  # the stored result was made with k=5


def test_clv_options_change_the_live_result(demo: Demo) -> None:
    rows = json.loads(demo.invoke("clv", "demo", "--model", "paretonbd", "--horizon-days", "180",
                                  "--format", "json").stdout)
    assert {r["model"] for r in rows} == {"paretonbd"}
    assert demo.invoke("clv", "demo", "--horizon-days", "5").exit_code == 2


def test_organization_shows_everything_the_latest_run_knows(demo: Demo) -> None:
    churn = demo.latest("churn")["rows"][0]
    org = churn["org"]
    with demo.app.read() as uow:
        expected = json.loads(json.dumps(uow.analytics.organization(demo.program_id, org), default=str))
    as_json = demo.invoke("organization", "demo", org, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == expected
    assert expected["health"] and expected["clv"] and expected["rfm"] and expected["recommendations"]
    panels = demo.invoke("organization", "demo", org)
    assert panels.exit_code == 0, panels.output
    for title in ("facts", "churn risk", "health (contributions)", "lifetime value", "RFM", "recommendations"):
        assert f"─ {title} ─" in panels.output, title
    assert churn["reason_texts"][0] in panels.output and f"{churn['p_churn']:.3f}" in panels.output
    unknown = demo.invoke("organization", "demo", "NOBODY")
    assert unknown.exit_code == 2 and "NOBODY" in unknown.output


SEGMENTS = """\
segments:
  - code: risky
    name: Ordering less
    conditions:
      - field: churn_risk
        op: gte
        value: 0.1
  - code: buyers
    name: Purchasing managers
    conditions:
      - field: roles
        op: contains
        value: purchasing_manager
"""


def test_segments_apply_list_and_members(demo: Demo, tmp_path: Path) -> None:
    file = tmp_path / "segments.yaml"
    file.write_text(SEGMENTS)
    applied = demo.invoke("segments", "apply", "demo", str(file))
    assert applied.exit_code == 0, applied.output
    with demo.app.read() as uow:
        members = {code: [r["org"] for r in uow.analytics.segment_members(demo.program_id, code)["organizations"]]
                   for code in ("risky", "buyers")}
    assert members["risky"] and members["buyers"]
    assert f"risky {len(members['risky'])}" in applied.output
    listed = json.loads(demo.invoke("segments", "list", "demo", "--format", "json").stdout)
    assert [(r["code"], r["members"]) for r in listed] == [(c, len(m)) for c, m in members.items()]
    assert listed[0]["conditions"] == ["churn_risk gte 0.1"]
    table = demo.invoke("segments", "list", "demo")
    assert "roles contains \"purchasing_manager\"" in table.output
    rows = json.loads(demo.invoke("segments", "members", "demo", "risky", "--format", "json").stdout)
    assert [r["org"] for r in rows] == members["risky"]
    assert all(r["churn_risk"] >= 0.1 for r in rows)
    target = tmp_path / "risky.csv"
    assert demo.invoke("segments", "members", "demo", "risky", "--output", str(target)).exit_code == 0
    assert [r["org"] for r in csv.DictReader(target.read_text().splitlines())] == members["risky"]
    missing = demo.invoke("segments", "members", "demo", "nope")
    assert missing.exit_code == 2 and "nope" in missing.output


def test_an_unknown_segment_field_exits_2_naming_the_field_and_line(demo: Demo, tmp_path: Path) -> None:
    file = tmp_path / "segments.yaml"
    file.write_text(SEGMENTS.replace("field: roles", "field: mood"))
    result = demo.invoke("segments", "apply", "demo", str(file))
    assert result.exit_code == 2
    assert "segments.yaml:11:" in result.output  # the line of `field: mood`
    assert "segments.segments[1].conditions[0].field" in result.output and "unknown field" in result.output


@pytest.mark.parametrize(("args", "named"), [
    (["run", "demo", "--as-of", "2026-02-30"], "--as-of"),
    (["metrics", "demo", "--as-of", "yesterday"], "--as-of"),
    (["rfm", "demo", "--as-of", "2999-01-01"], "as_of"),
    (["run", "demo", "--only", "overview,nonsense"], "--only"),
    (["run", "demo", "--engine", "hadoop"], "--engine"),
    (["rfm", "demo", "--format", "parquet"], "--output"),
    (["rfm", "demo", "--output", "rows.txt"], "--output"),
    (["clv", "demo", "--stored", "--model", "paretonbd"], "--model"),
    (["rfm", "no-such-program"], "no-such-program"),
])
def test_bad_input_exits_2_naming_what_is_wrong(demo: Demo, args: list[str], named: str) -> None:
    result = demo.invoke(*args)
    assert result.exit_code == 2, result.output
    assert named in result.output


def test_an_unavailable_engine_exits_2(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_analytics_job, "spark_unavailable_reason", lambda: "the Spark engine needs pyspark")
    result = demo.invoke("run", "demo", "--engine", "spark")
    assert result.exit_code == 2 and "needs pyspark" in result.output


def test_settings_show_apply_and_a_bad_file(allegiance: Allegiance, program: ProgramFixture, db_url: str,
                                            tmp_path: Path) -> None:
    env = _env(db_url)
    shown = runner.invoke(app, ["analytics", "settings", "show", program.slug], env=env)
    assert shown.exit_code == 0 and "version 0" in shown.stdout
    file = tmp_path / "settings.yaml"
    file.write_text(shown.stdout.replace("churn_horizon_days: 90", "churn_horizon_days: 60"))
    applied = runner.invoke(app, ["analytics", "settings", "apply", program.slug, str(file)], env=env)
    assert applied.exit_code == 0, applied.output
    with allegiance.read() as uow:
        assert uow.analytics.settings_document(program.id)["version"] == 1
        assert uow.analytics.settings(program.id).churn_horizon_days == 60
    again = json.loads(runner.invoke(app, ["analytics", "settings", "show", program.slug, "--json"], env=env).stdout)
    assert again["churn_horizon_days"] == 60

    file.write_text("margin: 0.3\nhealth:\n  weights:\n    mood: 1\n")
    bad = runner.invoke(app, ["analytics", "settings", "apply", program.slug, str(file)], env=env)
    assert bad.exit_code == 2
    assert "settings.yaml:4" in bad.output and "health.weights" in bad.output
    file.write_text("margin: 0.3\nchurn_horizon: 30\n")
    unknown = runner.invoke(app, ["analytics", "settings", "apply", program.slug, str(file)], env=env)
    assert unknown.exit_code == 2 and "settings.yaml:2: churn_horizon:" in unknown.output
    file.write_text("margin: [0.3\n")
    broken = runner.invoke(app, ["analytics", "settings", "apply", program.slug, str(file)], env=env)
    assert broken.exit_code == 2 and "line" in broken.output
    with allegiance.read() as uow:
        assert uow.analytics.settings_document(program.id)["version"] == 1  # nothing saved by the bad files


def test_the_demo_command_runs_analytics_once(allegiance: Allegiance, db_url: str) -> None:
    env = _env(db_url)
    first = runner.invoke(app, ["demo", "--organizations", "60", "--seed", "3"], env=env)
    assert first.exit_code == 0, first.output
    line = next(line for line in first.output.splitlines() if line.startswith("analytics as of "))
    with allegiance.read() as uow:
        program = uow.program_store.program_by_slug("demo")
        assert program is not None
        stored = uow.analytics.latest(program["id"], "overview")
    assert line.startswith(f"analytics as of {stored['as_of']}:")
    second = runner.invoke(app, ["demo", "--organizations", "60", "--seed", "3"], env=env)
    assert second.exit_code == 0 and "already loaded" in second.output
    assert "analytics as of" not in second.output  # a snapshot exists: not run again
