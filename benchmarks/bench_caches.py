"""What the harness's caches save: a grid's preparation (splits, inlier classifier, reference features, Table 5)
done cold (empty results folder) vs warm (everything read back from ``<out>/cache``), measured in one run.

    python benchmarks/bench_caches.py                       # smoke profile, synthetic data, ~30 s
    python benchmarks/bench_caches.py --profile cpu --dataset facemask --data-root ../shared/data/facemask12k

A rerun of a grid, a resumed grid, and every worker of a parallel grid take the warm path; without the caches each
would rebuild the split and retrain the classifier. Also times one split load (cache hit) against one split build.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from bench import api, grid
from bench.datasets import build_split


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="smoke")
    p.add_argument("--dataset", default="facemask", help="a registered dataset (default facemask)")
    p.add_argument("--data-root", default=None, help="real images (default: the embedded synthetic data)")
    p.add_argument("--ratios", default="0,10,20,30")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ratios = [float(r) for r in args.ratios.split(",")]
    roots = {} if args.data_root is None else {args.dataset: args.data_root}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "grid"
        spec, planned = api.plan("vqvae", args.dataset, ratios, [0], profile=args.profile, out=out, jobs=1,
                                 data_roots=roots)  # fmt: skip
        profile = spec.profile
        cold = timed(lambda: grid.prepare(spec, planned))
        warm = timed(lambda: grid.prepare(spec, planned))
        cache = out / "cache"  # a results folder's cache (splits, classifier, features)
        split_args = (args.dataset, profile.data, ratios[-1], 0, cache, args.data_root)
        hit = timed(lambda: build_split(*split_args))
        shutil.rmtree(cache / "splits")
        build = timed(lambda: build_split(*split_args))
    print(
        f"profile={args.profile} dataset={args.dataset} data={'synthetic' if args.data_root is None else args.data_root} "
        f"ratios={args.ratios} threads={args.threads}"
    )
    print(f"prepare, cold (build splits, train classifier, reference features, Table 5): {cold:8.2f} s")
    print(
        f"prepare, warm (all from cache):                                              {warm:8.2f} s   "
        f"-> {cold / max(warm, 1e-9):.0f}x"
    )
    print(
        f"one split: build {build:.2f} s vs cache hit {hit:.3f} s                                      "
        f"-> {build / max(hit, 1e-9):.0f}x"
    )


if __name__ == "__main__":
    main()
