"""``analytics settings`` and ``analytics segments``: versioned settings and segment definitions kept
as YAML or JSON files; a bad file exits 2 naming the field and its line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from allegiance.cli.analytics.common import (
    Format,
    FormatOpt,
    OutputOpt,
    ProgramArg,
    resolve_format,
    rich_table,
    segments_app,
    settings_app,
    write_rows,
)
from allegiance.cli.common import application, console, fail, guarded, program_id_for
from allegiance.cli.rules import line_of, load_document
from allegiance.kernel.errors import AllegianceError, NotFound


# -- settings and segments as files ------------------------------------------------------------------
def _fail_on(path: Path, text: str, exc: AllegianceError, prefix: str = "") -> None:
    """Exit 2 naming the field path and, when it can be found in the file, its line."""
    field = exc.field or ""
    line = line_of(text, field.removeprefix(prefix)) if field else None
    where = f"{path}:{line}" if line else str(path)
    message = exc.message.removeprefix(f"{field}: ") if field else exc.message
    fail(f"{where}: {field}: {message}" if field else f"{where}: {message}")


def _mapping(document: Any, file: Path) -> dict[str, Any]:
    if not isinstance(document, dict):
        fail(f"{file}: expected a mapping (key: value lines) at the top, not {type(document).__name__}")
        raise AssertionError("unreachable")
    return document


@settings_app.command("show")
def settings_show(program: ProgramArg,
                  as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML")] = False) -> None:
    """The settings in force (every field, defaults filled in), ready to edit and apply."""
    with application() as app:
        program_id = program_id_for(app, program)
        with app.read() as uow:
            found = uow.analytics.settings_document(program_id)
    if as_json:
        print(json.dumps(found["settings"], indent=2))
        return
    print(f"# analytics settings of {program}, version {found['version']} (0: the defaults)")
    print(yaml.safe_dump(found["settings"], sort_keys=False, allow_unicode=True), end="")


@settings_app.command("apply")
def settings_apply(program: ProgramArg,
                   file: Annotated[Path, typer.Argument(help="Settings as YAML or JSON (see `settings show`)",
                                                        exists=True, dir_okay=False, readable=True)]) -> None:
    """Validate and save the file as the next version; the next run (and live results) use it."""
    document, text = load_document(file)
    document = _mapping(document, file)
    with application() as app:
        program_id = program_id_for(app, program)
        try:
            with app.write() as uow:
                saved = uow.analytics.save_settings(program_id, document, by="cli")
        except AllegianceError as exc:
            _fail_on(file, text, exc)
            raise
    console.print(f"analytics settings version [bold]{saved['version']}[/bold] saved")


@segments_app.command("apply")
def segments_apply(program: ProgramArg,
                   file: Annotated[Path, typer.Argument(help="Segments as YAML or JSON: segments: [{code, name, "
                                                        "conditions: [{field, op, value}]}]", exists=True,
                                                        dir_okay=False, readable=True)]) -> None:
    """Validate and save the definitions; membership is recomputed at once when a run exists."""
    document, text = load_document(file)
    document = _mapping(document, file)
    with application() as app:
        program_id = program_id_for(app, program)
        try:
            with app.write() as uow:
                saved = uow.analytics.save_segments(program_id, document, by="cli")
        except AllegianceError as exc:
            _fail_on(file, text, exc, prefix="segments.")
            raise
    members = saved["members"]
    counts = ", ".join(f"{code} {count:,}" for code, count in members.items()) if members else \
        "membership follows with the first `allegiance analytics run`"
    console.print(f"segments version [bold]{saved['version']}[/bold] saved ({len(saved['segments'])} segments): "
                  f"{counts}", soft_wrap=True)


def _condition(condition: Mapping[str, Any]) -> str:
    value = condition.get("value")
    shown = "" if value is None and condition["op"] == "exists" else f" {json.dumps(value)}"
    return f"{condition['field']} {condition['op']}{shown}"


@segments_app.command("list")
def segments_list(program: ProgramArg, output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """The saved segments with their conditions and how many organizations the latest facts put in each."""
    chosen = resolve_format(output_format, output)
    with application() as app:
        program_id = program_id_for(app, program)
        with app.read() as uow:
            version, segments = uow.analytics.segments(program_id)
            rows: list[dict[str, Any]] = []
            for segment in segments.segments:
                try:
                    count: int | None = len(uow.analytics.segment_members(program_id, segment.code)["organizations"])
                except NotFound:
                    count = None
                rows.append({"code": segment.code, "name": segment.name,
                             "conditions": [_condition(c.model_dump(mode="json")) for c in segment.conditions],
                             "members": count})
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    if not rows:
        console.print("no segments yet: `allegiance analytics segments apply PROGRAM FILE`")
        return
    table = Table("code", "name", "conditions (all must hold)", "members", title=f"segments version {version}",
                  title_justify="left")
    for row in rows:
        table.add_row(row["code"], row["name"], "\n".join(row["conditions"]) or "(every organization)",
                      "no run yet" if row["members"] is None else f"{row['members']:,}")
    console.print(table)


@segments_app.command("members")
def segments_members(program: ProgramArg, code: Annotated[str, typer.Argument(help="The segment's code")],
                     output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """The organizations the latest facts put in a segment, with those facts."""
    chosen = resolve_format(output_format, output)
    with application() as app:
        program_id = program_id_for(app, program)
        with app.read() as uow:
            found = guarded(lambda: uow.analytics.segment_members(program_id, code))
    rows = found["organizations"]
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(f"segment [bold]{code}[/bold]: {len(rows):,} organizations (facts as of {found['as_of']})")
    console.print(rich_table(rows, [("org", "organization"), ("kind", "kind"), ("tier", "tier"),
                                ("rfm_segment", "RFM"), ("churn_risk", "p(churn)"), ("health_score", "health"),
                                ("clv", "CLV"), ("revenue_12m", "revenue 12m"), ("roles", "roles")]))
