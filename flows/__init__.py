"""Prefect orchestration of the DVC pipeline: `flows.pipeline` (the flow), `flows.deploy` (a cron deployment)."""
