"""Shared CLI plumbing: settings from the environment, domain errors → exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from allegiance.bootstrap import Allegiance, build
from allegiance.config import Settings
from allegiance.kernel.errors import AllegianceError

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        err.print(f"[red]configuration error[/red]: {first.get('msg')}")
        raise typer.Exit(2) from exc


@contextmanager
def application() -> Iterator[Allegiance]:
    app = build(settings())
    try:
        yield app
    finally:
        app.close()


def fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error[/red]: {message}", soft_wrap=True)  # one line: greppable, paths intact
    raise typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    """Run a use case; a domain error becomes a one-line message and exit code 2."""
    try:
        return fn()
    except AllegianceError as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from exc


def program_id_for(app: Allegiance, slug: str) -> int:
    with app.read() as uow:
        program = uow.program_store.program_by_slug(slug)
    if program is None:
        fail(f"no program with slug {slug!r} (create one with 'allegiance programs create')")
        sys.exit(2)
    return int(program["id"])
