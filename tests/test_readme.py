"""The README's results paragraph quotes the committed report: every signed number it gives is one of
reports/fashion_mnist/results.md's (to the README's decimals), and its counts are the report's tallies, so a
re-run study that moves the numbers fails here until the README follows."""
from __future__ import annotations

import re

from tests.helpers import PROJECT_ROOT

SIGNED = re.compile(r"[+−-]\d+\.\d+")


def signed(text: str) -> list[tuple[float, int]]:
    """Each signed decimal in ``text`` (a Unicode minus read as one) with its number of decimals."""
    return [(float(x.replace("−", "-")), len(x.split(".")[1])) for x in SIGNED.findall(text)]


def test_the_readmes_results_are_the_reports():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    results = readme[readme.index("## Results"):readme.index("\n## ", readme.index("## Results") + 1)]
    report = (PROJECT_ROOT / "reports" / "fashion_mnist" / "results.md").read_text(encoding="utf-8")
    tables = report[:report.index("## How to read")]   # the effects and the claims, with the write-up's numbers
    reported = [x for x, _ in signed(tables)]
    quoted = signed(results)
    assert len(quoted) > 10
    assert [x for x, d in quoted if not any(abs(x - y) <= 0.5 * 10 ** -d + 1e-9 for y in reported)] == []
    rows = re.search(r"over the (\d+) rows", results)[1]
    assert f"{rows} rows: " in report
    claims = re.search(r"write-up's (\d+)\s+claimed differences: (\d+) supported, (\d+) size excluded, (\d+) "
                       r"consistent", results)
    assert f"judged on ours: {claims[2]} supported, {claims[3]} size excluded, {claims[4]} consistent" in report
    assert int(claims[1]) == sum(map(int, claims.groups()[1:]))
