"""What the distributor sells: a small office-equipment catalog and a training curriculum.

Prices and typical quantities differ by orders of magnitude between paper and printers, which is
what makes order values realistically skewed even before customer size is applied.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    category: str
    name: str
    unit_price_minor: int
    typical_quantity: float  # mean quantity on an order line of a small customer


@dataclass(frozen=True, slots=True)
class Course:
    course_id: str
    title: str
    modules: int


# category -> (how often it appears on order lines, typical quantity, [(sku, name, price)])
_CATALOG: dict[str, tuple[float, float, list[tuple[str, str, int]]]] = {
    "cartridges": (0.26, 6.0, [
        ("CRT-101", "Toner black XL", 8_900), ("CRT-102", "Toner cyan", 7_400),
        ("CRT-103", "Toner magenta", 7_400), ("CRT-104", "Toner yellow", 7_400),
        ("CRT-110", "Ink multipack", 4_900), ("CRT-120", "Drum unit", 18_900),
    ]),
    "paper": (0.22, 20.0, [
        ("PAP-201", "A4 80 g, 500 sheets", 549), ("PAP-202", "A4 recycled, 500 sheets", 629),
        ("PAP-203", "A3 80 g, 500 sheets", 1_190), ("PAP-210", "Photo paper A4, 50", 1_990),
        ("PAP-220", "Label sheets, 100", 2_490),
    ]),
    "printers": (0.04, 1.3, [
        ("PRN-301", "Mono laser printer", 24_900), ("PRN-302", "Colour laser printer", 54_900),
        ("PRN-310", "A3 multifunction", 189_000), ("PRN-320", "Production printer", 499_000),
        ("PRN-330", "Label printer", 19_900),
    ]),
    "service_contracts": (0.05, 1.0, [
        ("SVC-401", "Basic service, 12 months", 9_900), ("SVC-402", "Next-day on-site", 29_900),
        ("SVC-403", "Managed print, per fleet", 120_000), ("SVC-404", "Extended warranty", 14_900),
    ]),
    "spare_parts": (0.14, 2.0, [
        ("SPR-501", "Fuser unit", 25_000), ("SPR-502", "Pickup roller kit", 1_990),
        ("SPR-503", "Transfer belt", 12_900), ("SPR-504", "Waste toner box", 990),
        ("SPR-505", "Maintenance kit", 8_900), ("SPR-506", "Paper tray", 6_900),
    ]),
    "software": (0.06, 3.0, [
        ("SFT-601", "Print management, per seat", 4_900), ("SFT-602", "Secure release", 19_900),
        ("SFT-603", "Scan-to-cloud", 9_900), ("SFT-604", "Fleet analytics", 89_000),
        ("SFT-605", "Document capture", 39_000),
    ]),
    "training": (0.03, 1.5, [
        ("TRN-701", "Operator training", 19_000), ("TRN-702", "Technician certification", 150_000),
        ("TRN-703", "Admin workshop", 45_000), ("TRN-704", "Security awareness", 29_000),
    ]),
    "accessories": (0.20, 3.0, [
        ("ACC-801", "USB cable", 990), ("ACC-802", "Network card", 7_900),
        ("ACC-803", "Stand", 4_900), ("ACC-804", "Cleaning kit", 1_490),
        ("ACC-805", "Stapler cartridge", 2_290),
    ]),
}

CATEGORIES: tuple[str, ...] = tuple(_CATALOG)
PRODUCTS: tuple[Product, ...] = tuple(
    Product(sku, category, name, price, typical)
    for category, (_share, typical, items) in _CATALOG.items()
    for sku, name, price in items
)
CATEGORY_SHARE: tuple[float, ...] = tuple(share for share, _, _ in _CATALOG.values())
# Each product's share of its category's order lines (equal within a category).
PRODUCT_SHARE_IN_CATEGORY: tuple[float, ...] = tuple(
    1.0 / len(_CATALOG[p.category][2]) for p in PRODUCTS
)
PRODUCT_CATEGORY_INDEX: tuple[int, ...] = tuple(CATEGORIES.index(p.category) for p in PRODUCTS)
CARTRIDGE_INDEXES: frozenset[int] = frozenset(
    i for i, p in enumerate(PRODUCTS) if p.category == "cartridges"
)

COURSES: tuple[Course, ...] = (
    Course("CRS-101", "Product basics", 3),
    Course("CRS-102", "Installing multifunction devices", 6),
    Course("CRS-103", "Managed print services selling", 4),
    Course("CRS-201", "Field service level 1", 8),
    Course("CRS-202", "Field service level 2", 12),
    Course("CRS-301", "Secure printing", 5),
    Course("CRS-302", "Document workflows", 7),
    Course("CRS-401", "Sustainability and recycling", 2),
)
