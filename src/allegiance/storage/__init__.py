"""SQLAlchemy adapters: tables, unit of work, repositories. The only package that speaks SQL."""
