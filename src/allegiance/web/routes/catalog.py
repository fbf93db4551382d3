"""The rewards catalog: the list (by category), and one form to add an item or change it.

The form posts plain text fields; they are turned into the API's own models (``CatalogItemCreate``,
``CatalogItemUpdate``) so a page and an API client meet exactly the same validation. A refused form
comes back filled in with each message next to its field (422), nothing saved.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from allegiance.kernel.cursors import decode_cursor
from allegiance.kernel.errors import AllegianceError, NotFound
from allegiance.rewards.model import CatalogItemCreate, CatalogItemUpdate, Category, localized
from allegiance.web.auth import CsrfChecked, Operator, OperatorDep, get_allegiance
from allegiance.web.pagination import window
from allegiance.web.rendering import render, with_query
from allegiance.web.routing import web_router

router = web_router()

PAGE = 50
Text = Annotated[str, Form(max_length=4000)]
Short = Annotated[str, Form(max_length=600)]
LIST_FIELDS = ("tiers", "roles", "organization_kinds", "countries")
FIELDS = ("code", "names", "description", "category", "unit", "cost", "stock", *LIST_FIELDS, "image_url",
          "face_value_currency", "face_value_amount", "active")


@router.get("/catalog")
def catalog_list(request: Request, operator: OperatorDep, category: Annotated[str | None, Query(max_length=40)] = None,
                 cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    chosen = category if category in {c.value for c in Category} else None
    with get_allegiance(request).read() as uow:
        page = window(uow.reward_store.items(operator.program_id, after=decode_cursor(cursor) or 0, limit=PAGE,
                                             category=chosen), PAGE)
    return render(request, "catalog/list.html", {
        "operator": operator, "items": page.items, "category": chosen or "", "name_of": _name_of,
        "categories": [c.value for c in Category],
        "next_url": with_query("/catalog", category=chosen, cursor=page.next_cursor) if page.next_cursor else None})


def _name_of(names: dict[str, str]) -> str:
    """Operators read the English name when there is one (PostgreSQL's JSONB does not keep key order)."""
    return localized(names, "en")


def _initial(item: dict[str, Any]) -> dict[str, str]:
    """An item as the form's text fields."""
    availability = item["availability"] or {}
    face = item.get("face_value") or {}
    values = {
        "code": item["code"], "names": "\n".join(f"{k}: {v}" for k, v in item["names"].items()),
        "description": item["description"], "category": item["category"], "unit": item["unit"],
        "cost": str(item["cost"]), "stock": "" if item["stock"] is None else str(item["stock"]),
        "image_url": item["image_url"] or "", "face_value_currency": face.get("currency", ""),
        "face_value_amount": str(face["amount"]) if face.get("amount") else "",
        "active": "on" if item["active"] else "",
    }
    values.update({name: ", ".join(availability.get(name, [])) for name in LIST_FIELDS})
    return values


def _form(request: Request, operator: Operator, values: dict[str, str], *, item: dict[str, Any] | None = None,
          errors: dict[str, str] | None = None, saved: bool = False) -> Response:
    return render(request, "catalog/form.html", {
        "operator": operator, "item": item, "values": values, "errors": errors or {}, "saved": saved,
        "title": _name_of(item["names"]) if item else "New catalog item",
        "categories": [c.value for c in Category],
        "units": [u.code for u in operator.settings.units] if operator.settings else [],
    }, status=422 if errors else 200)


@router.get("/catalog/new")
def catalog_new(request: Request, operator: OperatorDep) -> Response:
    operator.program_id  # noqa: B018 — no program yet: the page that says so
    unit = operator.settings.default_unit if operator.settings else ""
    values = {name: "" for name in FIELDS} | {"category": "goods", "unit": unit, "active": "on", "names": "en: "}
    return _form(request, operator, values)


def _names(text: str) -> dict[str, str] | str:
    """``locale: name`` per line; a single line without a locale is English."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and ":" not in lines[0]:
        return {"en": lines[0]}
    names: dict[str, str] = {}
    for line in lines:
        locale, _, name = line.partition(":")
        if not name.strip():
            return f"write one 'locale: name' per line (line {line!r})"
        names[locale.strip()] = name.strip()
    return names


def _number(text: str, field: str, errors: dict[str, str]) -> int | None:
    if not text.strip():
        return None
    try:
        return int(text.strip().replace(",", "").replace("_", ""))
    except ValueError:
        errors[field] = "enter a whole number (in the unit's smallest step)"
        return None


def _document(values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """The form's text as the JSON an API client would send; malformed numbers/names go to ``errors``."""
    names = _names(values["names"])
    if isinstance(names, str):
        errors["names"] = names
    cost, stock = _number(values["cost"], "cost", errors), _number(values["stock"], "stock", errors)
    if not values["cost"].strip():
        errors["cost"] = "enter the cost per item"
    amount = _number(values["face_value_amount"], "face_value", errors)
    face = {"currency": values["face_value_currency"].strip().upper(), "amount": amount} if amount is not None else None
    return {
        "names": names if isinstance(names, dict) else {}, "description": values["description"],
        "category": values["category"], "cost": cost, "stock": stock,
        "availability": {name: [v.strip() for v in values[name].split(",") if v.strip()] for name in LIST_FIELDS},
        "image_url": values["image_url"].strip() or None, "face_value": face, "active": values["active"] == "on",
    }


def _field_of(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "face_value"  # the only whole-model check: a charity item needs its face value
    head = str(loc[0])
    if head == "availability" and len(loc) > 1:
        return str(loc[1])
    return head


def _validation_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        errors.setdefault(_field_of(tuple(error["loc"])), str(error["msg"]).removeprefix("Value error, "))
    return errors


def _values(code: str, names: str, description: str, category: str, unit: str, cost: str, stock: str, tiers: str,
            roles: str, organization_kinds: str, countries: str, image_url: str, face_value_currency: str,
            face_value_amount: str, active: str) -> dict[str, str]:
    return dict(locals())


@router.post("/catalog", dependencies=[CsrfChecked])
def catalog_create(request: Request, operator: OperatorDep, code: Short = "", names: Text = "", description: Text = "",
                   category: Short = "", unit: Short = "", cost: Short = "", stock: Short = "", tiers: Text = "",
                   roles: Text = "", organization_kinds: Text = "", countries: Text = "", image_url: Short = "",
                   face_value_currency: Short = "", face_value_amount: Short = "", active: Short = "") -> Response:
    values = _values(code, names, description, category, unit, cost, stock, tiers, roles, organization_kinds,
                     countries, image_url, face_value_currency, face_value_amount, active)
    errors: dict[str, str] = {}
    document = {**_document(values, errors), "code": code.strip(), "unit": unit or None}
    try:
        body = CatalogItemCreate.model_validate(document)
    except ValidationError as exc:
        errors = {**_validation_errors(exc), **errors}
    if errors:
        return _form(request, operator, values, errors=errors)
    try:
        with get_allegiance(request).write() as uow:
            created = uow.rewards.create_item(operator.program_id, body)
    except AllegianceError as exc:
        return _form(request, operator, values, errors={exc.field or "code": exc.message})
    return RedirectResponse(f"/catalog/{created['id']}?saved=1", status_code=303)


def _item(request: Request, operator: Operator, item_id: int) -> dict[str, Any]:
    with get_allegiance(request).read() as uow:
        item = uow.reward_store.item(operator.program_id, item_id)
    if item is None:
        raise NotFound(f"catalog item {item_id} not found")
    return item


@router.get("/catalog/{item_id}")
def catalog_edit(request: Request, operator: OperatorDep, item_id: int,
                 saved: Annotated[str | None, Query(max_length=2)] = None) -> Response:
    item = _item(request, operator, item_id)
    return _form(request, operator, _initial(item), item=item, saved=bool(saved))


@router.post("/catalog/{item_id}", dependencies=[CsrfChecked])
def catalog_update(request: Request, operator: OperatorDep, item_id: int, names: Text = "", description: Text = "",
                   category: Short = "", cost: Short = "", stock: Short = "", tiers: Text = "", roles: Text = "",
                   organization_kinds: Text = "", countries: Text = "", image_url: Short = "",
                   face_value_currency: Short = "", face_value_amount: Short = "", active: Short = "") -> Response:
    item = _item(request, operator, item_id)
    values = _values(item["code"], names, description, category, item["unit"], cost, stock, tiers, roles,
                     organization_kinds, countries, image_url, face_value_currency, face_value_amount, active)
    errors: dict[str, str] = {}
    document = _document(values, errors)
    try:
        body = CatalogItemUpdate.model_validate(document)
    except ValidationError as exc:
        errors = {**_validation_errors(exc), **errors}
    if errors:
        return _form(request, operator, values, item=item, errors=errors)
    try:
        with get_allegiance(request).write() as uow:
            uow.rewards.update_item(operator.program_id, item_id, body)
    except NotFound:
        raise
    except AllegianceError as exc:
        return _form(request, operator, values, item=item, errors={exc.field or "names": exc.message})
    return RedirectResponse(f"/catalog/{item_id}?saved=1", status_code=303)
