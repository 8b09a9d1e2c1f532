"""Is a grid run with changed settings within one seed's noise of a grid with several seeds of the old settings?

    python benchmarks/within_noise.py --candidate docs/results-standin/facemask-cut-seed0 \
        --reference docs/results-standin/calibration/facemask12k
    python benchmarks/within_noise.py --candidate results/cut --reference results/cal-12k --ratios 0,30

A profile change (fewer iterations, another regularisation interval) alters results, so it may only enter a profile
when its cells differ from the old ones by no more than the old ones differ between seeds. Per model and metric,
over the ratios (``--ratios``, default all) where the reference has all its seeds (unfiltered cells only):

- ``paired``: every candidate cell against the reference cell of the same ratio and seed (same split, same evaluation
  classifier): the mean of |candidate - reference| over these cells, and the mean signed difference (a systematic
  shift shows here).
- ``noise``: for every pair of reference seeds (a, b), the mean over the ratios of |x_a(r) - x_b(r)|; the largest
  pair is the bound and the mean of the pairs is printed beside it. It holds the split's and the classifier's noise
  as well as training's, which the paired difference does not, so it is a generous bound: read the shift too.
- ``in range``: the candidate cells whose value lies within [min, max] of the reference seeds at that ratio.
- verdict ``within`` when paired <= the largest seed pair, else ``OUTSIDE``.

With ``--ratios`` a second table gives each ratio's mean ± 95 % t-interval over seeds, candidate and reference.
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
from bench.errors import BenchError  # noqa: E402
from bench.report import mean_ci  # noqa: E402

METRICS = ("pct_inliers", "recall", "precision", "fd_classifier", "robustness")
REFERENCES = ("replay", "replay-inliers")


@dataclass(frozen=True)
class Comparison:
    model: str
    metric: str
    cells: int  # (ratio, seed) pairs compared
    paired_mad: float
    paired_shift: float
    noise_max: float
    noise_mean: float
    in_range: int

    @property
    def within(self) -> bool:
        return self.paired_mad <= self.noise_max


def unfiltered(out: Path, dataset: str, variant: str = "") -> pd.DataFrame:
    """The cells of ``dataset`` run with the profile's defaults, or with the one non-default setting ``variant``
    (e.g. ``precision=bf16``)."""
    results = store.ResultsStore(out)
    if not results.runs_csv.exists() and not results.cells_dir.is_dir():
        raise BenchError(f"{out} is not a results folder (no runs.csv, no cells/): pass the --out of a bench run")
    df = store.read_frame(out)
    if df.empty or dataset not in set(df["dataset"]):
        raise BenchError(
            f"{out} holds no '{dataset}' cells: choose --dataset from {sorted(set(df.get('dataset', [])))}"
        )
    variants = df["variant"].fillna("").astype(str) if "variant" in df else pd.Series("", index=df.index)
    return df[(variants == variant) & (df["dataset"] == dataset)]


def mad(a: pd.Series, b: pd.Series) -> float:
    return float((a - b).abs().mean())


def compare(
    cand: pd.DataFrame, ref: pd.DataFrame, model: str, metric: str, ratios: set[float] | None = None
) -> Comparison | None:
    """Every candidate cell against the reference cell of the same ratio and seed, over the ratios (or ``ratios``)
    where the reference has every one of its seeds; None where there is nothing to pair or fewer than two seeds."""
    table = ref[ref.model == model].pivot_table(index="ratio", columns="seed", values=metric, aggfunc="first")
    c = cand[cand.model == model].pivot_table(index="ratio", columns="seed", values=metric, aggfunc="first")
    shared = set(table.dropna().index) & set(c.index) & (set(ratios) if ratios is not None else set(c.index))
    seeds = [s for s in c.columns if s in table.columns]
    if len(table.columns) < 2 or not shared or not seeds:
        return None
    table, c = table.loc[sorted(shared)].astype(float), c.loc[sorted(shared), seeds].astype(float)
    diffs = (c - table[seeds]).stack().dropna()  # one per (ratio, seed) that both have
    if diffs.empty:
        return None
    pairs = [mad(table[a], table[b]) for a, b in itertools.combinations(table.columns, 2)]
    inside = c.ge(table.min(axis=1), axis=0) & c.le(table.max(axis=1), axis=0)
    return Comparison(model, metric, len(diffs), float(diffs.abs().mean()), float(diffs.mean()), max(pairs),
                      sum(pairs) / len(pairs), int(inside.stack().loc[diffs.index].sum()))  # fmt: skip


def interval(values: pd.Series) -> str:
    m, hw, n = mean_ci(values)
    return f"{m:.3g}" + ("" if hw != hw else f" ± {hw:.2g}") + f" ({n})"


def main() -> None:
    try:
        run()
    except BenchError as e:  # bad input: one line, exit 2
        print(f"within_noise: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def run() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--candidate", type=Path, required=True, help="results folder of the changed settings (one or more seeds)"
    )
    ap.add_argument("--reference", type=Path, required=True, help="results folder with >= 2 seeds of the old settings")
    ap.add_argument("--dataset", default="facemask")
    ap.add_argument("--metrics", default=",".join(METRICS))
    ap.add_argument("--ratios", default="", help="compare only these ratios, e.g. 0,30 (default: all both have)")
    ap.add_argument(
        "--candidate-variant",
        default="",
        help="the candidate's variant label, e.g. precision=bf16 (default: the profile's defaults)",
    )
    args = ap.parse_args()
    cand = unfiltered(args.candidate, args.dataset, args.candidate_variant)
    ref = unfiltered(args.reference, args.dataset)
    metrics = [m for m in args.metrics.split(",") if m]
    unknown = [m for m in metrics if m not in store.NUMERIC]
    if unknown:
        raise BenchError(f"--metrics: unknown {', '.join(unknown)}; choose from {', '.join(sorted(store.NUMERIC))}")
    try:
        ratios = {float(r) for r in args.ratios.split(",") if r} or None
    except ValueError:
        raise BenchError(f"--ratios: '{args.ratios}' is not a comma list of percentages, e.g. 0,30") from None
    seeds = {name: ", ".join(str(int(s)) for s in sorted(df.seed.unique())) for name, df in (("c", cand), ("r", ref))}
    print(f"candidate {args.candidate} (seed {seeds['c']}), reference {args.reference} (seeds {seeds['r']}), "
          f"dataset {args.dataset}")  # fmt: skip
    for name in REFERENCES:  # unchanged settings: the same digest must give the same numbers
        both = cand[cand.model == name].merge(ref[ref.model == name], on=["ratio", "seed"], suffixes=("", "_ref"))
        same = (both.config_digest == both.config_digest_ref) & (both.pct_inliers == both.pct_inliers_ref)
        if len(both):
            print(f"check: {name}: {int(same.sum())} of {len(both)} cells identical to the reference's")
    print("\n| model | metric | cells | paired mean abs diff | mean shift | seed pairs: max / mean | in seed range "
          "| verdict |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    models = sorted(m for m in cand.model.unique() if m not in REFERENCES)
    outside = 0
    for model in models:
        for metric in metrics:
            r = compare(cand, ref, model, metric, ratios)
            if r is None:
                continue
            outside += not r.within
            d = 1 if metric == "pct_inliers" else 3
            print(f"| {model} | {metric} | {r.cells} | {r.paired_mad:.{d}f} | {r.paired_shift:+.{d}f} | "
                  f"{r.noise_max:.{d}f} / {r.noise_mean:.{d}f} | {r.in_range} of {r.cells} | "
                  f"{'within' if r.within else 'OUTSIDE'} |")  # fmt: skip
    print(f"\n{outside} model-metric pair(s) outside one seed's noise")
    if ratios:
        print(
            "\n| model | ratio | metric | candidate mean ± CI (seeds) | reference mean ± CI (seeds) |\n|---|---|---|---|---|"
        )
        for model in models:
            for ratio in sorted(ratios):
                for metric in metrics:
                    cells = [df[(df.model == model) & (df.ratio == ratio)][metric].dropna().astype(float)
                             for df in (cand, ref)]  # fmt: skip
                    if all(len(v) for v in cells):
                        print(f"| {model} | {ratio:g} | {metric} | {' | '.join(interval(v) for v in cells)} |")


if __name__ == "__main__":
    main()
