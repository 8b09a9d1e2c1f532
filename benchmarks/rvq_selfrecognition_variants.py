"""RVQ-VAE self-recognition per epoch for setting variants on one training split (autoencoder only, no prior).

    python benchmarks/rvq_selfrecognition_variants.py --data-root ../shared/data/facemask12k --ratio 30 \
        --variant error_via=assigned --variant error_via=inlier [--out results/standin-facemask]

Each variant trains the ``cpu`` profile's RVQ-VAE (plus ``--set`` overrides and the variant's own) on the same
split and prints, per epoch, precision / recall of the set sent to C_out and the AUC of that epoch's errors,
next to the trivial detectors (distance to mean image, PCA-8 residual) on the same images. Splits come from
``<out>/cache`` when a grid already built them (seed 0).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench.config import load_profile, parse_value
from bench.datasets import build_split
from bench.detectors import flag_metrics, trivial_detectors
from bench.models import registry
from bench.models.base import FitConfig, FitResult


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None)
    p.add_argument("--dataset", default="facemask")
    p.add_argument("--ratio", type=float, default=30.0)
    p.add_argument("--profile", default="cpu")
    p.add_argument("--out", type=Path, default=Path("results/probe"), help="where the split cache lives")
    p.add_argument("--set", action="append", default=[], help="profile override, e.g. data.size=64")
    p.add_argument("--variant", action="append", default=[], help="rvqvae settings, e.g. 'error_via=inlier,eta=0.3'")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    profile = load_profile(args.profile, sets=args.set)
    split = build_split(args.dataset, profile.data, args.ratio, 0, args.out / "cache", args.data_root)
    labels = split.train_is_outlier.bool()
    eta = registry.get("rvqvae").make_config(profile.name, profile.models.get("rvqvae")).eta
    print(
        f"{args.dataset} r={args.ratio:g} %: {split.n_inliers} inliers + {split.n_outliers} outliers, {split.size} px"
    )
    for name, scores in trivial_detectors(split.train_images):
        m = flag_metrics(labels, eta, scores=scores)
        print(f"  {name:<22} P {m['precision']:.2f}  R {m['recall']:.2f}  AUC {m['auc']:.2f}")
    for variant in args.variant or [""]:
        overrides = {**profile.models.get("rvqvae", {}), "prior_epochs": 0}  # the variant's own settings win
        for item in filter(None, variant.split(",")):
            k, _, v = item.partition("=")
            overrides[k.strip()] = parse_value(v.strip())
        model = registry.get("rvqvae").build(profile.name, split.size, overrides)
        t0 = time.perf_counter()
        result = FitResult.coerce(model.fit(split.train_images, labels, FitConfig(seed=0)), len(labels))
        history = result.history
        print(f"variant {variant or '(profile defaults)'}: {time.perf_counter() - t0:.0f} s")
        for row in history["epochs"]:
            f = row["flag"]
            pr = "P  -    R  -  " if f is None else f"P {f['precision']:.2f}  R {f['recall']:.2f}"
            print(
                f"  epoch {row['epoch']:>2}  {pr}  AUC(errors) {row['error_auc']:.2f}  "
                f"perplexity in/out {row['perplexity_in']:.0f}/{row['perplexity_out']:.0f}"
            )


if __name__ == "__main__":
    main()
