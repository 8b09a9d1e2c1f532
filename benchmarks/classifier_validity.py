"""The inlier classifier's validity check (bench/validity.py): the benchmark's classifier beside the paper's.

    PYTHONPATH=$PWD python benchmarks/classifier_validity.py --profile cpu --seeds 0,1,2 \\
        --data facemask=../shared/data/facemask12k --data facemask-synth:facemask=../shared/data/facemask-synth \\
        --data roomcrop=../shared/data/bedroom/images --out results/validity --markdown validity.md

Each ``--data LABEL:DATASET=ROOT`` (LABEL defaults to DATASET) is a stand-in. For every stand-in and seed the split's
held-out classifier sets are built once (they are the same at every ratio), the classifier is trained
as the benchmark trains it (the profile's settings) and as it was before (``PAPER_CLASSIFIER``: the paper's network
without augmentation, 15 epochs), and the share of held-out real inliers and outliers
it calls inliers is printed after every degradation of the validity set, with Table 5's F1 at 50 % test outliers.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from bench import api
from bench.config import default_profile
from bench.evaluator import Evaluator
from bench.validity import MAX_OUTLIERS_PASSED, MIN_INLIERS_KEPT

# The classifier before the validity check: the paper's network, no augmentation, the cpu profile's former 15 epochs.
PAPER_CLASSIFIER = {
    "classifier_augment": False,
    "classifier_width": 1,
    "classifier_padding": 0,
    "classifier_epochs": 15,
    "classifier_lr_schedule": "constant",
}


def _data(items: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for item in items:
        name, _, root = item.partition("=")
        label, _, dataset = name.rpartition(":")
        out.append((label or dataset, dataset, root))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--seeds", default="0")
    p.add_argument("--data", action="append", required=True, metavar="[LABEL:]DATASET=ROOT")
    p.add_argument("--out", default="results/validity")
    p.add_argument("--markdown", default=None, help="also write the tables to this file")
    p.add_argument("--csv", default=None, help="also write every (stand-in, seed, classifier, degradation) row here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # small convnets: more threads than free cores only spin
    rows = []
    for label, dataset, root in _data(args.data):
        for seed in (int(s) for s in args.seeds.split(",")):
            split = api.build_split(dataset, 30, seed, profile=args.profile, data_root=root, out=args.out)
            for augment in (False, True):
                prof = default_profile(args.profile)
                cfg = prof.eval if augment else dataclasses.replace(prof.eval, **PAPER_CLASSIFIER)
                t0 = time.perf_counter()
                ev = Evaluator.for_split(split, cfg, seed, Path(args.out) / "cache")
                f1 = ev.f1_table([50])[0]["f1"]
                train_s = time.perf_counter() - t0
                for r in ev.validity.rows:
                    rows.append({"data": label, "seed": seed, "augment": augment, "degradation": r.degradation,
                                 "gated": r.gated, "inliers": r.inliers_called_inliers,
                                 "outliers": r.outliers_called_inliers, "passed": r.passed, "f1_50": f1,
                                 "classifier_s": round(train_s, 1)})  # fmt: skip
                print(
                    f"{label} seed {seed} validated={augment}: F1(50 %) {f1:.3f}; {ev.validity.summary()}",
                    file=sys.stderr,
                )
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    text = [f"Share called inliers (%) of the held-out real inliers / outliers after each degradation; a gated row "
            f"passes with inliers >= {MIN_INLIERS_KEPT:g} and outliers <= {MAX_OUTLIERS_PASSED:g}. Mean over seeds "
            f"{args.seeds} (min / max in brackets where seeds differ); profile {args.profile}.", ""]  # fmt: skip
    for label in df.data.unique():
        part = df[df.data == label]
        text += [f"### {label}", "", "| degradation | gated | inliers, paper's | outliers, paper's | inliers, validated | "
                 "outliers, validated |", "|---|---|---|---|---|---|"]  # fmt: skip
        for deg in part.degradation.unique():
            cells = []
            for augment in (False, True):
                sel = part[(part.degradation == deg) & (part.augment == augment)]
                for col in ("inliers", "outliers"):
                    v = sel[col]
                    spread = f" ({v.min():.1f}-{v.max():.1f})" if v.nunique() > 1 else ""
                    cells.append(f"{v.mean():.1f}{spread}")
            gated = "yes" if part[part.degradation == deg].gated.iloc[0] else "no"
            text.append(f"| {deg} | {gated} | " + " | ".join(cells) + " |")
        f1 = part.groupby(["augment", "seed"]).f1_50.first().unstack("augment")
        text += ["", "F1 at 50 % test outliers per seed (paper's / validated): "
                 + "; ".join(f"s{s}: {f1.loc[s, False]:.3f} / {f1.loc[s, True]:.3f}" for s in f1.index),
                 "Gated rows failed per seed (paper's / validated): "
                 + "; ".join(f"s{s}: {int((~part[(part.seed == s) & ~part.augment & part.gated].passed).sum())} / "
                             f"{int((~part[(part.seed == s) & part.augment & part.gated].passed).sum())}"
                             for s in sorted(part.seed.unique())), ""]  # fmt: skip
    print("\n".join(text))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(text) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
