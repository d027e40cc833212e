"""The real ``python -m stages.download`` in a throw-away project dir, against real files and real HTTP.

No test reaches the internet: every URL points at a local server (conftest's ``serve``) or at a local port
nobody listens on, and HOME/KERAS_HOME point into the test's own folder so a real ~/.keras cache is never
consulted.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from ch11.data.datasets import CIFAR_ARCHIVE, FASHION_FILES
from ch11.data.sources import DEBIAN_FASHION_MNIST
from tests.fixtures import needs_fashion_mnist, write_cifar_archive, write_idx_gz
from tests.helpers import PROJECT_ROOT, digest, module

DEBIAN = DEBIAN_FASHION_MNIST


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def dead_url():
    """A URL on a local port that is bound but not listening: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/data/"


class Project:
    """A project dir with a copy of params.yaml whose ``download`` section tests edit, and a stage runner."""

    def __init__(self, base: Path, dead_url: str):
        self.root, self.home, self.tmp = base / "project", base / "home", base / "tmp"
        for folder in (self.root, self.home, self.tmp):
            folder.mkdir()
        self.params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
        self.download = self.params["download"]
        self.download.update(local_dirs=[], retries=0, backoff_s=0.01, timeout_s=10)
        for dataset in ("fashion_mnist", "cifar10"):
            self.download[dataset].update(urls=[dead_url], mirrors=[])

    def expect_cifar(self, data: bytes, hash_of: str = "file") -> None:
        self.download["cifar10"]["files"] = {CIFAR_ARCHIVE: {"sha256": sha256(data), "hash_of": hash_of}}

    def run(self, dataset: str, data_dirs: str = "") -> subprocess.CompletedProcess:
        """Run the stage in a clean environment (no proxies, no real HOME); check no temp file is left."""
        (self.root / "params.yaml").write_text(yaml.safe_dump(self.params, sort_keys=False), encoding="utf-8")
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(PROJECT_ROOT), "HOME": str(self.home),
               "KERAS_HOME": str(self.home / "keras"), "TMPDIR": str(self.tmp), "CH11_DATA_DIRS": data_dirs, "PYTHONFAULTHANDLER": "1"}
        result = module(self.root, "stages.download", dataset, env=env, timeout=120)
        assert list(self.tmp.iterdir()) == [], "temporary download files were left behind"
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def raw(self, dataset: str) -> Path:
        return self.root / "data" / "raw" / dataset

    def assert_failed_cleanly(self, result: subprocess.CompletedProcess) -> str:
        """Exit code 1, one ``error:`` paragraph, and nothing at all written under data/."""
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0, result.stderr
        assert not (self.root / "data").exists()
        return result.stderr


@pytest.fixture
def project(tmp_path, dead_url):
    return Project(tmp_path, dead_url)


@pytest.fixture
def archives(tmp_path):
    """Two different generated CIFAR-10 archives' bytes: the expected one and an impostor."""
    return [write_cifar_archive(tmp_path / f"archive{seed}", per_batch=10, seed=seed).read_bytes()
            for seed in (0, 1)]


@needs_fashion_mnist
def test_fashion_mnist_from_the_debian_folder(project):
    result = project.run("fashion_mnist")
    assert result.returncode == 0, result.stderr
    files = project.download["fashion_mnist"]["files"]
    assert sorted(p.name for p in project.raw("fashion_mnist").iterdir()) == sorted(FASHION_FILES.values())
    for name, check in files.items():
        copied = project.raw("fashion_mnist") / name
        assert digest(copied) == digest(DEBIAN / name)  # the original compressed bytes, untouched
        assert sha256(gzip.decompress(copied.read_bytes())) == check["sha256"]
        assert f"{name} <- {DEBIAN / name}" in result.stdout
    assert len(result.stdout.splitlines()) == 4


def test_cifar_over_http_skips_a_404_and_a_bad_download_then_uses_the_mirror(project, serve, archives):
    good, impostor = archives
    server = serve({f"/bad/{CIFAR_ARCHIVE}": impostor, f"/good/{CIFAR_ARCHIVE}": good})
    project.expect_cifar(good)
    project.download.update(retries=2)  # a 404 must still not be retried
    project.download["cifar10"].update(urls=[f"{server.url}/missing/", f"{server.url}/bad"],
                                       mirrors=[f"{server.url}/good/"])
    result = project.run("cifar10")
    assert result.returncode == 0, result.stderr
    assert server.requests == [f"/missing/{CIFAR_ARCHIVE}", f"/bad/{CIFAR_ARCHIVE}", f"/good/{CIFAR_ARCHIVE}"]
    assert [p.name for p in project.raw("cifar10").iterdir()] == [CIFAR_ARCHIVE]
    assert digest(project.raw("cifar10") / CIFAR_ARCHIVE) == sha256(good)
    assert result.stdout.strip() == f"data/raw/cifar10/{CIFAR_ARCHIVE} <- {server.url}/good/{CIFAR_ARCHIVE}"


def test_a_download_that_is_not_valid_gzip_is_skipped(project, serve, archives):
    good, _ = archives
    server = serve({f"/corrupt/{CIFAR_ARCHIVE}": good[: len(good) // 2], f"/good/{CIFAR_ARCHIVE}": good})
    project.download["cifar10"]["files"] = {CIFAR_ARCHIVE: {"sha256": sha256(gzip.decompress(good))}}
    project.download["cifar10"].update(urls=[f"{server.url}/corrupt/", f"{server.url}/good/"])
    result = project.run("cifar10")
    assert result.returncode == 0, result.stderr
    assert digest(project.raw("cifar10") / CIFAR_ARCHIVE) == sha256(good)


@pytest.mark.parametrize("status", [503, 429])
def test_transient_http_errors_are_retried(project, serve, archives, status):
    good, _ = archives
    server = serve({f"/{CIFAR_ARCHIVE}": good}, fail=2, fail_status=status)
    project.expect_cifar(good)
    project.download.update(retries=3)
    project.download["cifar10"]["urls"] = [server.url]
    result = project.run("cifar10")
    assert result.returncode == 0, result.stderr
    assert server.requests == [f"/{CIFAR_ARCHIVE}"] * 3
    assert digest(project.raw("cifar10") / CIFAR_ARCHIVE) == sha256(good)


def test_gives_up_after_the_configured_retries(project, serve, archives):
    good, _ = archives
    server = serve({f"/{CIFAR_ARCHIVE}": good}, fail=100)
    project.expect_cifar(good)
    project.download.update(retries=2)
    project.download["cifar10"]["urls"] = [server.url]
    error = project.assert_failed_cleanly(project.run("cifar10"))
    assert len(server.requests) == 3
    assert f"{server.url}/{CIFAR_ARCHIVE} (HTTP 503 Service Unavailable; gave up after 3 attempts)" in error


def test_a_wrong_local_copy_is_an_error_not_skipped(project, serve, archives, tmp_path):
    good, impostor = archives
    server = serve({f"/{CIFAR_ARCHIVE}": good})  # a good copy is available, but must not be reached
    local = tmp_path / "local" / CIFAR_ARCHIVE
    local.parent.mkdir()
    local.write_bytes(impostor)
    project.expect_cifar(good)
    project.download.update(local_dirs=[str(local.parent)])
    project.download["cifar10"]["urls"] = [server.url]
    error = project.assert_failed_cleanly(project.run("cifar10"))
    assert server.requests == []
    for part in (str(local), f"is {sha256(impostor)}", f"expects {sha256(good)}", f"Delete {local}"):
        assert part in error


def test_offline_names_every_source_tried_and_how_to_supply_the_file(project, dead_url, tmp_path, archives):
    project.expect_cifar(archives[0])
    project.download.update(retries=1, local_dirs=[str(tmp_path / "configured")])
    project.download["cifar10"]["mirrors"] = [f"{dead_url}mirror/"]
    env_dirs = [str(tmp_path / "env1"), str(tmp_path / "env2")]
    error = project.assert_failed_cleanly(project.run("cifar10", data_dirs=os.pathsep.join(env_dirs)))
    folders = [str(tmp_path / "configured"), *env_dirs, str(project.home / "keras" / "datasets")]
    for folder in folders:
        assert f"{folder}/{CIFAR_ARCHIVE} (not found)" in error
    for url in (dead_url, f"{dead_url}mirror/"):
        assert f"{url}{CIFAR_ARCHIVE} (" in error and "gave up after 2 attempts" in error
    sources = [*folders, dead_url.rstrip("/"), f"{dead_url}mirror"]
    tried = [error.index(f"{source}/{CIFAR_ARCHIVE}") for source in sources]
    assert tried == sorted(tried), "sources must be listed in the order they were tried"
    assert str(DEBIAN) not in error  # the Debian folder holds Fashion-MNIST only
    assert "CH11_DATA_DIRS" in error and "download.local_dirs" in error


@pytest.mark.parametrize("where", ["local_dirs", "CH11_DATA_DIRS", "keras cache"])
def test_a_local_copy_is_found_in_every_search_folder(project, tmp_path, archives, where):
    good, _ = archives
    folder = {"local_dirs": tmp_path / "configured", "CH11_DATA_DIRS": tmp_path / "env",
              "keras cache": project.home / "keras" / "datasets"}[where]
    folder.mkdir(parents=True)
    (folder / CIFAR_ARCHIVE).write_bytes(good)
    project.expect_cifar(good)
    if where == "local_dirs":
        project.download["local_dirs"] = [str(folder)]
    result = project.run("cifar10", data_dirs=str(folder) if where == "CH11_DATA_DIRS" else "")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"data/raw/cifar10/{CIFAR_ARCHIVE} <- {folder / CIFAR_ARCHIVE}"
    assert digest(project.raw("cifar10") / CIFAR_ARCHIVE) == sha256(good)


@pytest.mark.parametrize("damage, message", [("empty", "is empty (0 bytes)"),
                                             ("truncated", "is not a valid gzip file"),
                                             ("not gzip", "is not a valid gzip file")])
def test_a_damaged_local_gzip_is_a_clear_error(project, tmp_path, damage, message):
    name = FASHION_FILES["x_train"]
    local = write_idx_gz(tmp_path / "local" / name, np.zeros((100, 28, 28), dtype=np.uint8))
    local.write_bytes({"empty": b"", "truncated": local.read_bytes()[:40], "not gzip": b"GIF89a"}[damage])
    project.download["local_dirs"] = [str(local.parent)]
    error = project.assert_failed_cleanly(project.run("fashion_mnist"))
    assert f"{local} {message}" in error


def test_unknown_dataset_lists_the_allowed_names(project):
    error = project.assert_failed_cleanly(project.run("mnist"))
    assert "unknown dataset 'mnist'" in error and "fashion_mnist, cifar10" in error
