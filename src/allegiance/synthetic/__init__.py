"""Deterministic, seeded synthetic data for a B2B loyalty program.

A distributor, its dealers and their customer companies (with groups, subsidiaries and sites),
the people in them, and a stream of business events with realistic skew, seasonality and churn.
Used for demos, benchmarks, importer tests and for checking that analytics recover known truth.
"""

from .context import EventSource, OrgContext
from .generator import default_sources, generate
from .model import (
    CHURN_DRIVERS,
    EVENT_TYPES,
    ROLES,
    SEGMENTS,
    EventRecord,
    LatentProfile,
    OrganizationRecord,
    ParticipantRecord,
    SynthConfig,
    SyntheticProgram,
    event_type_catalog,
)
from .writer import EVENT_COLUMNS, iter_event_rows, write_dataset

__all__ = [
    "CHURN_DRIVERS",
    "EVENT_COLUMNS",
    "EVENT_TYPES",
    "ROLES",
    "SEGMENTS",
    "EventRecord",
    "EventSource",
    "LatentProfile",
    "OrgContext",
    "OrganizationRecord",
    "ParticipantRecord",
    "SynthConfig",
    "SyntheticProgram",
    "default_sources",
    "event_type_catalog",
    "generate",
    "iter_event_rows",
    "write_dataset",
]
