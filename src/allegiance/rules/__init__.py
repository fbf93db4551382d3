"""Earning rules ("do A, get B"). For now the hook only: the engine is pluggable and pure, and
returns award intents that the event pipeline posts in the same transaction as the event."""
