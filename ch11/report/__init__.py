"""The report wing: recorded metrics to the study's numbers, figures and results.md. ``stats`` summarizes
per-seed metrics (the aggregate and evaluate stages' too) and ``dvc_metrics`` shapes them for DVC; ``claims``
(with claims.yaml) states what the write-up claims, ``findings`` reads each run's evidence and judges the claims
with ``inference`` and ``verdicts`` (``calibration`` simulates the procedure's error rates), ``figures`` picks
and draws the report's figures, and ``text`` renders results.md through report.md.j2. It may import the shared
modules of ``ch11`` and the data wing, never the training wing: reading results needs no Keras."""
