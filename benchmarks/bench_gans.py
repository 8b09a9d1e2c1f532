"""Training throughput of the three GAN baselines at 32 px, side by side (short runs on random images).

    python benchmarks/bench_gans.py                    # cpu profile, 1 thread, ~1 min
    python benchmarks/bench_gans.py --iters 40 --profile paper
    python benchmarks/bench_gans.py --with-vae            # VQ-VAE and RVQ-VAE training img/s in the same table

For each model: iterations/s, real images/s (real batch x it/s; Robust OT's real batch is its only batch, the
NR-GAN models also push a 2x larger generator batch), time to sample 3,000 images (projected from --samples), and the
projected time of one harness cell = the profile's iterations / (it/s) + sampling. Warm-up iterations are
excluded from the timing. Numbers depend heavily on what else runs on the machine: print them with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from bench.models import gan_common as gc
from bench.models import registry

from _common import timed_vae_epoch

MODELS = ("gan", "sdnrgan3", "robustot")
CELL_SAMPLES = 3000  # images a cpu-profile cell generates


def real_batch_size(cfg) -> int:
    return getattr(cfg, "d_batch_size", None) or cfg.batch_size


def measure(
    name: str,
    profile: str,
    size: int,
    iters: int,
    warmup: int,
    n_images: int,
    n_samples: int,
    overrides: dict,
    memory_format: torch.memory_format | None = None,
) -> dict:
    model = registry.get(name).build(profile, size, overrides.get(name, {}))
    images = torch.randint(0, 256, (n_images, 3, size, size), dtype=torch.uint8)
    rng = torch.Generator().manual_seed(0)
    data = gc.RealBatches(images, rng, clamp=model.clamp_real)
    model.prepare_nets("cpu", memory_format)
    model.optimizers = model.build_optimizers()
    for it in range(warmup):
        model.train_step(it, data, rng)
    t0 = time.perf_counter()
    for it in range(warmup, warmup + iters):
        model.train_step(it, data, rng)
    it_s = iters / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    model.sample(n_samples, seed=0)
    sample_s = time.perf_counter() - t0
    total = model.num_iterations(n_images)
    sample_3000_s = sample_s * CELL_SAMPLES / n_samples
    return {
        "model": name,
        "it/s": it_s,
        "real img/s": it_s * real_batch_size(model.cfg),
        "iterations": total,
        "train (min)": total / it_s / 60,
        "sample 3k (s)": sample_3000_s,
        "cell (min)": (total / it_s + sample_3000_s) / 60,
    }


def measure_vae(name: str, profile: str, size: int, n_images: int, cell_images: int) -> dict:
    """One training epoch of VQ-VAE / RVQ-VAE on ``n_images`` random images (the second epoch: RVQ-VAE's first
    epoch has no C_out step), in the GAN table's units, projected to ``cell_images`` per epoch; prior not included."""
    from bench.models.vq_common import ImageSource

    model = registry.get(name).build(profile, size, None)
    data = ImageSource(torch.randint(0, 256, (n_images, 3, size, size), dtype=torch.uint8))
    timed_vae_epoch(model, data, epoch=0)
    seconds = timed_vae_epoch(model, data, epoch=1)
    steps, img_s = -(-n_images // model.cfg.batch_size), n_images / seconds
    return {
        "model": name,
        "it/s": steps / seconds,
        "real img/s": img_s,
        "iterations": -(-cell_images // model.cfg.batch_size) * model.cfg.epochs,
        "train (min)": cell_images * model.cfg.epochs / img_s / 60,
        "sample 3k (s)": float("nan"),
        "cell (min)": float("nan"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--iters", type=int, default=15, help="timed iterations per model")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument(
        "--threads", type=int, default=1, help="1 by default: on shared cores 2 OpenMP threads ran 5-8x slower"
    )
    p.add_argument("--images", type=int, default=3000, help="training-set size (sets epoch-based iteration counts)")
    p.add_argument("--samples", type=int, default=500, help="timed samples, projected to 3,000")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--set", default="{}", help='per-model overrides as JSON, e.g. {"gan": {"channels": 32}}')
    p.add_argument(
        "--with-vae", action="store_true", help="add VQ-VAE and RVQ-VAE (one autoencoder epoch each, no prior)"
    )
    p.add_argument("--vae-images", type=int, default=640, help="images in the timed VAE epoch")
    p.add_argument(
        "--compare-memory-format",
        action="store_true",
        help="train each model with NCHW and NHWC (channels_last) weights, interleaved A-B-A, print ratios",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    overrides = json.loads(args.set)
    if args.compare_memory_format:
        compare_memory_format(args, overrides)
        return
    rows = [
        measure(m, args.profile, args.size, args.iters, args.warmup, args.images, args.samples, overrides)
        for m in args.models.split(",")
    ]
    if args.with_vae:
        rows += [measure_vae(m, args.profile, args.size, args.vae_images, args.images) for m in ("vqvae", "rvqvae")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"profile={args.profile} size={args.size} threads={args.threads} timed iterations={args.iters} "
        f"load average (1 min) at end={load:.1f} on {os.cpu_count()} cores"
    )
    keys = list(rows[0])
    print("  ".join(f"{k:>18}" for k in keys))
    for r in rows:
        print("  ".join(f"{r[k]:>18.3g}" if isinstance(r[k], float) else f"{r[k]:>18}" for k in keys))


def compare_memory_format(args: argparse.Namespace, overrides: dict) -> None:
    """it/s of each model with contiguous vs channels_last conv weights, measured in this run (A-B-A, mean of A)."""
    print(
        f"memory format comparison: profile={args.profile} size={args.size} threads={args.threads} "
        f"timed iterations={args.iters}"
    )
    print(f"{'model':>10}  {'NCHW it/s':>10}  {'NHWC it/s':>10}  {'NHWC / NCHW':>11}  {'model default':>14}")
    for name in args.models.split(","):

        def run(fmt: torch.memory_format, name: str = name) -> float:
            return measure(name, args.profile, args.size, args.iters, args.warmup, args.images, 10, overrides, fmt)[
                "it/s"
            ]

        a1, b, a2 = run(torch.contiguous_format), run(torch.channels_last), run(torch.contiguous_format)
        a = (a1 + a2) / 2
        default = "NHWC" if registry.get(name).cls.memory_format == torch.channels_last else "NCHW"
        print(f"{name:>10}  {a:>10.3g}  {b:>10.3g}  {b / a:>10.2f}x  {default:>14}")


if __name__ == "__main__":
    main()
