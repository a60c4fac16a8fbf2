"""What a tick or an asset does, as plain functions on plain objects (no Dagster)."""
