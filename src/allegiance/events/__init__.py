"""Business events in: declared types with a JSON Schema, append-only, deduplicated by source id."""
