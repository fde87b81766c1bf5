"""API keys in a store: SQLite in the run dir, or the `full` profile's PostgreSQL (§8)."""
