"""The outlier-share estimate of ``--filter DETECTOR:auto`` against the true r, per detector, stand-in, ratio and seed.

    PYTHONPATH=$PWD python benchmarks/outlier_share.py --detectors mcd --ratios 0,10,20,30 --seeds 0,1,2 \\
        --data facemask12k:facemask=../shared/data/facemask12k --data facemask-synth:facemask=../shared/data/facemask-synth \\
        --out results/share --markdown share.md
    # the occluders stand-in: --data occluders:corrupted=../shared/data/facemask12k/without_mask \\
    #     --set data.corrupted.corruption=occluders

For each split of the ``cpu`` profile (or ``--profile``): the detector's AUC, r-hat with its 95 % bootstrap interval,
precision / recall of dropping the top r (the oracle fraction) and the top r-hat, and the seconds to score and to
estimate. Labels are used only to judge. Scores are cached as a grid's ``--filter`` caches them (``--out`` a grid's
results folder reuses its detector fits, and its later filtered cells reuse the benchmark's); the seconds are those of
the fit that computed them.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import pandas as pd

from bench import api, detectors, filtering
from bench.cli import _overrides as cli_overrides
from bench.outlier_share import estimate_share
from bench.store import ResultsStore


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--detectors", default="mcd")
    p.add_argument("--ratios", default="0,10,20,30")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--data", action="append", required=True, metavar="[LABEL:]DATASET=ROOT")
    p.add_argument("--out", default="results/share")
    p.add_argument("--markdown", default=None)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a profile setting, as bench run takes it (e.g. data.corrupted.corruption=occluders)",
    )
    args = p.parse_args(argv)
    overrides = cli_overrides(args.set)  # bench run's own --set parsing: typed values, one-line error
    cache_dir = ResultsStore(Path(args.out)).cache_dir  # a grid's filter cache: scores computed there are reused
    rows = []
    for item in args.data:
        name, _, root = item.partition("=")
        label, _, dataset = name.rpartition(":")
        for r in (float(x) for x in args.ratios.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                split = api.build_split(
                    dataset, r, seed, profile=args.profile, data_root=root, out=args.out, overrides=overrides
                )
                labels = split.train_is_outlier.bool()
                for det in args.detectors.split(","):
                    spec = filtering.parse(f"{det}:auto")  # the detector at its defaults, as a filter names it
                    scored = filtering.detector_scores(spec, split.train_images, split.split_hash, seed, cache_dir)
                    scores, score_s = scored.scores, scored.seconds if scored.seconds is not None else math.nan
                    t0 = time.perf_counter()
                    est = estimate_share(scores, seed)
                    est_s = time.perf_counter() - t0
                    true = float(labels.float().mean())
                    at_r = detectors.flag_metrics(labels, true, scores=scores)
                    at_hat = detectors.flag_metrics(labels, est.share, scores=scores)
                    rows.append({"data": label or dataset, "detector": det, "r": r, "seed": seed, "true": true,
                                 "estimate": est.share, "low": est.low, "high": est.high, "auc": at_r["auc"],
                                 "p_at_r": at_r["precision"], "r_at_r": at_r["recall"],
                                 "p_at_hat": at_hat["precision"], "r_at_hat": at_hat["recall"],
                                 "score_s": score_s, "estimate_s": est_s})  # fmt: skip
                    print(
                        f"{label or dataset} {det} r={r:g} s{seed}: r-hat {est.words()}, AUC {at_r['auc']}",
                        file=sys.stderr,
                    )
    df = pd.DataFrame(rows)
    lines = ["| data | detector | r (%) | r-hat per seed (%) [95 % interval] | AUC | P / R at f = r | P / R at f = r-hat | "
             "s score + estimate |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def pr(p, r):
        return "-" if p != p or p is None else f"{p:.2f} / {r:.2f}" if r == r and r is not None else f"{p:.2f} / -"

    def seconds(g):  # the scoring fits' own seconds (cached scores keep them; older caches did not)
        s = (g.score_s + g.estimate_s).mean()
        return "-" if s != s else f"{s:.1f}"

    for (data, det, r), g in df.groupby(["data", "detector", "r"], sort=False):
        hats = "; ".join(
            f"{100 * e:.1f} [{100 * lo:.1f}-{100 * hi:.1f}]" for e, lo, hi in zip(g.estimate, g.low, g.high)
        )
        auc = g.auc.dropna()
        lines.append(f"| {data} | {det} | {r:g} | {hats} | {auc.mean():.3f} | "
                     f"{pr(g.p_at_r.astype(float).mean(), g.r_at_r.astype(float).mean())} | "
                     f"{pr(g.p_at_hat.astype(float).mean(), g.r_at_hat.astype(float).mean())} | "
                     f"{seconds(g)} |")  # fmt: skip
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
