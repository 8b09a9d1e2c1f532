"""Pieces shared by the adversarial baselines (``gan``, ``sdnrgan3``, ``robustot``).

- ResNet generator/discriminator of the NR-GAN code (Kaneko & Harada 2020): no normalisation layers, residual
  branch scaled by 0.1, Xavier init; sizes other than 32 px add or remove one up/down stage (see ``stages``).
- Regularisers: R1 on real data (no 1/2 factor) and the two-sided WGAN-GP.
- EMA of a network, a "frozen" context for the critic during generator steps.
- ``RealBatches``: endless shuffled batches of dequantised real images from one seeded ``torch.Generator``.
- ``AdversarialModel``: the fit/sample/checkpoint skeleton; a model supplies its networks, optimisers and one
  ``train_step``. All training randomness comes from one generator whose state is checkpointed, so a resumed
  run continues exactly where the interrupted one stopped.

Precision (``FitConfig.precision``, bench/precision.py): in bf16 the networks' forward passes run under bf16 autocast
(``AdversarialModel.autocast``) and every network output is cast to fp32 (``precision.widen``: no op in fp32) before it
enters a loss; losses, their reductions, R1 and the gradient penalty's norms, backward passes (always outside autocast),
the EMA, Adam and the parameters stay fp32. Sampling always runs in fp32.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import math
import time
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench import precision as P
from bench.errors import BenchError
from bench.models.base import FitConfig, FitResult, GenerativeModel, to_float, to_uint8
from bench.models.optim import load_optimizer_state
from bench.progress import Progress, note, null_progress

RESIDUAL_GAIN = math.sqrt(2.0)  # Xavier gain of convs on a residual path; shortcuts and heads use 1


# ----------------------------------------------------------------------------------------------- sizes


def stages(image_size: int) -> int:
    """log2(image_size / 4): the number of x2 up-samplings from a 4x4 map (3 at 32 px, the official size)."""
    n = int(round(math.log2(image_size))) - 2 if image_size > 0 else -1
    if image_size < 16 or 2 ** (n + 2) != image_size:
        raise BenchError(f"bad image size {image_size}: the GAN baselines need a power of two >= 16 (16, 32, 64)")
    return n


# ------------------------------------------------------------------------------------ init and layers


def _conv(cin: int, cout: int, kernel: int, gain: float) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel, padding=(kernel - 1) // 2)
    nn.init.xavier_uniform_(conv.weight, gain=gain)
    nn.init.zeros_(conv.bias)
    return conv


def _linear(cin: int, cout: int) -> nn.Linear:
    lin = nn.Linear(cin, cout)
    nn.init.xavier_uniform_(lin.weight, gain=1.0)
    nn.init.zeros_(lin.bias)
    return lin


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _residual(shortcut: torch.Tensor, h: torch.Tensor, factor: float) -> torch.Tensor:
    """shortcut + factor * h; with factor 1.0 (the cpu profile) the multiply, a no-op on the values, is skipped (with
    R1 it cost one element-wise op in the forward pass, the backward and the double backward)."""
    return shortcut + h if factor == 1.0 else shortcut + factor * h


class UpBlock(nn.Module):
    """ReLU -> up x2 -> conv3 -> ReLU -> conv3, plus (up x2 -> conv1) shortcut; residual scaled by ``factor``."""

    def __init__(self, cin: int, cout: int, factor: float):
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, RESIDUAL_GAIN)
        self.conv2 = _conv(cout, cout, 3, RESIDUAL_GAIN)
        self.shortcut = _conv(cin, cout, 1, 1.0)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(_up(F.relu(x)))))
        # conv1(up(x)) == up(conv1(x)) for a 1x1 conv and nearest up-sampling: the shortcut conv runs on 4x fewer
        # pixels (same maths; only the float summation order of its weight gradient changes).
        return _residual(_up(self.shortcut(x)), h, self.factor)


class DownBlock(nn.Module):
    """Discriminator block. ``first``: conv3 -> ReLU -> conv3 -> pool, shortcut pool -> conv1 (no input ReLU).
    Otherwise ReLU -> conv3 -> ReLU -> conv3 [-> pool], shortcut conv1 -> pool, or identity when not pooling."""

    def __init__(self, cin: int, cout: int, factor: float, downsample: bool, first: bool = False):
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, RESIDUAL_GAIN)
        self.conv2 = _conv(cout, cout, 3, RESIDUAL_GAIN)
        self.shortcut = _conv(cin, cout, 1, 1.0) if (downsample or cin != cout) else None
        self.factor, self.downsample, self.first = factor, downsample, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is not None:
            # pool -> 1x1 conv == 1x1 conv -> pool (both linear, the bias passes through the mean): 4x fewer pixels
            # for the conv. The official code pools first only in the first block; the maths is the same.
            s = self.shortcut(F.avg_pool2d(x, 2) if self.downsample else x)
        else:
            s = x
        return _residual(s, h, self.factor)


class ResNetGenerator(nn.Module):
    """z -> Linear -> C x 4 x 4 -> ``stages(S)`` up blocks -> ReLU -> conv3 -> tanh (3 blocks at 32 px, as official)."""

    def __init__(self, image_size: int, latent_dim: int = 128, channels: int = 128, residual_factor: float = 0.1):
        super().__init__()
        self.latent_dim, self.channels = latent_dim, channels
        self.linear = _linear(latent_dim, channels * 4 * 4)
        self.blocks = nn.Sequential(*[UpBlock(channels, channels, residual_factor) for _ in range(stages(image_size))])
        self.to_rgb = _conv(channels, 3, 3, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.channels, 4, 4)
        return torch.tanh(self.to_rgb(F.relu(self.blocks(h))))


class ResNetDiscriminator(nn.Module):
    """First (optimised) down block S -> S/2, down blocks to 8x8, two plain blocks, ReLU, mean-pool, Linear -> (B,).

    At 32 px this is the official layout (one extra down block); 64 px adds one down block, 16 px has none.
    """

    def __init__(self, image_size: int, channels: int = 128, residual_factor: float = 0.1, in_channels: int = 3):
        super().__init__()
        n_down = stages(image_size) - 2  # down blocks after the first one, ending at 8x8
        blocks = [DownBlock(in_channels, channels, residual_factor, downsample=True, first=True)]
        blocks += [DownBlock(channels, channels, residual_factor, downsample=True) for _ in range(n_down)]
        blocks += [DownBlock(channels, channels, residual_factor, downsample=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = _linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.blocks(x)).mean(dim=(2, 3))).squeeze(1)


# ------------------------------------------------------------------------------------- regularisers


def r1_penalty(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """mean_b sum_pixels (dD/dx)^2 at the real batch, no 1/2 (NR-GAN's lambda 10 = gamma 20 in the gamma/2 form).

    ``inputs`` must require grad and ``outputs`` = D(inputs), shape (B,); the graph is kept for backward. Call it
    outside autocast: in bf16 the gradient flows back through D's bf16 convolutions (as D's own backward does) and
    arrives in ``inputs``' dtype, fp32; its square and sums are fp32.
    """
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor, precision: str = "fp32"
) -> torch.Tensor:
    """Two-sided WGAN-GP: mean_b (||grad D(x_hat)||_2 - 1)^2 at x_hat = alpha*real + (1-alpha)*fake, alpha (B,).

    ``precision`` "bf16": the critic's forward pass under bf16 autocast, its output cast to fp32; x_hat, the gradient
    (taken outside autocast) and its norm are fp32."""
    a = alpha.view(-1, *([1] * (real.dim() - 1)))
    x_hat = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    with P.autocast(precision, x_hat.device):
        out = P.widen(critic(x_hat))
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


# --------------------------------------------------------------------------------------- EMA, freeze


def ema_copy(net: nn.Module) -> nn.Module:
    """A frozen copy of ``net`` to hold its exponential moving average (starts equal to ``net``)."""
    return copy.deepcopy(net).requires_grad_(False)


@torch.no_grad()
def ema_update(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * net for parameters; buffers are copied."""
    # One multi-tensor lerp instead of one per parameter (same values: tested bit-for-bit).
    torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), net.buffers()):
        b_ema.copy_(b)


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """No parameter gradients for ``net`` inside (gradients still flow through it to its inputs)."""
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(net.parameters(), flags):
            p.requires_grad_(f)


# ------------------------------------------------------------------------------------------- data


class RealBatches:
    """Endless shuffled batches (reshuffled every pass, incomplete last batch dropped) of real images in [-1, 1].

    Dequantisation as in both official codes: to_float(u) + U(0, 1/128) per pixel, then optionally clamped.
    """

    def __init__(self, images: torch.Tensor, rng: torch.Generator, device: str = "cpu", clamp: bool = True):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise BenchError(f"training images must be uint8 N x 3 x H x W, got {images.dtype} {tuple(images.shape)}")
        if len(images) == 0:
            raise BenchError("no training images")
        self.images, self.rng, self.device, self.clamp = images, rng, device, clamp
        self.order = torch.randperm(len(images), generator=rng)
        self.pos = 0
        self.drawn = 0  # real images handed out so far (the runner's img/s)

    def indices(self, batch_size: int) -> torch.Tensor:
        batch_size = min(batch_size, len(self.images))
        if self.pos + batch_size > len(self.order):
            self.order, self.pos = torch.randperm(len(self.images), generator=self.rng), 0
        idx = self.order[self.pos : self.pos + batch_size]
        self.pos += batch_size
        self.drawn += batch_size
        return idx

    def next(self, batch_size: int) -> torch.Tensor:
        x = to_float(self.images[self.indices(batch_size)])
        x = x + torch.rand(x.shape, generator=self.rng) / 128.0
        return (x.clamp_(-1.0, 1.0) if self.clamp else x).to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order, "pos": self.pos, "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order, self.pos, self.drawn = state["order"], int(state["pos"]), int(state.get("drawn", 0))


class LossLog:
    """Loss history averaged over windows of ``every`` iterations (keeps the history dict small)."""

    def __init__(self, every: int):
        self.every = max(1, every)
        self.iterations: list[int] = []
        self.series: dict[str, list[float | None]] = {}  # None: no value in that window
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, iteration: int, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
            self._counts[k] = self._counts.get(k, 0) + 1
        if (iteration + 1) % self.every == 0:
            self.iterations.append(iteration + 1)
            for k in set(self.series) | set(self._sums):
                n = self._counts.get(k, 0)
                self.series.setdefault(k, [None] * (len(self.iterations) - 1))
                self.series[k].append(self._sums[k] / n if n else None)
            self._sums, self._counts = {}, {}

    def last(self) -> dict[str, float]:
        return {k: v[-1] for k, v in self.series.items() if v and v[-1] is not None}

    def state_dict(self) -> dict[str, Any]:
        return {
            "iterations": list(self.iterations),
            "series": {k: list(v) for k, v in self.series.items()},
            "sums": dict(self._sums),
            "counts": dict(self._counts),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iterations = list(state["iterations"])
        self.series = {k: list(v) for k, v in state["series"].items()}
        self._sums, self._counts = dict(state["sums"]), dict(state["counts"])


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run with the global torch RNG seeded (for module init), restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# -------------------------------------------------------------------------------------- the skeleton


class AdversarialModel(GenerativeModel):
    """fit / sample / state handling for a GAN-like model; subclasses fill in the abstract methods.

    ``cfg`` needs ``model_seed`` (network init) and ``sample_batch``; everything else is the subclass's.
    """

    clamp_real = True  # clamp dequantised real batches to [-1, 1] (NR-GAN does, Robust OT does not)
    # What train_step runs its forward passes in: fit sets it from FitConfig.precision (bench.precision.resolve).
    precision = "fp32"
    # Conv weights in NHWC: measured 1.1-1.5x more iterations/s on the 2-core CPU for all three GAN models
    # (benchmarks/bench_gans.py --compare-memory-format); same maths, only the float summation order changes.
    memory_format = torch.channels_last

    def __init__(self, cfg: Any, image_size: int):
        super().__init__(cfg, image_size)
        stages(image_size)
        with seeded(cfg.model_seed):
            self.nets = nn.ModuleDict(self.build_nets())
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # --- to implement
    @abc.abstractmethod
    def build_nets(self) -> dict[str, nn.Module]:
        """All networks (EMA copies included), built under a seeded RNG."""

    @abc.abstractmethod
    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    @abc.abstractmethod
    def num_iterations(self, n_train: int) -> int: ...

    @abc.abstractmethod
    def train_step(self, iteration: int, data: RealBatches, rng: torch.Generator) -> dict[str, float]:
        """One training iteration; returns its losses as floats."""

    @abc.abstractmethod
    def sampling_net(self) -> nn.Module:
        """The generator ``sample`` runs (with a ``latent_dim`` attribute)."""

    def fit_report(self, images: torch.Tensor, is_outlier: torch.Tensor) -> dict[str, Any]:
        """Extra, reporting-only entries for the history dict (may look at ``is_outlier``; never trains on it)."""
        return {}

    def set_aside(self, images: torch.Tensor) -> dict[str, Any]:
        """FitResult fields saying which training images the model set aside (none for the plain GAN family)."""
        return {}

    def autocast(self) -> Any:
        """The context for the training forward passes: bf16 autocast in "bf16", nothing in "fp32"."""
        return P.autocast(self.precision, self.device)

    def prepare_nets(
        self, device: str | torch.device = "cpu", memory_format: torch.memory_format | None = None
    ) -> None:
        """Move the nets to ``device`` in the model's memory format (or the one given) and set training mode."""
        self.nets.to(device, memory_format=memory_format or self.memory_format).train()

    # --- the interface
    @property
    def device(self) -> torch.device:
        return next(self.nets.parameters()).device

    def fit(
        self,
        train_images: torch.Tensor,
        train_is_outlier: torch.Tensor,
        cfg: FitConfig,
        progress: Progress = null_progress,
    ) -> FitResult:
        if train_images.shape[-1] != self.image_size or train_images.shape[-2] != self.image_size:
            raise BenchError(
                f"{self.name} was built for {self.image_size} px but got images of {tuple(train_images.shape[-2:])}"
            )
        self.prepare_nets(cfg.device)
        self.precision, fallback = P.resolve(cfg.precision, cfg.device)
        if fallback:
            note(progress, fallback, phase=None)
        rng = torch.Generator().manual_seed(cfg.seed)
        data = RealBatches(train_images, rng, cfg.device, clamp=self.clamp_real)
        self.optimizers = self.build_optimizers()
        total = self.num_iterations(len(train_images))
        log = LossLog(total // 200)
        start, elapsed = 0, 0.0
        saved = cfg.checkpoint.load() if cfg.checkpoint is not None else None
        if saved is not None:
            start, elapsed = self._restore(saved, rng, data, log)
        t0 = time.monotonic()

        def snapshot(iteration: int) -> dict[str, Any]:
            return {
                "iteration": iteration,
                "elapsed_s": elapsed + time.monotonic() - t0,
                "nets": self.nets.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "rng": rng.get_state(),
                "data": data.state_dict(),
                "log": log.state_dict(),
            }

        with progress(total=total, desc=f"{self.name} train") as bar:
            if start:
                bar.update(start)
            for it in range(start, total):
                log.add(it, self.train_step(it, data, rng))
                if cfg.checkpoint is not None and cfg.checkpoint.due():
                    cfg.checkpoint.save(snapshot(it + 1))
                bar.update(1)
                if (it + 1) % log.every == 0:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in log.last().items()}, refresh=False)
        self.nets.eval()
        train_s = elapsed + time.monotonic() - t0
        history: dict[str, Any] = {
            "iterations": total,
            "images_seen": data.drawn,
            "resumed_from": start,
            "train_seconds": train_s,
            "it_per_s": (total - start) / max(time.monotonic() - t0, 1e-9),
            "log_iterations": log.iterations,
            **{f"loss_{k}": v for k, v in log.series.items()},
            "training_precision": self.precision,
            **({"training_precision_note": fallback} if fallback else {}),
        }
        history.update(self.fit_report(train_images, train_is_outlier))
        return FitResult(history=history, images_seen=data.drawn, **self.set_aside(train_images))

    def _restore(
        self, saved: dict[str, Any], rng: torch.Generator, data: RealBatches, log: LossLog
    ) -> tuple[int, float]:
        self.nets.load_state_dict(saved["nets"])
        for k, opt in self.optimizers.items():
            load_optimizer_state(opt, saved["optimizers"][k])
        rng.set_state(saved["rng"])
        data.load_state_dict(saved["data"])
        log.load_state_dict(saved["log"])
        return int(saved["iteration"]), float(saved["elapsed_s"])

    def sample(self, n: int, seed: int) -> torch.Tensor:
        net = self.sampling_net()
        was_training = net.training
        net.eval()
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, net.latent_dim, generator=g)
        out = []
        with torch.inference_mode():
            for chunk in z.split(max(1, self.cfg.sample_batch)):
                out.append(to_uint8(net(chunk.to(self.device))).cpu())
        net.train(was_training)
        return torch.cat(out) if out else torch.empty(0, 3, self.image_size, self.image_size, dtype=torch.uint8)

    def state_dict(self) -> dict[str, Any]:
        return {"nets": {k: v.detach().cpu() for k, v in self.nets.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.nets.eval()
