"""The report wing: recorded metrics to the study's numbers, figures and results.md. ``stats`` summarizes
per-seed metrics (the aggregate stage's too) and ``dvc_metrics`` shapes them for DVC; ``claims`` (with
claims.yaml) states what the write-up claims, ``evidence``, ``inference``, ``verdicts`` and ``findings``
judge it (``calibration`` simulates the procedure's error rates), ``plots`` draws one figure, ``figures``
picks the report's, and ``text`` renders results.md through report.md.j2. It may import the shared modules
of ``ch11`` and the data wing, never the training wing: reading results needs no Keras."""
