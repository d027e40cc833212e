"""Fixtures of the flow tests: one Prefect test harness per session, the flow's environment, the flow."""
from __future__ import annotations

import os

import pytest

from tests.helpers import BIN


@pytest.fixture(scope="session")
def prefect():
    """The one Prefect test harness of the session (~15 s to start): a temporary API server on SQLite."""
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline: no telemetry attempts
        with prefect_test_harness(server_startup_timeout=180):
            yield


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Environment for the flow and its commands: this venv first on PATH (`python`, `dvc`), quiet TF
    and GX, no real ~/.keras cache, no inherited CH11_/CUDA settings and no proxies (servers are local)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        mp.setenv("GX_ANALYTICS_ENABLED", "False")
        mp.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras-home")))
        for name in ("CH11_DATA_DIRS", "CH11_THREADS", "CH11_WORKERS", "CUDA_VISIBLE_DEVICES", "http_proxy", "https_proxy",
                     "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def pipeline(prefect, env):
    from flows.pipeline import ch11_pipeline

    return ch11_pipeline
