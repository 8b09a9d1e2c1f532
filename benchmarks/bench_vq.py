"""Throughput of the VQ models: training img/s against a plain reference loop, and PixelCNN fast vs naive sampling.

    python benchmarks/bench_vq.py [--threads 2] [--size 32] [--images 640] [--samples 100]

Both training loops run the same VQ-VAE (paper architecture, eq. 2) on the same procedural images; the reference
loop is written the plain way (uint8 -> float per batch, ``.item()`` every step, fresh grads by ``zero_grad()``).
The sampler comparison uses the ``cpu`` profile's prior at the 32 px latent grid, same weights and seed, and checks
the two samplers agree. Default run: well under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from bench import registry
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
    opt = torch.optim.Adam(list(model.encoder.parameters()) + list(model.decoder.parameters()) + [model.codebook],
                           lr=3e-4)
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
    prior, grid = model.prior.eval(), args.size // 4
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
