"""``allegiance rules``: keep a program's earning rules in a YAML/JSON file, apply, activate, list.

A bad file exits with code 2 naming the field path *and the line* it is on, so the fix is one
jump away in an editor.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from allegiance.cli.common import application, console, err, fail, guarded, program_id_for
from allegiance.kernel.errors import AllegianceError
from allegiance.storage.backtest_feed import PARALLEL_MIN_EVENTS, FeedFailed, evaluated_in_child

rules_app = typer.Typer(help="Earning rules as data: apply a YAML/JSON file, activate a version, list, "
                             "backtest a draft, release pending awards.", no_args_is_help=True)
STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def load_document(path: Path) -> tuple[Any, str]:
    text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text), text
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        fail(f"{path}{where}: not valid YAML/JSON: {getattr(exc, 'problem', exc)}")
        raise


def line_of(text: str, field: str | None) -> int | None:
    """The 1-based line of the node a field path (``rules[2].action.percent``) points at; the
    deepest existing ancestor when the field itself is absent (a missing key)."""
    if not field:
        return None
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for name, index in STEP.findall(field):
        if index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
            line = node.start_mark.line + 1
        elif name and isinstance(node, yaml.MappingNode):
            match = next((pair for pair in node.value if getattr(pair[0], "value", None) == name), None)
            if match is None:
                break
            key_node, node = match
            line = key_node.start_mark.line + 1
        else:
            break
    return line


def _fail_on(path: Path, text: str, exc: AllegianceError) -> None:
    line = line_of(text, exc.field)
    where = f"{path}:{line}" if line else str(path)
    fail(f"{where}: {exc}")


@rules_app.command("apply")
def apply_file(
    program: Annotated[str, typer.Argument(help="The program's slug")],
    file: Annotated[Path, typer.Argument(help="Rule set as YAML or JSON (see GET /api/v1/rules/schema)",
                                         exists=True, dir_okay=False, readable=True)],
    activate: Annotated[bool, typer.Option(help="Activate the saved version at once")] = False,
    note: Annotated[str, typer.Option(help="Why this version (kept in its history)")] = "",
) -> None:
    """Validate and save the file as a new version (a draft unless --activate)."""
    document, text = load_document(file)
    with application() as app:
        program_id = program_id_for(app, program)
        try:
            with app.write() as uow:
                saved = uow.rules.save(program_id, document, by="cli", note=note or f"from {file.name}")
                if activate:
                    saved = uow.rules.activate(program_id, saved["version"], by="cli")
        except AllegianceError as exc:
            _fail_on(file, text, exc)
            raise
    console.print(f"rule set version [bold]{saved['version']}[/bold] saved ({saved['status']}), "
                  f"{len(saved['document'].get('rules', []))} rules")


@rules_app.command("activate")
def activate_version(
    program: Annotated[str, typer.Argument(help="The program's slug")],
    version: Annotated[int, typer.Argument(help="Version to put live")],
) -> None:
    """Put a saved version live (the previous active version is retired; history is kept)."""
    with application() as app:
        program_id = program_id_for(app, program)

        def run() -> dict[str, Any]:
            with app.write() as uow:
                return uow.rules.activate(program_id, version, by="cli")

        guarded(run)
    console.print(f"version [bold]{version}[/bold] is active")


@rules_app.command("list")
def list_versions(program: Annotated[str, typer.Argument(help="The program's slug")]) -> None:
    """Every saved version: status, who saved and activated it, and when."""
    with application() as app:
        program_id = program_id_for(app, program)
        with app.read() as uow:
            rows = uow.rule_store.versions(program_id)
    table = Table("version", "status", "note", "saved by", "saved at", "activated at")
    for row in rows:
        table.add_row(str(row["version"]), row["status"], row["note"], row["created_by"],
                      f"{row['created_at']:%Y-%m-%d %H:%M}",
                      f"{row['activated_at']:%Y-%m-%d %H:%M}" if row["activated_at"] else "")
    console.print(table)


@rules_app.command("show")
def show_version(
    program: Annotated[str, typer.Argument(help="The program's slug")],
    version: Annotated[int | None, typer.Argument(help="Version (default: the active one)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML")] = False,
) -> None:
    """Print a version's rule set (YAML by default, ready to edit and apply again)."""
    with application() as app:
        program_id = program_id_for(app, program)
        with app.read() as uow:
            if version is None:
                compiled = uow.rule_store.active(program_id)
                if compiled is None:
                    fail("no active rule set")
                    return
                version = compiled.version
            row = uow.rule_store.version(program_id, version)
    if row is None:
        fail(f"rule set version {version} not found")
        return
    if as_json:
        print(json.dumps(row["document"], indent=2))
    else:
        print(yaml.safe_dump(row["document"], sort_keys=False, allow_unicode=True), end="")


@rules_app.command("release-due")
def release_due() -> None:
    """Release pending awards whose date has come (idempotent; run it from cron)."""
    with application() as app:
        total = 0
        while True:
            with app.write() as uow:
                released = uow.rules.release_due()
            total += released
            if released == 0:
                break
    err.print(f"released {total} pending awards")


@rules_app.command("close-contest")
def close_contest(
    program: Annotated[str, typer.Argument(help="The program's slug")],
    code: Annotated[str, typer.Argument(help="Contest code in the active rule set")],
    period: Annotated[str, typer.Argument(help="A finished period: 2026-Q1, 2026-05, 2026-W07 or 2026")],
) -> None:
    """Grant a finished period's prizes to its top N (exactly once) and print the ranking."""
    with application() as app:
        program_id = program_id_for(app, program)

        def run() -> dict[str, Any]:
            with app.write() as uow:
                return uow.contests.close(program_id, code, period, by="cli")

        result = guarded(run)
    table = Table("rank", "organization", "score", "prize")
    for row in result["ranking"]:
        table.add_row(str(row["rank"]), str(row["organization_id"]), f"{row['score']:,}",
                      "yes" if row["organization_id"] in result["winners"] else "")
    console.print(table)


def _instant(value: str, name: str) -> datetime:
    """A ``--from``/``--to`` value: an ISO instant (UTC if no offset) or a day, UTC — a ``--to`` day
    is included (the period runs to the next midnight)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--{name}: not a date or ISO date-time: {value!r}")
        raise
    if name == "to" and len(value) == 10:
        parsed += timedelta(days=1)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@rules_app.command("simulate")
def simulate(
    program: Annotated[str, typer.Argument(help="The program's slug")],
    file: Annotated[Path | None, typer.Argument(help="Draft rule set as YAML or JSON", exists=True,
                                                dir_okay=False, readable=True)] = None,
    version: Annotated[int | None, typer.Option(help="A saved version instead of a file")] = None,
    start: Annotated[str, typer.Option("--from", help="First day replayed (YYYY-MM-DD, UTC) or ISO instant")] = "",
    end: Annotated[str, typer.Option("--to", help="Last day replayed (included), or an ISO instant (excluded)")] = "",
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    parallel: Annotated[bool | None, typer.Option(
        "--parallel/--no-parallel", help="Evaluate in a second process while this one settles (default: "
                                         f"when {PARALLEL_MIN_EVENTS:,} events or more are replayed)")] = None,
) -> None:
    """Backtest a draft: replay the stored events of [--from, --to) through it, writing nothing, and
    report what it would have issued, the liability, who it reaches, caps hit and idle rules."""
    if (file is None) == (version is None):
        fail("give a FILE or --version N (one of them)")
    if not start or not end:
        fail("--from and --to are required")
    if output not in ("table", "json"):
        fail("--format must be table or json")
    begin, finish = _instant(start, "from"), _instant(end, "to")
    text = ""
    target: Any = version
    if file is not None:
        target, text = load_document(file)
    with application() as app:
        program_id = program_id_for(app, program)
        try:
            with app.read() as uow:
                draft = uow.rules.draft(program_id, target, begin, finish)
                if parallel is None:
                    parallel = (os.cpu_count() or 1) > 1 and \
                        uow.rules.replay_size(program_id, draft, begin, finish) >= PARALLEL_MIN_EVENTS
                feed = evaluated_in_child(app.settings) if parallel else None
                report = uow.rules.simulate(program_id, draft, begin, finish, tiers=getattr(uow, "tiers", None),
                                            feed=feed)
        except AllegianceError as exc:
            if file is not None:
                _fail_on(file, text, exc)
            fail(str(exc))
            raise
        except FeedFailed as exc:
            fail(str(exc), code=1)
            raise
    if output == "json":
        print(json.dumps(report.as_dict(), indent=2, default=str))
        return
    _print_report(report.as_dict())


def _print_report(data: dict[str, Any]) -> None:
    console.print(f"backtest {data['from']} → {data['to']}: {data['events_read']:,} events replayed, "
                  f"{data['awards']:,} awards, {data['organizations_affected']:,} organizations and "
                  f"{data['participants_affected']:,} people affected", soft_wrap=True)
    money = Table("unit", "kind", "issued", "clawed back", "liability", "capped", "pending (count)")
    for unit, kind in data["units"].items():
        pending = data["pending"].get(unit, {"count": 0, "amount": 0})
        money.add_row(unit, kind, f"{data['issued'].get(unit, 0):,}", f"{data['clawed_back'].get(unit, 0):,}",
                      f"{data['liability'].get(unit, 0):,}", f"{data['capped'].get(unit, 0):,}",
                      f"{pending['amount']:,} ({pending['count']:,})")
    console.print(money)
    rules = Table("rule", "fired (events)", "issued")
    for code, row in data["rules"].items():
        rules.add_row(code, f"{row['fired']:,}", ", ".join(f"{v:,} {u}" for u, v in row["issued"].items()))
    console.print(rules)
    if data["caps_hit"]:
        hits = ", ".join(f"{code} × {times:,}" for code, times in data["caps_hit"].items())
        console.print(f"caps hit: {hits}", soft_wrap=True)
    for label, key, id_key in (("top organizations", "top_organizations", "organization_id"),
                               ("top participants", "top_participants", "participant_id")):
        for unit, top in data[key].items():
            best = ", ".join(f"#{row[id_key]} {row['amount']:,}" for row in top)
            console.print(f"{label} ({unit}): {best}", soft_wrap=True)
    if data["never_fired"]:
        console.print("never fired: " + ", ".join(data["never_fired"]), soft_wrap=True)
    if data["tier_moves"] is not None:
        console.print(f"tier moves: {len(data['tier_moves']):,}")
    for note in data["notes"]:
        console.print(f"note: {note}", soft_wrap=True)
