"""``allegiance demo`` and ``allegiance synth``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from allegiance.cli.common import application, console, fail, guarded, settings
from allegiance.config import Environment


def demo(
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server after loading")] = False,
    organizations: Annotated[int, typer.Option(help="Customer companies to generate")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data)")] = 42,
    host: Annotated[str, typer.Option(help="Interface to bind when serving")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port when serving")] = 8000,
) -> None:
    """Migrate the database, load the demo program (once) and print a login and an API key."""
    from allegiance.cli.analytics import demo_run
    from allegiance.demo.loader import demo_credentials, load_demo
    from allegiance.storage.migrate import upgrade

    configured = settings()
    if configured.environment is Environment.PRODUCTION:
        fail("the demo loads a known password; it refuses to run with ALLEGIANCE_ENVIRONMENT=production")
    upgrade(configured.database_url)
    with application() as app:
        with console.status("loading the demo program (synthetic distributor, dealers and customers)…"):
            summary = guarded(lambda: load_demo(app, seed=seed, organizations=organizations))
        with console.status("running analytics once, so the dashboard has data…"):
            analytics = demo_run(app, summary.program_id, just_loaded=summary.created)
        email, password, key = demo_credentials(app, summary.program_id)
    state = "loaded" if summary.created else "already loaded"
    console.print(f"[green]demo program {state}[/green]: {summary.organizations} organizations, "
                  f"{summary.participants} people, {summary.events} events"
                  + (f", {summary.awards} awards" if summary.created else ""))
    if analytics:
        console.print(analytics, soft_wrap=True)
    console.print(f"operator pages: http://{host}:{port}/   login [bold]{email}[/bold] / [bold]{password}[/bold]",
                  soft_wrap=True)
    console.print(f"API docs:       http://{host}:{port}/docs", soft_wrap=True)
    console.print("API key (operator, shown once):")
    print(key, flush=True)
    if serve:
        from allegiance.cli.main import serve as run_server

        run_server(host=host, port=port, workers=1)


def synth(
    out: Annotated[Path, typer.Option(help="Directory to write into")],
    orgs: Annotated[int, typer.Option("--orgs", help="Customer companies")] = 300,
    months: Annotated[int, typer.Option(help="Months of history")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
    formats: Annotated[str, typer.Option("--formats", help="Comma-separated: parquet,jsonl")] = "parquet,jsonl",
) -> None:
    """Write a synthetic program (organizations, people, events) as Parquet/JSONL, at any scale."""
    from allegiance.synthetic import SynthConfig, generate, write_dataset

    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = set(chosen) - {"parquet", "jsonl"}
    if unknown or not chosen:
        fail(f"--formats takes parquet and/or jsonl, not {sorted(unknown) or formats!r}")
    if orgs < 1:
        fail("--orgs must be at least 1")
    data = generate(SynthConfig(seed=seed, organizations=orgs, months=months))
    with console.status(f"generating {orgs} organizations × {months} months…"):
        counts = write_dataset(data, out, formats=chosen)
    for name, count in counts.items():
        console.print(f"{name}: {count:,} rows")
    console.print(f"written to {out}")


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command()(synth)
