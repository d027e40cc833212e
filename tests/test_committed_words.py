"""The committed results say what their intervals say: every reading and claim verdict in effects.json and
results.md is the word the rules give for the interval printed beside it (ch11/report/verdicts.py), and every
adjusted CI excludes 0 exactly when its adjusted p is below alpha."""
from __future__ import annotations

import json
import re

from ch11 import paths
from ch11.report import verdicts as v
from tests.helpers import PROJECT_ROOT

DATASET = "fashion_mnist"
NUMBER = r"([+-−]?\d+\.\d+)"
INTERVAL = re.compile(rf"{NUMBER} \[{NUMBER}, {NUMBER}\]")


def effects() -> dict:
    return json.loads((PROJECT_ROOT / paths.effects(DATASET)).read_text())


def tables(markdown: str) -> list[list[dict]]:
    """Every markdown table of ``markdown`` as rows of {column: cell}."""
    found, lines = [], markdown.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("| ") and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in line.strip("|").split(" | ")]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("| "):
                    break
                rows.append(dict(zip(header, (c.strip() for c in row.strip("|").split(" | ")))))
            found.append(rows)
    return found


def printed(cell: str) -> tuple[float, float, float] | None:
    match = INTERVAL.search(cell)
    return tuple(float(x.replace("−", "-")) for x in match.groups()) if match else None


def test_effects_json_words_follow_their_intervals():
    found = effects()
    for key, c in found["comparisons"].items():
        if c["diff"] is None:
            continue
        assert (c["ci_low"] > 0 or c["ci_high"] < 0) == (c["p_adj"] < found["alpha"]), key
        if c.get("reading") not in (None, v.DIVERGES, v.NOT_TESTED):
            assert v.effect_reading(c["ci_low"], c["ci_high"], found["delta"]) == c["reading"], key
        assert c["family"] in ("confirmatory", "exploratory"), key
    for pair in found["rule_pairs"]:
        if pair["diff"] is not None:
            assert v.rule_reading(pair["ci_low"], pair["ci_high"], found["delta"]) == pair["reading"], pair
            assert (pair["ci_low"] > 0 or pair["ci_high"] < 0) == (pair["p_adj"] < found["alpha"]), pair


def test_results_md_words_follow_the_intervals_printed_beside_them():
    text = (PROJECT_ROOT / paths.report_dir(DATASET) / "results.md").read_text()
    delta = effects()["delta"]
    checked = 0
    for rows in tables(text):
        for row in rows:
            if "reading" in row and (numbers := printed(row.get("change: first − second [adjusted CI]", ""))):
                assert v.rule_reading(*numbers[1:], delta) == row["reading"].strip("*"), row
                assert (numbers[1] > 0 or numbers[2] < 0) == (float(row["p (adj.)"]) < effects()["alpha"]), row
                checked += 1
            if "reading" in row and (numbers := printed(row.get("Δ [adjusted CI]", ""))):
                word = row["reading"].strip("*")
                if word not in (v.DIVERGES, v.NOT_TESTED):
                    assert v.effect_reading(*numbers[1:], delta) == word, row
                    checked += 1
            if "verdict" in row and (numbers := printed(row.get("ours: Δ [adjusted CI]", ""))):
                word, claimed = row["verdict"].strip("*"), row["the write-up"]
                if word == v.NOT_TESTED:
                    continue
                sign = -1 if claimed.startswith(("-", "A <")) else 1
                size = None if claimed.startswith("A ") else float(claimed.split()[0])
                assert v.claim_verdict(*numbers[1:], sign, size, delta) == word, row
                # a claimed size inside ±δ cannot be refuted as a meaningful effect: the row says so
                assert (size is not None and abs(size) < delta) == ("is itself inside" in row.get("note", "")), row
                checked += 1
    assert checked >= 48
