"""Atomic writes: outputs appear complete or not at all (temp file in the same folder, then rename)."""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ch11.errors import PipelineError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise PipelineError(f"cannot write {path}: {exc.strerror} ({exc.filename}). "
                            "Check that the folder exists, is writable and the disk has space.") from exc
    target = tmp if is_dir else tmp / path.name
    try:
        yield target
        if is_dir:
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o777 & ~umask)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    except OSError as exc:
        raise PipelineError(f"cannot write {path}: {exc.strerror}. Nothing was written; free disk "
                            "space or fix the folder's permissions and rerun.") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_safe(obj):
    """``obj`` with every non-finite float (a diverged run's NaN/inf) replaced by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Atomic, sorted, strict JSON (non-finite floats written as null)."""
    write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def normalize_zip(path: str | os.PathLike, rewrite: Callable[[str, bytes], bytes] | None = None) -> None:
    """Rewrite a zip (``.npz``, ``.keras``) with fixed entry timestamps, so equal content hashes equally;
    ``rewrite(name, data)`` may also strip run-specific bytes from members."""
    path = Path(path)
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    if rewrite:
        entries = [(info, rewrite(info.filename, data)) for info, data in entries]
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in entries:
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            fixed.compress_type, fixed.external_attr = info.compress_type, info.external_attr
            dst.writestr(fixed, data)


def write_npz(path: str | os.PathLike, arrays: dict) -> None:
    """Atomic, uncompressed, byte-reproducible ``np.savez``."""
    import numpy as np

    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
        normalize_zip(tmp)
