"""Throughput of the VQ models: training img/s against a plain reference loop, and PixelCNN fast vs naive sampling.

    python benchmarks/bench_vq.py [--threads 2] [--size 32] [--images 640] [--samples 100]

Both training loops run the same VQ-VAE (paper architecture, eq. 2) on the same procedural images; the reference
loop is written the plain way (uint8 -> float per batch, ``.item()`` every step, fresh grads by ``zero_grad()``).
The prior's training step is timed with the previous loss (1x1-conv head, cross-entropy on B x K x H x W logits)
against ``GatedPixelCNN.loss`` (the head as matmuls over positions). The sampler comparison uses the ``cpu``
profile's prior at the 32 px latent grid, same weights and seed, and checks the two samplers agree. Default run:
well under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from bench.models import registry
from bench.models.base import to_float

from _common import timed_vae_epoch


def procedural_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, size)
    a, b, c = (torch.rand(n, 3, 1, 1, generator=g) for _ in range(3))
    img = a * ramp.view(1, 1, size, 1) + b * ramp.view(1, 1, 1, size) + 0.3 * c
    img = img + 0.05 * torch.randn(n, 3, size, size, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def reference_epoch(model, images: torch.Tensor, batch_size: int) -> float:
    """A plainly written training epoch; returns img/s."""
    opt = torch.optim.Adam(
        list(model.encoder.parameters()) + list(model.decoder.parameters()) + [model.codebook], lr=3e-4
    )
    perm = torch.randperm(len(images))
    t0 = time.perf_counter()
    losses = []
    for i in range(0, len(images), batch_size):
        x = images[perm[i : i + batch_size]].float() / 127.5 - 1.0
        z = model.encoder(x)
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        d = ((flat.unsqueeze(1) - model.codebook.unsqueeze(0)) ** 2).sum(-1)
        k = d.argmin(1)
        q = model.codebook[k].reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        x_rec = model.decoder(z + (q - z).detach())
        loss = F.mse_loss(x_rec, x) / model.data_variance + F.mse_loss(q, z.detach()) + 0.25 * F.mse_loss(z, q.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return len(images) / (time.perf_counter() - t0)


def ours_epoch(model, images: torch.Tensor) -> float:
    """One epoch through the model's own training loop (uint8 -> float conversion included); returns img/s."""
    return len(images) / timed_vae_epoch(model, images)


def prior_step_times(prior, batch: int, grid: int, codes: int, rounds: int = 12, steps: int = 8) -> tuple[float, float]:
    """Median seconds per prior training step of the previous loss (conv head, cross-entropy on B x K x H x W logits)
    and of ``loss``; rounds alternate which goes first, since one noisy round can flip a single comparison."""
    idx = torch.randint(0, codes, (batch, grid, grid), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(prior.parameters(), lr=1e-3)
    losses = {"conv": lambda: F.cross_entropy(prior(idx), idx), "flat": lambda: prior.loss(idx)}
    times: dict[str, list[float]] = {k: [] for k in losses}
    prior.train()
    for r in range(rounds):
        for name in list(losses) if r % 2 == 0 else list(losses)[::-1]:
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = losses[name]()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            times[name].append((time.perf_counter() - t0) / steps)
    return statistics.median(times["conv"]), statistics.median(times["flat"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--images", type=int, default=640)
    ap.add_argument("--samples", type=int, default=500, help="sampling batch (the models sample in batches of 500)")
    ap.add_argument("--batches", default="10,32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = procedural_images(args.images, args.size)
    spec = registry.get("vqvae")

    print(f"VQ-VAE training, {args.size} px, {args.images} images, {args.threads} threads (img/s, one epoch each)")
    print(f"{'batch':>6} {'reference':>10} {'ours':>10} {'ratio':>7}")
    for batch in (int(b) for b in args.batches.split(",")):
        torch.manual_seed(0)
        model = spec.build("cpu", args.size, {"batch_size": batch})
        model.data_variance = float(to_float(images).var())
        ref = reference_epoch(model, images, batch)
        torch.manual_seed(0)
        model = spec.build("cpu", args.size, {"batch_size": batch})
        model.data_variance = float(to_float(images).var())
        ours = ours_epoch(model, images)
        print(f"{batch:>6} {ref:>10.1f} {ours:>10.1f} {ours / ref:>6.2f}x")

    model = spec.build("cpu", args.size)
    grid = args.size // 4
    print(
        f"\nPixelCNN training step, {grid}x{grid} grid, batch {model.cfg.prior_batch_size}, "
        f"{model.cfg.codebook_size} codes (median s/step over 12 rounds of 8, alternating)"
    )
    print(f"{'conv head':>10} {'flat head':>10} {'ratio':>7}   (previous: cross_entropy on B x K x H x W logits)")
    # On a copy: after training, float summation-order differences may flip a rare near-tie draw between the two
    # samplers below, which compare on the untrained prior.
    conv, flat = prior_step_times(copy.deepcopy(model.prior), model.cfg.prior_batch_size, grid, model.cfg.codebook_size)
    print(f"{conv:>10.4f} {flat:>10.4f} {conv / flat:>6.2f}x")

    prior = model.prior.eval()
    n = args.samples
    t0 = time.perf_counter()
    fast = prior.sample(n, grid, torch.Generator().manual_seed(0))
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = prior.sample_naive(n, grid, torch.Generator().manual_seed(0))
    t_naive = time.perf_counter() - t0
    print(f"\nPixelCNN sampling, {grid}x{grid} grid, {prior.cfg.layers} layers, dim {prior.cfg.dim}, batch {n}")
    print(f"{'naive':>10} {'fast':>10} {'ratio':>7}  (samples/s)   identical: {torch.equal(fast, naive)}")
    print(f"{n / t_naive:>10.1f} {n / t_fast:>10.1f} {t_naive / t_fast:>6.2f}x")


if __name__ == "__main__":
    main()
