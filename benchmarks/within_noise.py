"""Is a grid run with changed settings within one seed's noise of a grid with several seeds of the old settings?

    python benchmarks/within_noise.py --candidate results/grid23-12k-cut-s0 --reference results/cal-12k

A profile change (fewer iterations, another regularisation interval) alters results, so it may only enter a profile
when its cells differ from the old ones by no more than the old ones differ between seeds. Per model and metric,
over the ratios that both grids have (unfiltered cells only):

- ``noise``: for every pair of reference seeds (a, b), the mean over ratios of |x_a(r) - x_b(r)|; the largest pair is
  the bound and the mean of the pairs is printed beside it.
- ``paired``: the mean over ratios of |candidate(r) - reference(r)| for the reference seed equal to the candidate's
  seed (same split, same evaluation classifier), and the mean signed difference (candidate - reference: a systematic
  shift shows here).
- ``in range``: the cells whose candidate value lies within [min, max] of the reference seeds.
- verdict ``within`` when paired <= the largest seed pair, else ``OUTSIDE``.

Reference cells (``replay``, ``replay-inliers``) whose settings did not change reproduce bit for bit; the script
prints them as a check that both grids saw the same splits and classifiers.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import store  # noqa: E402

METRICS = ("pct_inliers", "recall", "precision", "fd_classifier", "robustness")
REFERENCES = ("replay", "replay-inliers")


@dataclass(frozen=True)
class Comparison:
    model: str
    metric: str
    ratios: int
    paired_mad: float
    paired_shift: float
    noise_max: float
    noise_mean: float
    in_range: int

    @property
    def within(self) -> bool:
        return self.paired_mad <= self.noise_max


def unfiltered(out: Path, dataset: str) -> pd.DataFrame:
    df = store.read_frame(out)
    variant = df["variant"].fillna("").astype(str) if "variant" in df else pd.Series("", index=df.index)
    return df[(variant == "") & (df["dataset"] == dataset)]


def mad(a: pd.Series, b: pd.Series) -> float:
    return float((a - b).abs().mean())


def compare(cand: pd.DataFrame, ref: pd.DataFrame, model: str, metric: str) -> Comparison | None:
    c = cand[cand.model == model]
    if c.empty or c.seed.nunique() != 1:
        return None
    seed = int(c.seed.iloc[0])
    table = ref[ref.model == model].pivot_table(index="ratio", columns="seed", values=metric, aggfunc="first")
    c = c.set_index("ratio")[metric].astype(float)
    ratios = sorted(set(table.dropna().index) & set(c.dropna().index))
    if seed not in table.columns or len(table.columns) < 2 or not ratios:
        return None
    table, c = table.loc[ratios].astype(float), c.loc[ratios]
    pairs = [mad(table[a], table[b]) for a, b in itertools.combinations(table.columns, 2)]
    inside = ((c >= table.min(axis=1)) & (c <= table.max(axis=1))).sum()
    return Comparison(model, metric, len(ratios), mad(c, table[seed]), float((c - table[seed]).mean()), max(pairs),
                      sum(pairs) / len(pairs), int(inside))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidate", type=Path, required=True, help="results folder of the changed settings (one seed)")
    ap.add_argument("--reference", type=Path, required=True, help="results folder with >= 2 seeds of the old settings")
    ap.add_argument("--dataset", default="facemask")
    ap.add_argument("--metrics", default=",".join(METRICS))
    args = ap.parse_args()
    cand, ref = unfiltered(args.candidate, args.dataset), unfiltered(args.reference, args.dataset)
    metrics = [m for m in args.metrics.split(",") if m]
    seeds = {name: ", ".join(str(int(s)) for s in sorted(df.seed.unique())) for name, df in (("c", cand), ("r", ref))}
    print(f"candidate {args.candidate} (seed {seeds['c']}), reference {args.reference} (seeds {seeds['r']}), "
          f"dataset {args.dataset}")  # fmt: skip
    for name in REFERENCES:  # unchanged settings: the same digest must give the same numbers
        both = cand[cand.model == name].merge(ref[ref.model == name], on=["ratio", "seed"], suffixes=("", "_ref"))
        same = (both.config_digest == both.config_digest_ref) & (both.pct_inliers == both.pct_inliers_ref)
        if len(both):
            print(f"check: {name}: {int(same.sum())} of {len(both)} cells identical to the reference's")
    print("\n| model | metric | ratios | paired mean abs diff | mean shift | seed pairs: max / mean | in seed range "
          "| verdict |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    outside = 0
    for model in [m for m in cand.model.unique() if m not in REFERENCES]:
        for metric in metrics:
            r = compare(cand, ref, model, metric)
            if r is None:
                continue
            outside += not r.within
            d = 1 if metric == "pct_inliers" else 3
            print(f"| {model} | {metric} | {r.ratios} | {r.paired_mad:.{d}f} | {r.paired_shift:+.{d}f} | "
                  f"{r.noise_max:.{d}f} / {r.noise_mean:.{d}f} | {r.in_range} of {r.ratios} | "
                  f"{'within' if r.within else 'OUTSIDE'} |")  # fmt: skip
    print(f"\n{outside} model-metric pair(s) outside one seed's noise")


if __name__ == "__main__":
    main()
