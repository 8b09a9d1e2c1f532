"""Speed-ups that were probed for issue 18 and not adopted: each measured side by side against what the code does.

    PYTHONPATH=$PWD python benchmarks/probes.py                 # every probe, 1 thread, ~4 min
    PYTHONPATH=$PWD python benchmarks/probes.py subpixel lazy16 # some of them

Every ratio is today's way / the probed way, the median of per-round ratios over alternating rounds (A B, B A, ...),
CPU time of this thread with one torch thread (docs/performance.md, "Probed, not adopted"):

- ``subpixel``  nearest x2 up-sampling + 3x3 conv (the GAN family's up blocks) against its exact phase decomposition:
                one 2x2 conv with 4x the output channels on the small map, then the four phases interleaved (a
                strided copy forward and backward). Also prints the float64 difference of outputs and gradients.
- ``grouped``   SD-NR-GAN-III's G and Gn (16 channels each) as one grouped network: two 3x3 convs against one conv
                with groups=2, forward + backward, at 8, 16 and 32 px.
- ``lazy16``    R1 / the gradient penalty every 16th step (StyleGAN2's interval) against every 4th (the cpu
                profile), windows of 16 iterations of the real models.
- ``compile``   torch.compile of the GAN's G and D against eager, iterations without R1 (R1's double backward does
                not run through compiled graphs); prints the first call's compile time.
- ``prior-cl``  the PixelCNN prior's training step in channels_last against NCHW.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _ops import alternate  # noqa: E402

CL = torch.channels_last


def ab(today: Callable[[], object], probed: Callable[[], object], rounds: int = 7,
       calls: int = 10) -> tuple[float, float, float]:  # fmt: skip
    """Median seconds per call of each and the median of per-round ratios today / probed (after one warm-up call
    each)."""
    today()
    probed()
    timed = alternate(today, probed, rounds, calls)
    return statistics.median(timed.first), statistics.median(timed.second), statistics.median(timed.ratios())


def line(what: str, a: float, b: float, ratio: float) -> None:
    print(f"  {what}: today {a * 1e3:.2f} ms, probed {b * 1e3:.2f} ms per call; today/probed {ratio:.2f}x", flush=True)


# ------------------------------------------------------------------------------------------- subpixel

# TAPS[a, u, k]: the 3x3 kernel rows k (on the up-sampled map) that land on row u of a 2x2 kernel on the small map,
# for output rows of phase a (even a = 0, odd a = 1); the same for columns.
TAPS = torch.tensor([[[1.0, 0, 0], [0, 1, 1]], [[1.0, 1, 0], [0, 0, 1]]])


class Interleave(torch.autograd.Function):
    """(B, 4*O, H+1, W+1) channels_last, channel (2a+b)*O + o -> (B, O, 2H, 2W): out[2i+a, 2j+b] = y[a, b][i+a, j+b]."""

    @staticmethod
    def _phases(y: torch.Tensor, o: int, h: int, w: int) -> torch.Tensor:
        sb, sc, sh, sw = y.stride()
        return y.as_strided((y.shape[0], h, 2, w, 2, o), (sb, sh, sh + 2 * o * sc, sw, sw + o * sc, sc),
                            y.storage_offset())  # fmt: skip

    @staticmethod
    def forward(ctx, y: torch.Tensor, o: int, h: int, w: int) -> torch.Tensor:
        ctx.shape, ctx.dims = y.shape, (o, h, w)
        return Interleave._phases(y, o, h, w).contiguous().view(y.shape[0], 2 * h, 2 * w, o).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        o, h, w = ctx.dims
        gy = g.new_zeros(ctx.shape).contiguous(memory_format=CL)
        Interleave._phases(gy, o, h, w).copy_(g.permute(0, 2, 3, 1).reshape(g.shape[0], h, 2, w, 2, o))
        return gy, None, None, None


def up_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, b, padding=1)


def phase_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    o, (_, _, h, wd) = w.shape[0], x.shape
    taps = TAPS.to(w)
    w2 = torch.einsum("auk,bvl,oikl->aboiuv", taps, taps, w).reshape(4 * o, w.shape[1], 2, 2)
    y = F.conv2d(x, w2, b.repeat(4), padding=1).contiguous(memory_format=CL)
    return Interleave.apply(y, o, h, wd)


def backward_of(fn: Callable[..., torch.Tensor], *args: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    """A call of ``fn(*args)`` and its backward pass with ``grad``, its inputs bound now."""
    return lambda: fn(*args).backward(grad)


def probe_subpixel() -> None:
    print("subpixel: nearest up x2 + 3x3 conv vs its phase decomposition (forward + backward, batch 32)")
    for c, h in ((32, 4), (32, 8), (32, 16), (16, 16)):
        x = torch.randn(32, c, h, h, dtype=torch.float64).contiguous(memory_format=CL).requires_grad_(True)
        w = torch.randn(c, c, 3, 3, dtype=torch.float64, requires_grad=True)
        b = torch.randn(c, dtype=torch.float64, requires_grad=True)
        y1, y2 = up_conv(x, w, b), phase_conv(x, w, b)
        g = torch.randn_like(y1)
        diff = max([(y1 - y2).abs().max().item()] + [(p - q).abs().max().item() for p, q in
                    zip(torch.autograd.grad(y1, (x, w, b), g), torch.autograd.grad(y2, (x, w, b), g))])  # fmt: skip
        xf = x.detach().float().contiguous(memory_format=CL).requires_grad_(True)
        wf = w.detach().float().contiguous(memory_format=CL).requires_grad_(True)
        bf = b.detach().float().requires_grad_(True)
        gf = torch.randn(32, c, 2 * h, 2 * h).contiguous(memory_format=CL)
        line(
            f"{c} ch, {h}->{2 * h} px (float64 max difference {diff:.1e})",
            *ab(backward_of(up_conv, xf, wf, bf, grad=gf), backward_of(phase_conv, xf, wf, bf, grad=gf)),
        )


# -------------------------------------------------------------------------------------------- grouped


def probe_grouped() -> None:
    print("grouped: two 16-channel 3x3 convs (G, Gn) vs one conv with groups=2 (forward + backward, batch 32)")
    for h in (8, 16, 32):
        xs = [torch.randn(32, 16, h, h).contiguous(memory_format=CL).requires_grad_(True) for _ in range(2)]
        ws = [torch.randn(16, 16, 3, 3).contiguous(memory_format=CL).requires_grad_(True) for _ in range(2)]
        bs = [torch.randn(16, requires_grad=True) for _ in range(2)]
        g = torch.randn(32, 16, h, h).contiguous(memory_format=CL)
        x2 = torch.randn(32, 32, h, h).contiguous(memory_format=CL).requires_grad_(True)
        w2 = torch.randn(32, 16, 3, 3).contiguous(memory_format=CL).requires_grad_(True)
        b2 = torch.randn(32, requires_grad=True)
        g2 = torch.randn(32, 32, h, h).contiguous(memory_format=CL)

        def two(xs=xs, ws=ws, bs=bs, g=g) -> None:
            for x, w, b in zip(xs, ws, bs):
                F.conv2d(x, w, b, padding=1).backward(g)

        grouped = functools.partial(F.conv2d, padding=1, groups=2)
        line(f"{h} px", *ab(two, backward_of(grouped, x2, w2, b2, grad=g2)))


# --------------------------------------------------------------------------------------------- lazy16


def probe_lazy16() -> None:
    from bench.models import gan_common as gc
    from bench.models import registry

    import roofline

    print("lazy16: R1 / gradient penalty every 16th step vs every 4th (windows of 16 iterations)")
    for name in ("gan", "sdnrgan3", "robustot"):
        key = "gp_every" if name == "robustot" else "r1_every"

        def setup(every: int, name: str = name, key: str = key) -> Callable[[], None]:
            model = registry.get(name).build("cpu", 32, {key: every})
            rng = torch.Generator().manual_seed(0)
            data = gc.RealBatches(roofline.random_images(3579), rng, clamp=model.clamp_real)
            model.prepare_nets("cpu")
            model.optimizers = model.build_optimizers()
            it = [model.cfg.weight_warmup + 16 if name == "robustot" else 1]  # Robust OT: with weight-net steps

            def run() -> None:
                for _ in range(16):
                    model.train_step(it[0], data, rng)
                    it[0] += 1

            return run

        torch.manual_seed(0)
        line(f"{name} ({key} 4 vs 16, per 16 iterations)", *ab(setup(4), setup(16), rounds=6, calls=1))


# -------------------------------------------------------------------------------------------- compile


def probe_compile() -> None:
    from bench.models import gan_common as gc
    from bench.models.optim import adam

    print("compile: GAN iteration without R1 (G step at batch 32, D step at 16 + 16), eager vs torch.compile")

    def setup(compiled: bool) -> Callable[[], None]:
        torch.manual_seed(0)
        g = gc.ResNetGenerator(32, 128, 32, 1.0).to(memory_format=CL)
        d = gc.ResNetDiscriminator(32, 32, 1.0).to(memory_format=CL)
        G, D = (torch.compile(g), torch.compile(d)) if compiled else (g, d)
        og, od = adam(g.parameters(), 2e-4, (0.0, 0.99)), adam(d.parameters(), 2e-4, (0.0, 0.99))
        z, real = torch.randn(32, 128), torch.randn(16, 3, 32, 32).contiguous(memory_format=CL)

        def step() -> None:
            og.zero_grad(set_to_none=True)
            with gc.frozen(d):
                F.softplus(-D(G(z))).mean().backward()
            og.step()
            od.zero_grad(set_to_none=True)
            with torch.no_grad():
                fake = G(z[:16])
            s = D(torch.cat([real, fake]))
            (F.softplus(-s[:16]).mean() + F.softplus(s[16:]).mean()).backward()
            od.step()

        t0 = time.perf_counter()
        step()
        step()
        print(f"  first two iterations ({'compiled' if compiled else 'eager'}): {time.perf_counter() - t0:.1f} s wall",
              flush=True)  # fmt: skip
        return step

    line("one iteration", *ab(setup(False), setup(True), rounds=5, calls=5))


# ------------------------------------------------------------------------------------------- prior-cl


def probe_prior_cl() -> None:
    from bench.models.optim import adam
    from bench.models.pixelcnn import GatedPixelCNN, PixelCNNConfig

    print(
        "prior-cl: PixelCNN prior training step (cpu profile: 5 layers, dim 32, batch 64, 8x8), NCHW vs channels_last"
    )
    idx = torch.randint(0, 512, (64, 8, 8), generator=torch.Generator().manual_seed(0))

    def setup(channels_last: bool) -> Callable[[], None]:
        torch.manual_seed(0)
        prior = GatedPixelCNN(PixelCNNConfig(num_codes=512, dim=32, layers=5, head_hidden=128))
        prior = prior.to(memory_format=CL) if channels_last else prior
        opt = adam(prior.parameters(), 1e-3)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            prior.loss(idx).backward()
            opt.step()

        return step

    line("one step", *ab(setup(False), setup(True), rounds=9, calls=10))


PROBES = {"subpixel": probe_subpixel, "grouped": probe_grouped, "lazy16": probe_lazy16, "compile": probe_compile,
          "prior-cl": probe_prior_cl}  # fmt: skip


def main() -> None:
    names = sys.argv[1:] or list(PROBES)
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        sys.exit(f"unknown probe(s) {', '.join(unknown)}; choose from {', '.join(PROBES)}")
    torch.set_num_threads(1)
    import os

    print(f"1 thread, CPU time of the thread; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for n in names:
        PROBES[n]()


if __name__ == "__main__":
    main()
