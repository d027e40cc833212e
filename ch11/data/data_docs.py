"""GX Data Docs made fit for git: byte-stable across reruns on the same data, and only the static files that
the pages use. Plain file edits; great_expectations is not imported here."""
from __future__ import annotations

import datetime
import re
from pathlib import Path

DOCS_RUN_TIME = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)   # the run time GX is given


def stabilize_docs(docs_dir: Path) -> None:
    """Make the pages byte-stable across reruns on the same data: GX writes its load time (a batch marker
    and the logo's cache-buster) and random element ids into them; these become the fixed run time and
    ids numbered in order."""
    stamp = DOCS_RUN_TIME.strftime("%Y%m%dT%H%M%S.%fZ")
    for page in sorted(docs_dir.rglob("*.html")):
        html = re.sub(r"\b\d{8}T\d{6}\.\d{6}Z\b", stamp, page.read_text(encoding="utf-8"))
        ids: dict[str, str] = {}
        html = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                      lambda m: ids.setdefault(m[0], f"id{len(ids) + 1}"), html)
        page.write_text(html, encoding="utf-8")


def prune_docs(docs_dir: Path) -> None:
    """Keep only what the HTML pages reference under ``static/`` (the favicon; styles are inlined)."""
    stabilize_docs(docs_dir)
    static = docs_dir / "static"
    if not static.is_dir():
        return
    wanted = set()
    for page in docs_dir.rglob("*.html"):
        for ref in re.findall(r"""static/[^"'\s)?#]+""", page.read_text(encoding="utf-8")):
            wanted.add(ref)
    for path in sorted(static.rglob("*"), reverse=True):
        rel = path.relative_to(docs_dir).as_posix()
        if path.is_file() and rel not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
