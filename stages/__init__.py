"""Pipeline stages, one module per DVC stage, each run as ``python -m stages.<name>`` from the project root."""
