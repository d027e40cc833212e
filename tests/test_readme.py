"""The README's results paragraph quotes the committed report row by row: every effect it quotes as
"*label* Δ [low, high]" is the row of reports/fashion_mnist/results.md with that very label and interval, and
its tally of the write-up's claims is the report's. A re-run study that moves a number fails here until the
README follows; so does its tally of the readings and its seeds per run.

The README's results are written from the report's rows: edit the words around them, never the quotes."""
from __future__ import annotations

import re

import pytest

from tests.helpers import PROJECT_ROOT
from tests.test_committed_words import tables

NUMBER = r"[+−-]\d+\.\d+"
QUOTED = re.compile(rf"\*([^*]+)\* ({NUMBER} \[{NUMBER}, {NUMBER}\])")


def report_rows() -> set[tuple[str, str]]:
    report = (PROJECT_ROOT / "reports" / "fashion_mnist" / "results.md").read_text(encoding="utf-8")
    return {(row.get("technique") or row.get("claim"), row.get("Δ [adjusted CI]") or row.get("ours: Δ [adjusted CI]")
             or row.get("change: first − second [adjusted CI]")) for table in tables(report) for row in table}


@pytest.mark.parametrize("doc", ["differences.md", "statistics.md"])
def test_the_measured_differences_in_the_docs_are_the_reports_rows(doc):
    text = " ".join((PROJECT_ROOT / "docs" / doc).read_text(encoding="utf-8").split())
    quoted = QUOTED.findall(text)
    assert len(quoted) >= 2 and [q for q in quoted if q not in report_rows()] == []


def readme_results() -> str:
    """The README's "## Results" section, its line breaks as spaces."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    return " ".join(readme[readme.index("## Results"):readme.index("\n## ", readme.index("## Results") + 1)].split())


def test_the_readmes_results_are_the_reports_rows():
    results = readme_results()
    report = (PROJECT_ROOT / "reports" / "fashion_mnist" / "results.md").read_text(encoding="utf-8")
    quoted = QUOTED.findall(results)
    assert len(quoted) >= 8
    assert [q for q in quoted if q not in report_rows()] == []
    tally = re.search(r"The write-up's (\d+) claimed differences\*\*: ([^.]+)\.", report)
    assert f"Of the write-up's {tally[1]} claimed differences: {tally[2]}." in results


def test_the_readmes_tally_and_seeds_are_the_reports():
    report = (PROJECT_ROOT / "reports" / "fashion_mnist" / "results.md").read_text(encoding="utf-8")
    counts = re.search(r"### Final test accuracy\s+\d+ rows: ([^.]+)\.", report)[1]
    reading = {word: number for number, word in (part.split(" ", 1) for part in counts.split("; "))}
    results = readme_results()
    assert (f"In all: {reading.get('helps', 0)} rows help, {reading.get('hurts', 0)} hurt, "
            f"{reading.get('no effect', 0)} show no effect, {reading.get('unresolved', 0)} stay unresolved") in results
    assert re.search(re.escape(f"(seeds: {re.search(r'Seeds: ([^.]+)[.]', report)[1]}") + "[;)]", results)


def test_the_readmes_rule_pairs_are_the_reports():
    """The README quotes every pair the report reads 'depends on the rule' and names the unresolved ones."""
    report = (PROJECT_ROOT / "reports" / "fashion_mnist" / "results.md").read_text(encoding="utf-8")
    pairs = {row["technique"]: row for table in tables(report) for row in table
             if "change: first − second [adjusted CI]" in row}
    results = readme_results()
    sentence = results[results.index("**Depends on the budget and checkpoint rule**"):results.index("In all:")]
    quoted = dict(QUOTED.findall(sentence))
    depends = {label for label, row in pairs.items() if row["reading"].startswith("**depends")}
    assert quoted.keys() == depends
    assert all(pairs[label]["change: first − second [adjusted CI]"] == change for label, change in quoted.items())
    named = re.search(r"[.;] ([^.;]+) (?:is|are) unresolved\.", sentence)[1].replace(" and ", ", ").split(", ")
    unresolved = {label for label, row in pairs.items() if row["reading"] == "**unresolved**"}
    assert sorted(next(label for label in unresolved if label.startswith(name)) for name in named) == sorted(unresolved)
