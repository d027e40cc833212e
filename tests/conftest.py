"""Shared fixtures: a local HTTP server for download tests; for the flow tests one Prefect test harness per
session, the flow's environment, the flow."""
from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class FileServer:
    """A real HTTP server on 127.0.0.1 serving ``files`` (URL path -> bytes), 404 for anything else.

    The first ``fail`` requests are answered with status ``fail_status``; ``requests`` logs every path asked.
    """

    def __init__(self, files: dict[str, bytes], fail: int = 0, fail_status: int = 503):
        self.files, self.fail, self.fail_status, self.requests = files, fail, fail_status, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if len(server.requests) <= server.fail:
                    self.send_error(server.fail_status)
                elif self.path not in server.files:
                    self.send_error(404)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(server.files[self.path])))
                    self.end_headers()
                    self.wfile.write(server.files[self.path])

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def serve():
    """``serve(files, fail=0, fail_status=503)`` starts a FileServer, shut down when the test ends."""
    servers = []

    def start(files: dict[str, bytes], **kwargs) -> FileServer:
        servers.append(FileServer(files, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()
