"""Side-by-side speed of this checkout against an earlier commit, on the roofline workloads of one cell.

    PYTHONPATH=$PWD python benchmarks/ab.py --base 245ebff gan.train sdnrgan3.train
    PYTHONPATH=$PWD python benchmarks/ab.py --base HEAD vqvae.prior --rounds 21 --threads 2   # uncommitted changes
    PYTHONPATH=$PWD python benchmarks/ab.py --precision gan.train vqvae.prior   # this checkout, fp32 vs bf16

``--base`` is exported (``git archive``, the ``bench`` package only) to a temporary folder and imported in the same
process as the package ``bench_base`` (its ``bench`` imports rewritten), so both versions run side by side: each
builds its own model with the same seed; then rounds alternate which version runs first (A B, B A, A B, ...), each
run being ``--calls`` calls of the workload. Interleaving at this grain (a second or two) lets both versions see the
same load on a shared machine. Times are CPU time of this thread with one torch thread (time descheduled by other
processes does not count; the wall-time ratio is printed too) and wall time with more. Printed: the median seconds per call of each, and the median of the per-round ratios
base / new (the figure to quote) with its quartiles. Workloads (see roofline.py): ``MODEL.train``, ``MODEL.prior``
(VQ models), ``MODEL.sample``, ``eval``.

``--precision``: no base; this checkout's fp32 step against its bf16 step (``FitConfig.precision``, bench/precision.py),
built with the same seed, in the same alternating rounds; "base" is fp32, "new" bf16, and the ratio fp32 / bf16 (> 1:
bf16 is faster). A ``sample`` workload in bf16 runs ``sample()`` under bf16 autocast (the models sample in fp32).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import roofline  # noqa: E402
from _base import BASE_PKG, describe, export, short  # noqa: E402
from _ops import alternate  # noqa: E402


def quartiles(xs: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[2]


def compare(
    name: str, rounds: int, calls: int, warmup: int, base_set: dict, new_set: dict, precision: bool = False
) -> dict:
    """Both sides of one workload timed in alternating rounds; ``precision``: this checkout fp32 (base) vs bf16
    (new) instead of the exported base commit vs this checkout."""
    model = name.partition(".")[0]
    base = ("bench", "fp32") if precision else (BASE_PKG, "fp32")
    new = ("bench", "bf16") if precision else ("bench", "fp32")
    torch.manual_seed(0)
    fb = roofline.workload(name, base[0], base_set.get(model), precision=base[1]).setup()
    torch.manual_seed(0)
    fn = roofline.workload(name, new[0], new_set.get(model), precision=new[1]).setup()
    for _ in range(warmup):
        fb()
        fn()
    timed = alternate(fb, fn, rounds, calls)
    ratios = timed.ratios()
    lo, hi = quartiles(ratios)
    return {
        "workload": name,
        "base_s": statistics.median(timed.first),
        "new_s": statistics.median(timed.second),
        "ratio": statistics.median(ratios),
        "q1": lo,
        "q3": hi,
        "rounds": rounds,
        "wall_ratio": statistics.median(timed.wall_ratios()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="+")
    ap.add_argument("--base", default="HEAD", help="commit to compare against (default HEAD: uncommitted changes)")
    ap.add_argument(
        "--precision",
        action="store_true",
        help="compare this checkout's fp32 (base) and bf16 (new) steps instead of a base commit",
    )
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=1, help="calls per run")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--base-set", default="{}", help='config overrides for the base side, JSON: {"gan": {"r1_every": 4}}'
    )
    ap.add_argument("--new-set", default="{}", help="config overrides for the new side, JSON")
    args = ap.parse_args()
    base_set, new_set = json.loads(args.base_set), json.loads(args.new_set)
    torch.set_num_threads(args.threads)
    if args.precision:
        sides = f"fp32 (base) vs bf16 (new), this checkout (commit {describe()})"
    else:
        export(args.base)
        sides = f"base {args.base} ({short(args.base)}) vs this checkout (commit {describe()})"
    print(
        f"{sides}; "
        f"{'base overrides ' + args.base_set + ', ' if base_set else ''}"
        f"{'new overrides ' + args.new_set + ', ' if new_set else ''}threads={args.threads}, {args.rounds} alternating rounds of {args.calls} call(s); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    for name in args.workloads:
        r = compare(name, args.rounds, args.calls, args.warmup, base_set, new_set, args.precision)
        a, b = ("fp32", "bf16") if args.precision else ("base", "new")
        print(
            f"{name}: {a} {r['base_s']:.4f} s, {b} {r['new_s']:.4f} s per call (medians); {a}/{b} "
            f"{r['ratio']:.3f}x (median of {r['rounds']} alternating rounds, quartiles {r['q1']:.3f}-{r['q3']:.3f}; "
            f"wall-time ratio {r['wall_ratio']:.3f}x); load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
