"""The inference procedure's error rates and power on this study's design, by simulation (ch11/report/calibration.py):
the design as committed and with every run at ten seeds. Prints the numbers docs/statistics.md quotes.

Usage: python bench/calibration.py [--reps 1000] [--dataset fashion_mnist]
"""
from __future__ import annotations

import argparse

from ch11 import params as params_mod
from ch11.report import calibration as cal, claims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--dataset", default="fashion_mnist")
    args = parser.parse_args()
    params, delta = params_mod.load(), claims.load().delta
    print("design | truth | FWER (confirmatory) | FDR (exploratory) | power (|true Δ| >= δ) | read 'no effect' "
          "| FWER (rule pairs)")
    for name, seeds in (("as committed", None), ("every run at seeds 1-10", list(range(1, 11)))):
        design = cal.study_design(params, args.dataset, seeds)
        for null in (True, False):
            r = cal.simulate(design, args.reps, null, delta, seed=1)
            power = "— | —" if null else f"{r.power:.2f} | {r.false_no_effect:.3f}"
            truth = "null" if null else "measured means"
            print(f"{name} | {truth} | {r.fwer_confirmatory:.3f} ± {r.mc_error(r.fwer_confirmatory):.3f}"
                  f" | {r.fdr_exploratory:.3f} ± {r.mc_error(r.fdr_exploratory):.3f} | {power}"
                  f" | {r.fwer_rule_pairs:.3f} ± {r.mc_error(r.fwer_rule_pairs):.3f}")
    print(f"({args.reps} simulated studies each; ± = Monte-Carlo standard error)")


if __name__ == "__main__":
    main()
