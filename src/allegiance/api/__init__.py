"""REST API adapter (FastAPI) under /api/v1."""
