"""The README's results paragraph quotes the committed report row by row: every effect it quotes as
"*label* Δ [low, high]" is the row of reports/fashion_mnist/results.md with that very label and interval, and
its tally of the write-up's claims is the report's. A re-run study that moves a number fails here until the
README follows."""
from __future__ import annotations

import re

from tests.helpers import PROJECT_ROOT
from tests.test_committed_words import tables

NUMBER = r"[+−-]\d+\.\d+"
QUOTED = re.compile(rf"\*([^*]+)\* ({NUMBER} \[{NUMBER}, {NUMBER}\])")


def test_the_readmes_results_are_the_reports_rows():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    results = readme[readme.index("## Results"):readme.index("\n## ", readme.index("## Results") + 1)]
    report = (PROJECT_ROOT / "reports" / "fashion_mnist" / "results.md").read_text(encoding="utf-8")
    rows = {(row.get("technique") or row.get("claim"), row.get("Δ [adjusted CI]") or row.get("ours: Δ [adjusted CI]"))
            for table in tables(report) for row in table}
    quoted = QUOTED.findall(results.replace("\n", " "))
    assert len(quoted) >= 8
    assert [q for q in quoted if q not in rows] == []
    tally = re.search(r"The write-up's (\d+) claimed differences\*\*: ([^.]+)\.", report)
    assert f"Of the write-up's {tally[1]} claimed differences: {tally[2]}." in results.replace("\n", " ")
