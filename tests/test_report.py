"""The report stage end to end on a hand-made metrics tree (tests/report_project.py): aggregate, then report, as
subprocesses; what results.md, effects.json, the curves and the figures say."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from ch11.errors import PipelineError
from ch11.report import claims, findings as fd, text
from tests.helpers import PROJECT_ROOT
from tests.report_project import PNG_MAGIC, SPECS, claims_table, effects_table, make_project, \
    run_stage, section, table_row


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("project"))
    for stage in ("stages.aggregate", "stages.report"):
        done = run_stage(root, stage, "fashion_mnist")
        assert done.returncode == 0, done.stderr
    return root / "reports" / "fashion_mnist"


def test_the_answer_comes_first_effects_table_then_forest_plot(report):
    text = (report / "results.md").read_text()
    first_table = next(line for line in text.splitlines() if line.startswith("| "))
    assert first_table.startswith("| reading | technique | exp. | Δ [adjusted CI] | p (adj.) | family | n |")
    assert text.index("## The answer") < text.index("- **Helps** final test accuracy") \
        < text.index("### Final test accuracy") \
        < text.index("### Speed of learning") < text.index("![Forest plot of the effects]") \
        < text.index("## The write-up's claims") < text.index("## How to read")
    answer = text[text.index("## The answer"):text.index("### Final test accuracy")]
    helps = next(line for line in answer.splitlines() if line.startswith("- **Helps**"))
    assert "best practices combined, the write-up's layer order (vs baseline) +2.45" in helps
    assert f"**No measurable difference** (CI inside ±{claims.load().delta:g} pts): SELU" in answer
    assert "Seeds: 1–5 (8 runs). Backend: tensorflow." in text
    assert "**CIFAR-10**" not in text  # make_project has no CIFAR-10 runs
    assert (report / "figures" / "effects_forest.png").read_bytes()[:8] == PNG_MAGIC


def test_effect_readings_follow_the_numbers_beside_them(report):
    table = effects_table((report / "results.md").read_text())
    same = table_row(table, "**no effect** | SELU, LeCun init")         # identical to the baseline
    assert "+0.00 [+0.00, +0.00]" in same and "| -0.05 |" in same           # the write-up's Δ beside it
    helps = table_row(table, "**helps** | best practices combined, the write-up's layer order")
    assert "| +2.45 [+2." in helps and "| +2.45 |" in helps
    epoch1 = table_row(effects_table((report / "results.md").read_text(), "### Speed of learning"),
                       "**helps** | BN after the activation (vs none)")
    assert "+1.90" in epoch1 and "| n/a |" in epoch1   # the criterion cannot apply after epoch 1
    poor = next(line for line in table.splitlines() if "poor init N(0, 1)" in line)
    assert "`e01_poor_init` diverged in 2 of 5 seeds" in poor  # fewer than half: its others are compared
    order = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| **")]
    assert order == sorted(order, key=lambda r: ["| **helps**", "| **helps, < δ**", "| **no effect**",
                                                  "| **hurts, < δ**", "| **hurts**", "| **unresolved**",
                                                  "| **diverges**"].index(r))


def test_effects_json_holds_the_same_numbers_as_a_plain_output(report):
    effects = json.loads((report.parent.parent / "metrics" / "fashion_mnist" / "effects.json").read_text())
    best = effects["comparisons"]["e13_production_common-vs-baseline_es"]   # a claim and an effect: one entry
    assert best["diff"] == pytest.approx(2.45) and best["reading"] == "helps" and best["verdict"] == "supported"
    assert best["family"] == "confirmatory" and best["p_adj"] < 0.05 < best["ci_low"]
    bn = effects["comparisons"]["e05_bn_after-vs-baseline.epoch1_val_accuracy"]
    assert bn["diff"] == pytest.approx(1.9) and bn["family"] == "confirmatory"
    assert effects["comparisons"]["e05_bn_after-vs-baseline"]["family"] == "exploratory"
    dvc_yaml = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    assert {"metrics/${item}/effects.json": {"cache": False}} in dvc_yaml["stages"]["report"]["do"]["outs"]


def test_claim_verdicts_use_the_vocabulary(report):
    claims = claims_table((report / "results.md").read_text())
    bn = table_row(claims, "5 | BN after activation − no BN")
    assert "+3.20 pts" in bn and "**smaller than claimed**" in bn          # +1.9 measured, CI far from 3.2
    assert "**supported**" in table_row(claims, "12 | best practices − baseline")
    selu = table_row(claims, "4 | SELU − ReLU")    # identical runs: a zero-width CI at 0, inside ±δ
    assert "+0.00 [+0.00, +0.00]" in selu and "**no effect**" in selu
    plateau = table_row(claims, "9 | ReduceLROnPlateau − constant")
    assert "**not tested**" in plateau and "never changed the learning rate" in plateau


def test_the_write_ups_single_numbers_are_apart_and_not_counted(report):
    text = (report / "results.md").read_text()
    part = text[text.index("## The write-up's single numbers"):text.index("## Experiment 1")]
    row = table_row(part, "13 | production (the write-up's order) — test accuracy")
    assert "| 90.22 % |" in row and "| in range |" not in row
    assert "| not tested |" in table_row(part, "13 | production (the write-up's order) — training time")
    assert "| in range |" in table_row(part, "1 | He init — test accuracy")
    assert "`baseline` (He init" in part and "85.00 % (exp. 1)" in part
    assert "90.22" not in claims_table(text)


def test_a_run_still_improving_at_the_end_of_its_budget_is_flagged(report):
    text = (report / "results.md").read_text()  # constructed curves fall in loss to the last epoch
    exp5 = section(text, 5)
    assert "**Still improving at the end of the budget**" in exp5
    assert "`e05_bn_after` (criterion met in 0 of 5 seeds)" in exp5
    table = effects_table(text)
    test_accuracy = next(line for line in table.splitlines() if "| BN after the activation (vs none) |" in line)
    assert "**no** (0/5, 0/5)" in test_accuracy


def test_a_schedule_that_never_changed_the_lr_is_said(report):
    exp9 = section((report / "results.md").read_text(), 9)
    assert "ReduceLROnPlateau lowered the learning rate: `e09_plateau` in 0 of 5 seeds" in exp9


def test_diverged_seeds_are_counted_beside_not_averaged_into_accuracy(report):
    text = (report / "results.md").read_text()
    assert "poor init N(0,1) (`e01_poor_init`, 5 seeds, 5 ep., last weights, 2 diverged)" in section(text, 1)
    checks = claims_table(text)
    row = table_row(checks, "1 | poor init learns nothing")
    assert "2 of 5 diverged; best validation accuracy of the others: 33.6 %, 10.2 %, 10.2 %" in row
    assert "holds in 4 of 5 seeds" in row and "**mixed**" in row


def test_each_experiment_writes_the_data_of_its_grouped_dvc_plot(report):
    bn = pd.read_csv(report / "curves" / "exp05.csv")
    assert list(bn.columns) == ["epoch", "run", "val_accuracy", "seeds"]
    assert set(bn["run"]) == {"no BN", "BN after activation"}  # the experiment's runs present, by label
    first = bn[(bn["run"] == "no BN") & (bn["epoch"] == 1)]
    assert first["val_accuracy"].item() == pytest.approx(80.0) and first["seeds"].item() == 5
    poor = pd.read_csv(report / "curves" / "exp01.csv")
    assert poor[poor["run"] == "poor init N(0,1)"]["seeds"].max() == 3  # diverged seeds are not averaged in


def test_summary_table_lists_every_run(report):
    text = (report / "results.md").read_text()
    summary = text[text.index("## Summary of all runs"):]
    for run in SPECS:
        assert f"| `{run}` |" in summary
    assert table_row(summary, "`e01_poor_init`").endswith("| 5 | 2 |")


def test_figures_exist_and_are_png(report):
    figs = report / "figures"
    expected = {"exp01_accuracy.png", "exp01_learning_curves.png", "exp01_layer_diagnostics.png",
                "exp02_init_variance.png", "exp05_accuracy.png", "exp09_learning_rates.png",
                "exp13_confusion.png", "activation_functions.png", "effects_forest.png"}
    names = {p.name for p in figs.glob("*.png")}
    assert expected <= names
    assert not any(n.startswith(("exp07_", "exp16_")) for n in names)  # runs absent
    for path in figs.glob("*.png"):
        assert path.read_bytes()[:8] == PNG_MAGIC
    text = (report / "results.md").read_text()
    for name in names:
        assert f"(figures/{name})" in text


def test_a_comparison_stated_both_ways_round_is_refused(tmp_path):
    """a − b and b − a are one comparison: stated both ways it would be estimated, adjusted and shown twice."""
    raw = yaml.safe_load(claims.CLAIMS_PATH.read_text(encoding="utf-8"))
    first = raw["effects"][0]
    raw["effects"].append({**first, "a": first["b"], "b": first["a"], "label": "the same, reversed"})
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PipelineError, match="is stated both ways round"):
        claims.load(path)
    assert claims.stated_both_ways(claims.load()) is None


def test_a_1cycle_run_is_left_out_of_the_converged_judgement_its_control_is_not():
    """1cycle anneals to its last epoch by design (n/a); its constant-LR control, still falling, is judged."""
    falling = pd.DataFrame({"val_loss": [1.0, 0.9, 0.8, 0.7]})
    plateau = pd.DataFrame({"val_loss": [1.0, 0.5] + [0.6] * 20})

    def run(name, schedule, history):
        return fd.RunData(name, [1, 2], {1: {}, 2: {}}, {1: history, 2: history}, {}, {}, 30, None, schedule)
    runs = {"cycle": run("cycle", "onecycle", falling), "still": run("still", "constant", falling),
            "done": run("done", "constant", plateau)}
    judged = fd.qualifiers(runs, "cycle", "still", "test_accuracy")
    assert (judged["converged"], judged["converged_seeds"]) == (False, "n/a, 0/2")
    assert fd.qualifiers(runs, "cycle", "done", "test_accuracy")["converged"] is True
    assert fd.qualifiers(runs, "still", "done", "epoch1_val_accuracy")["converged"] is None
    exp = SimpleNamespace(runs={name: name for name in runs}, separate=[])
    assert text.experiment(1, exp, runs, [])["still"] == ["`still` (criterion met in 0 of 2 seeds)"]


def test_the_first_screen_marks_a_reading_smaller_than_delta():
    """A row read 'helps, < δ' is listed under Helps with its qualifier; a plain 'helps' is not marked."""
    rows = [{"label": "big", "diff": 1.2, "reading": "helps"}, {"label": "small", "diff": 0.31, "reading": "helps, < δ"}]
    assert text.listed(rows) == "big +1.20; small +0.31 (< δ)"


def test_an_effect_under_two_rules_gets_its_change_estimated_seed_by_seed():
    """Technique t against baseline b under a fixed budget and under early stopping (configurations equal but for
    the rule): the change of the effect is the per-seed difference of the two effects, here Student's sleep data
    (mean 1.58, 95 % CI [0.70, 2.46] as the only pair estimated); a technique with another configuration is not
    paired, and a pair with a diverged row is not tested (and not counted in the adjustment)."""
    sleep = [1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4]
    seeds = list(range(1, 11))

    def run(name, technique, patience, accuracy):
        evals = {s: {"test_accuracy": x} for s, x in zip(seeds, accuracy)}
        return fd.RunData(name, seeds, evals, {}, {}, {}, 30 if patience is None else 200, patience, "constant",
                          technique)
    runs = {"t_30": run("t_30", "t", None, [0.8 + x / 100 for x in sleep]), "b_30": run("b_30", "b", None, [0.8] * 10),
            "t_es": run("t_es", "t", 15, [0.8] * 10), "b_es": run("b_es", "b", 15, [0.8] * 10),
            "u_es": run("u_es", "u", 15, [0.79] * 10), "u_30": run("u_30", "u", None, [0.79] * 10)}

    def effect(a, b, diff, reading):
        return {"id": f"{a}-vs-{b}", "label": f"{a} (vs {b})", "a": a, "b": b, "metric": "test_accuracy",
                "a_metric": None, "rule": runs[a].rule, "reading": reading, "diff": diff}
    effects = [effect("t_es", "b_es", 0.0, "no effect"), effect("u_es", "b_es", -1.0, "hurts"),
               effect("t_30", "b_30", 1.58, "helps"), effect("u_30", "b_30", None, "diverges")]
    tested, diverged = fd.rule_pairs(effects, runs, 0.5)
    assert (tested["first"]["a"], tested["second"]["a"]) == ("t_30", "t_es")       # the fixed budget first
    assert (tested["diff"], tested["n"], tested["reading"]) == (pytest.approx(1.58), "10", "depends on the rule")
    assert (tested["ci_low"], tested["ci_high"]) == (pytest.approx(0.7001, abs=1e-4), pytest.approx(2.4599, abs=1e-4))
    assert (diverged["first"]["a"], diverged["diff"], diverged["reading"]) == ("u_30", None, "not tested")
    assert text.rule_pair_record(diverged)["Δ under the first rule"] == "— (30 ep., last weights; diverges)"
    assert text.rule_sentence([tested, diverged]) == [
        "**Depends on the budget and checkpoint rule** (one technique under two rules; the change's adjusted CI "
        "excludes 0): t_30 (vs b_30) +1.58 at 30 ep., last weights vs +0.00 at ≤ 200 ep., early stopping, "
        "change +1.58; the other pairs: 1 not tested."]
    assert text.rule_sentence([]) == []
