"""Fetch and verify a dataset's raw files: local folders first, then each URL, then each mirror.

Every file must match its SHA-256 from ``params.yaml`` (of its decompressed bytes or of the file itself).
A local copy that does not match is an error rather than skipped: a wrong file in a folder the user
pointed us at should be seen, not silently shadowed by a download. A download that does not match is
only that source's failure, and the next URL or mirror is tried. All files of a dataset are written
together to ``data/raw/<dataset>/`` or not at all.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ch11.atomic import atomic_path
from ch11.data.datasets import gunzip
from ch11.errors import PipelineError
from ch11.params import DATASETS, Download, FileCheck, Params
from ch11.paths import raw_dir

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


class SourceFailed(Exception):
    """One source could not provide a good copy of a file; the message says why."""


def search_dirs(dataset: str, settings: Download) -> list[Path]:
    """Folders to look in, in order: download.local_dirs, $CH11_DATA_DIRS, then the usual system caches."""
    env = [d for d in os.environ.get("CH11_DATA_DIRS", "").split(os.pathsep) if d]
    keras = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "datasets"
    builtin = [keras]
    if dataset == "fashion_mnist":
        builtin = [DEBIAN_FASHION_MNIST, keras, keras / "fashion-mnist"]
    return [Path(d).expanduser() for d in [*settings.local_dirs, *env]] + builtin


def sha256_of(path: Path, check: FileCheck) -> str:
    """SHA-256 of the file, or of its gzip-decompressed bytes (gunzip's clear error if it is not gzip)."""
    data = gunzip(path) if check.hash_of == "decompressed" else path.read_bytes()
    return hashlib.sha256(data).hexdigest()


def hashed_part(check: FileCheck) -> str:
    return "decompressed bytes" if check.hash_of == "decompressed" else "bytes"


def check_local(path: Path, check: FileCheck) -> None:
    """Raise a PipelineError unless the local copy ``path`` has the expected SHA-256."""
    try:
        actual = sha256_of(path, check)
    except OSError as exc:
        raise PipelineError(f"cannot read {path}: {exc.strerror}. Fix its permissions or remove it.") from exc
    if actual != check.sha256:
        raise PipelineError(
            f"{path} is not the expected {path.name}: the SHA-256 of its {hashed_part(check)} is {actual}, "
            f"but params.yaml expects {check.sha256}. A wrong local copy is an error, never skipped. "
            f"Delete {path} or replace it with the official file, then rerun.")


def download(url: str, dest: Path, settings: Download) -> None:
    """Save ``url`` to ``dest``, retrying network errors and HTTP 429/5xx with exponential back-off."""
    for attempt in range(settings.retries + 1):
        if attempt:
            time.sleep(settings.backoff_s * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(url, timeout=settings.timeout_s) as response, dest.open("wb") as out:
                shutil.copyfileobj(response, out)
            return
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code} {exc.reason}"
            if exc.code != 429 and exc.code < 500:
                raise SourceFailed(reason) from exc
        except NETWORK_ERRORS as exc:
            reason = str(getattr(exc, "reason", exc)) or type(exc).__name__
    raise SourceFailed(f"{reason}; gave up after {settings.retries + 1} attempts")


def fetch_url(url: str, dest: Path, check: FileCheck, settings: Download) -> None:
    """Download ``url`` to ``dest`` and verify it; SourceFailed says why it is unusable."""
    download(url, dest, settings)
    try:
        actual = sha256_of(dest, check)
    except PipelineError:
        raise SourceFailed("it sent a file that is not valid gzip (corrupt or truncated)") from None
    if actual != check.sha256:
        raise SourceFailed(f"it sent a file whose SHA-256 ({hashed_part(check)}) is {actual}, "
                           f"expected {check.sha256}")


def locate(name: str, check: FileCheck, dirs: list[Path], urls: list[str], settings: Download,
           tmp: Path) -> tuple[Path, str]:
    """A verified copy of file ``name`` and where it came from, trying ``dirs`` then ``urls`` in order."""
    tried = []
    for folder in dirs:
        path = folder / name
        if path.is_file():
            check_local(path, check)
            return path, str(path)
        tried.append(f"{path} (not found)")
    for base in urls:
        url = f"{base.rstrip('/')}/{name}"
        try:
            fetch_url(url, tmp / name, check, settings)
            return tmp / name, url
        except SourceFailed as exc:
            tried.append(f"{url} ({exc})")
    raise PipelineError(
        f"no usable copy of {name} was found. Tried, in order: {'; '.join(tried) or 'nothing'}. "
        f"To supply it, put {name} in one of those folders, or name a folder holding it in the "
        f"CH11_DATA_DIRS environment variable (several separated by {os.pathsep!r}) or under "
        "download.local_dirs in params.yaml (a file fetched by hand from one of the URLs above will do), "
        "then rerun.")


def fetch_dataset(dataset: str, params: Params) -> None:
    """Find, verify and write every file of ``dataset`` to ``data/raw/<dataset>/``, all or nothing."""
    if dataset not in DATASETS:
        raise PipelineError(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}.")
    settings = params.download
    spec = getattr(settings, dataset)
    dirs = search_dirs(dataset, settings)
    with tempfile.TemporaryDirectory(prefix=f"ch11-{dataset}-") as tmp:
        found = {name: locate(name, check, dirs, [*spec.urls, *spec.mirrors], settings, Path(tmp))
                 for name, check in spec.files.items()}
        with atomic_path(raw_dir(dataset), is_dir=True) as staging:
            for name, (path, _) in found.items():
                shutil.copyfile(path, staging / name)
    for name, (_, origin) in found.items():
        print(f"{raw_dir(dataset) / name} <- {origin}")
