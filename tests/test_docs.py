"""The docs' figures are the committed files' (issue 29: docs that cannot drift silently). A count, time or spread the
README or docs/ quote from params.yaml, the timing, eval or history files, dvc.lock or another doc is recomputed
here: from today's files, or, for a past measurement, from the files of the commit the sentence names (skipped where
this clone lacks that history). Every relative link and anchor resolves. A re-run that moves a figure fails here
until the docs follow; the results' quotes are tests/test_readme.py's."""
from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from ch11 import params as params_module
from flows.estimates import seed_times
from tests.helpers import PROJECT_ROOT, dvc_lock

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
TIMING = "metrics/fashion_mnist/timing"


def text(path: Path) -> str:
    """``path``'s prose with its line breaks and runs of spaces as single spaces."""
    return " ".join(path.read_text(encoding="utf-8").split())


def quoted(pattern: str, path: Path) -> re.Match:
    found = re.search(pattern, text(path))
    assert found, f"{path.name} no longer says /{pattern}/: reword this test with the sentence"
    return found


def study():
    """params.yaml and the runs of its datasets (what `make repro` trains)."""
    p = params_module.load(PROJECT_ROOT / "params.yaml")
    return p, [run for run in p.run_names() if p.dataset_of(run) in p.datasets]


def git_show(commit: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{commit}:{path}"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          check=True, timeout=60).stdout


def timing_at(commit: str) -> dict[str, list[float]]:
    """Each run's recorded seconds per seed in the timing files of ``commit`` (skips where it is not here)."""
    if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=PROJECT_ROOT,
                      capture_output=True, timeout=60).returncode:
        pytest.skip(f"commit {commit}, which the docs name, is not in this clone (shallow?): git fetch --unshallow")
    names = subprocess.run(["git", "ls-tree", "--name-only", commit, f"{TIMING}/"], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, check=True, timeout=60).stdout.split()
    return {Path(name).stem: [seed["train_time_s"] for seed in json.loads(git_show(commit, name)).values()]
            for name in names}


def sittings() -> list[tuple[int, int, str]]:
    """performance.md's edit-latency sittings: (serial s, 2 workers s, their printed ratio)."""
    return [(int(one), int(two), ratio) for one, two, ratio in
            re.findall(r"\*\*(\d+) s vs (\d+) s: (0\.\d+)×\*\*", text(PROJECT_ROOT / "docs" / "performance.md"))]


def test_the_readmes_study_cost_is_params_yaml_and_the_timing_files():
    p, runs = study()
    times = seed_times(PROJECT_ROOT)
    assert [run for run in runs if run not in times] == [], "runs without a timing file: the cost is unknown"
    hours = sum(sum(times[run]) for run in runs) / 3600
    ratios = [two / one for one, two, _ in sittings()]
    cost = quoted(r"trains everything: (\d+) trainings, (\d+) seeds, \*\*~([\d.]+) h of training by the recorded "
                  r"timings \(`metrics/fashion_mnist/timing/`\), ~([\d.]+)-([\d.]+) h wall with two seeds at once\*\* "
                  r"\(the sum × ([\d.]+)-([\d.]+), the share of the serial time two at once took",
                  PROJECT_ROOT / "README.md")
    assert len(ratios) == 3 and cost.groups() == (
        str(len(runs)), str(sum(len(p.seeds_of(run)) for run in runs)), f"{hours:.1f}",
        f"{hours * min(ratios):.1f}", f"{hours * max(ratios):.1f}", f"{min(ratios):.2f}", f"{max(ratios):.2f}")


def test_a_timing_sum_quoted_at_a_commit_is_that_commits_timing_files():
    sums = [found for doc in DOCS for found in re.findall(r"(\d+) min \(timing files at ([0-9a-f]{7,40})\)",
                                                           text(doc))]
    assert len(sums) >= 2
    for minutes, commit in sums:
        assert round(sum(map(sum, timing_at(commit).values())) / 60) == int(minutes), f"at {commit}"


def test_the_retraining_paragraph_counts_what_its_commit_recorded():
    said = quoted(r"\(same VM, the flow at 2, ([0-9a-f]{7,40})\): .*? (\d+) seed-trainings, .*?a dropout seed "
                  r"([\d.]+)-([\d.]+) min .*?a 30-epoch clipping seed (\d+)-(\d+) s, by the timing files at \1\)\. "
                  r"The other (\d+) train and (\d+) evaluate stages were recorded unchanged",
                  PROJECT_ROOT / "docs" / "performance.md")
    commit = said[1]
    times = timing_at(commit)
    before, after = (yaml.safe_load(git_show(rev, "dvc.lock"))["stages"] for rev in (f"{commit}~1", commit))
    moved = [stage for stage in after if stage in before and before[stage] != after[stage]]
    retrained = [stage.partition("@")[2] for stage in moved
                 if stage.startswith("train") and before[stage]["outs"] != after[stage]["outs"]]
    dropout = [t for run in retrained if "dropout" in run for t in times[run]]
    clipping = [t for run in retrained if "clip" in run for t in times[run]]
    assert said.groups()[1:] == (
        str(sum(len(times[run]) for run in retrained)), f"{min(dropout) / 60:.1f}", f"{max(dropout) / 60:.0f}",
        f"{min(clipping):.0f}", f"{max(clipping):.0f}",
        str(len([s for s in moved if s.startswith("train")]) - len(retrained)),
        str(len([s for s in moved if s.startswith("evaluate") and s.partition("@")[2] not in retrained])))


def test_the_stage_count_is_dvc_locks():
    said = quoted(r"among the (\d+) stages of dvc\.lock", PROJECT_ROOT / "docs" / "performance.md")
    assert int(said[1]) == len(dvc_lock(PROJECT_ROOT))


def test_a_seed_count_beside_a_run_is_params_yamls():
    p, _ = study()
    checked = 0
    for doc in DOCS:
        raw = doc.read_text(encoding="utf-8")
        for run, count in re.findall(r"`([a-z0-9_]+)`(?: alone)? \((\d+) seeds(?! then)", " ".join(raw.split())):
            assert len(p.seeds_of(run)) == int(count), f"{doc.name}: {run} ({count} seeds)"
            checked += 1
        for block in re.split(r"\n\s*\n|\n- ", raw):   # a bullet or paragraph measured "(ten seeds, <date>)"
            if "(ten seeds," in block:
                runs = [name for name in re.findall(r"`([a-z0-9_]+)`", block) if name in p.run_names()]
                assert runs and all(len(p.seeds_of(run)) == 10 for run in runs), f"{doc.name}: {runs}"
                checked += len(runs)
    assert checked >= 5


def test_a_cost_estimated_from_a_runs_seed_times_is_its_timing_files():
    said = quoted(r"about (\d+) min of training for (\d+) seeds at 30 epochs, by `(\w+)`'s recorded seed times",
                  PROJECT_ROOT / "docs" / "differences.md")
    times = seed_times(PROJECT_ROOT)[said[3]]
    assert round(int(said[2]) * sum(times) / len(times) / 60) == int(said[1])


def test_a_runs_cost_quoted_at_a_commit_is_that_commits_timing_file():
    said = [found for doc in DOCS for found in re.findall(
        r"(\d+) seeds of (\d+)-(\d+) s, ([\d,]+) s in all \(`metrics/fashion_mnist/timing/(\w+)\.json`, "
        r"([0-9a-f]{7,40})[,)]", text(doc))]
    assert len(said) >= 3
    for *numbers, run, commit in said:
        times = timing_at(commit)[run]
        assert numbers == [str(len(times)), f"{min(times):.0f}", f"{max(times):.0f}", f"{sum(times):,.0f}"], \
            f"{run} at {commit}"


def test_the_readmes_edit_latency_is_performance_mds_sittings():
    measured = sittings()
    assert all(f"{two / one:.2f}" == ratio for one, two, ratio in measured)
    readme = PROJECT_ROOT / "README.md"
    minutes = quoted(r"`e04_elu` alone \(10 seeds; (\d+)-(\d+) min with 2 workers on a 2-core VM in three sittings",
                     readme)
    ratios = quoted(r"took ([\d.]+)×, ([\d.]+)× and ([\d.]+)× the serial time with 2 workers in three sittings",
                    readme)
    two_workers = [two / 60 for _, two, _ in measured]
    assert len(measured) == 3 and minutes.groups() == (f"{min(two_workers):.0f}", f"{max(two_workers):.0f}")
    assert sorted(ratios.groups()) == sorted(ratio for _, _, ratio in measured)


def seed_accuracy(run: str) -> dict[str, float]:
    """``run``'s test accuracy per seed, in points (its committed eval file)."""
    seeds = json.loads((PROJECT_ROOT / "metrics" / "fashion_mnist" / "eval" / f"{run}.json").read_text())["per_seed"]
    return {seed: 100 * value["test_accuracy"] for seed, value in seeds.items()}


def test_the_spreads_statistics_md_quotes_are_the_eval_files():
    said = quoted(r"`(\w+)`'s standard deviation is ([\d.]+) points, `(\w+)`'s ([\d.]+),.*?over their seeds, "
                  r"`(\w+)`'s test accuracy correlates with `(\w+)`'s at ([\d.]+), `(\w+)`'s at ([\d.]+)\)",
                  PROJECT_ROOT / "docs" / "statistics.md")
    noisy, quiet, control = seed_accuracy(said[1]), seed_accuracy(said[3]), seed_accuracy(said[6])
    close, loose = seed_accuracy(said[5]), seed_accuracy(said[8])
    assert said[2] == f"{np.std(list(noisy.values()), ddof=1):.2f}" and float(said[2]) > float(said[4])
    assert said[4] == f"{np.std(list(quiet.values()), ddof=1):.2f}"
    for run, correlation in ((close, said[7]), (loose, said[9])):
        seeds = sorted(run.keys() & control.keys())
        assert f"{np.corrcoef([run[s] for s in seeds], [control[s] for s in seeds])[0, 1]:.2f}" == correlation
    assert float(said[7]) > float(said[9])


def test_the_block_models_price_statistics_md_quotes_is_the_committed_files():
    """Each pair statistics.md quotes: the seeds' correlation and a paired t-interval (scipy) from the eval files,
    the model's interval and level from effects.json."""
    said = re.findall(r"`(\w+)` − `(\w+)` \(r = ([\d.]+)\): model \[([-+.\d]+), ([-+.\d]+)\] at ([\d.]+)[^;]*; "
                      r"paired t \[([-+.\d]+), ([-+.\d]+)\]", text(PROJECT_ROOT / "docs" / "statistics.md"))
    assert len(said) == 2, "statistics.md no longer quotes the two pairs: reword this test with the sentence"
    comparisons = json.loads((PROJECT_ROOT / "metrics" / "fashion_mnist" / "effects.json").read_text())["comparisons"]
    for a, b, r, low, high, level, paired_low, paired_high in said:
        row = comparisons[f"{a}-vs-{b}"]
        assert [f"{row['ci_low']:+.2f}", f"{row['ci_high']:+.2f}", f"{row['ci_level']:.5f}"] == [low, high, level]
        x, y = seed_accuracy(a), seed_accuracy(b)
        seeds = sorted(x.keys() & y.keys())
        assert f"{np.corrcoef([x[s] for s in seeds], [y[s] for s in seeds])[0, 1]:.2f}" == r
        ci = stats.ttest_rel([x[s] for s in seeds], [y[s] for s in seeds]).confidence_interval(float(row["ci_level"]))
        assert [f"{ci.low:+.2f}", f"{ci.high:+.2f}"] == [paired_low, paired_high]
        assert ci.high - ci.low < float(high) - float(low)   # the price: pairing gives the narrower interval


def mean_validation_curve(run: str) -> list[float]:
    """``run``'s validation accuracy per epoch in points, the mean over its seeds' committed histories."""
    histories = [list(csv.DictReader(path.open(encoding="utf-8")))
                 for path in (PROJECT_ROOT / "metrics" / "fashion_mnist" / "train" / run).glob("history-*.csv")]
    epochs = min(map(len, histories))
    return [100 * float(np.mean([float(h[e]["val_accuracy"]) for h in histories])) for e in range(epochs)]


def test_the_write_ups_level_sits_on_the_mean_validation_curves_differences_md_quotes():
    said = quoted(r"The write-up's ([\d.]+) % \(and its ELU ([\d.]+)\) lies on our mean validation curves between "
                  r"epochs 1 and 2 \(mean over seeds after epochs 1 and 2: ([^;]+);.*?its SELU ([\d.]+) does not "
                  r"\(`(\w+)` is at ([\d.]+) after epoch 1\)", PROJECT_ROOT / "docs" / "differences.md")
    curves = re.findall(r"`(\w+)` ([\d.]+) → ([\d.]+)", said[3])
    assert len(curves) == 2
    for (run, first, second), write_up in zip(curves, (said[1], said[2])):
        assert [first, second] == [f"{v:.2f}" for v in mean_validation_curve(run)[:2]], run
        assert float(first) < float(write_up) < float(second), run
    assert said[6] == f"{mean_validation_curve(said[5])[0]:.2f}" and float(said[6]) > float(said[4])


def anchors(markdown: Path) -> set[str]:
    """GitHub's anchors for ``markdown``'s headings: lower case, punctuation dropped, spaces as hyphens."""
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in markdown.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def test_every_relative_link_and_anchor_resolves():
    broken, checked = [], 0
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            checked += 1
            if not file.is_file() or (anchor and anchor not in anchors(file)):
                broken.append(f"{doc.name}: {target}")
    assert checked >= 5
    assert broken == []


def test_the_readme_names_every_doc():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert [doc.name for doc in DOCS[1:] if doc.name not in readme] == []
