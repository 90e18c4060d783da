"""Parquet store: Arrow schemas, folder layout, atomic writes, readers, DuckDB queries."""
