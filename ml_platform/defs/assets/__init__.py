"""Dagster assets, one module per stage. Each body coordinates; the work lives elsewhere."""
