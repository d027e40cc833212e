"""Shared library of the ch11 pipeline, in three wings around the modules all of them use.

Here, importable by every wing, stage, flow, test and benchmark: ``params`` (the params.yaml schema),
``paths`` (every output's path), ``atomic`` (all-or-nothing writes), ``errors`` (one clear paragraph per bad
input) and ``sandbox`` (a throw-away project copy for tests and benchmarks); they import no wing. The wings:
``data`` (raw files to the arrays a run sees), ``training`` (model, engine, seed pool) and ``report``
(statistics, findings, figures, results.md); tests/test_wings.py keeps their imports pointing one way.
"""
