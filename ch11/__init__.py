"""Shared library of the ch11 pipeline: params schema, data sources, training engine, reporting."""
