"""Prefect orchestration of the DVC pipeline: `pipeline` (the flow: `scheduler`, `dvc_adapter`, `estimates`,
`stopping`, `host`, `artifacts`), `deploy` (the cron deployment), and `record_unchanged` (a DVC tool that re-records
dvc.lock after a change that leaves every output as it was)."""
