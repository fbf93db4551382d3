"""Templates and the helpers they use: money in the unit's scale, dates, account labels, links.

Autoescaping is on for every template and undefined names raise (``StrictUndefined``), so a typo in a
template fails its test instead of rendering an empty cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from allegiance import __version__
from allegiance.ledger.model import Unit
from allegiance.programs.model import ProgramSettings

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"


def when(value: datetime | None) -> str:
    """Timestamps are stored in UTC and shown as such: operators work across time zones."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def with_query(path: str, **params: Any) -> str:
    """A link with only the parameters that carry a value (no ``?q=&kind=`` noise)."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "PYG", "XAF", "XOF", "RWF"})
THREE_DECIMAL = frozenset({"BHD", "KWD", "OMR", "JOD", "TND", "IQD", "LYD"})


class Money:
    """Formats integer minor amounts with the program's units (``EUR/2`` → ``1,234.50 EUR``)."""

    def __init__(self, settings: ProgramSettings | None) -> None:
        units = settings.units if settings else []
        self.units = {u.code: Unit(u.code, u.name, u.scale, u.kind) for u in units}

    def __call__(self, amount: int, code: str, *, signed: bool = False) -> str:
        text = self.units.get(code, Unit(code, code)).format(int(amount))
        return f"+{text}" if signed and amount > 0 else text

    def currency(self, amount: int, code: str) -> str:
        """Money in an ISO 4217 currency's minor units (co-op claim costs): cents unless the currency
        has none (JPY, KRW...) or three (BHD, KWD...); a program unit of that code wins."""
        if code in self.units:
            return self(amount, code)
        scale = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
        return Unit(code, code, scale).format(int(amount))


def account_label(row: Mapping[str, Any]) -> str:
    """Who an account belongs to, in words (the address is for machines)."""
    kind, name = row.get("kind"), row.get("participant_name")
    owner = name or (f"person {row['participant_id']}" if row.get("participant_id") else "Company pool")
    if kind == "held":
        return f"On hold for {owner if row.get('participant_id') else 'company pool'}"
    if kind in ("pool", "personal"):
        return owner
    return f"Program {kind}"


_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters["when"] = when
_env.globals.update(version=__version__, with_query=with_query, account_label=account_label)
templates = Jinja2Templates(env=_env)


def is_fragment(request: Request) -> bool:
    """HTMX's convention: the same URL answers with a fragment when ``HX-Request`` is sent."""
    return request.headers.get("hx-request", "").lower() == "true"


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Vary"] = "HX-Request, Cookie"
    return response
