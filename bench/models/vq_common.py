"""Pieces shared by VQ-VAE and RVQ-VAE: the paper's encoder/decoder (§4.2), codebook helpers, and a base class that
owns the training-loop plumbing (checkpoint/resume, prior training on the latent indices, sampling, save/load).

Architecture (paper §4.2, layer details as in the Sonnet VQ-VAE example the paper ported):
  encoder  conv 4x4/2 -> 64, ReLU, conv 4x4/2 -> 128, ReLU, conv 3x3/1 -> 128, 2 residual blocks, ReLU
  pre-quantisation conv 1x1 -> D = 64  (its output is z_enc)
  decoder  deconv 3x3/1 D -> 128, 2 residual blocks, ReLU, deconv 4x4/2 -> 64, ReLU, deconv 4x4/2 -> 3 (linear)
  residual block  h + conv1x1(ReLU(conv3x3(ReLU(h))))  (skip carries the pre-activation h; no in-place ReLU)
The latent grid is size/4.

Precision (``FitConfig.precision``, bench/precision.py): in bf16 the autoencoder's training steps run the encoder
and the decoder under bf16 autocast, their outputs widened to fp32; the codebook distances and assignment, the
straight-through estimator, every loss and its reduction, the codebooks, Adam and all parameters stay fp32. The prior
trains its network in bf16 and its cross-entropy in fp32 (``GatedPixelCNN.loss``). Encoding the training set for the
prior, decoding and sampling run in fp32.
"""

from __future__ import annotations

import abc
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench import fields
from bench import precision as P
from bench.models.base import FitConfig, FitResult, GenerativeModel, to_float, to_uint8
from bench.models.optim import adam, load_optimizer_state
from bench.models.pixelcnn import GatedPixelCNN, PixelCNNConfig, min_layers_for_grid
from bench.progress import Progress, note, null_progress

# Above this many bytes of float32 training data, images are converted to float per batch instead of once.
_PRECONVERT_LIMIT_BYTES = 1 << 30


@dataclass
class VQCommonConfig:
    """Settings VQ-VAE and RVQ-VAE share. Defaults are the paper's (§4.2); the prior (not specified by the paper)
    follows the Sonnet / gated-PixelCNN reference: 15 layers cover a 16x16 grid (64 px); 0 = fewest for the grid."""

    epochs: int = 400
    batch_size: int = 10
    lr: float = 3e-4
    code_dim: int = 64
    hidden: int = 128
    residual_hidden: int = 32
    beta: float = 0.25
    prior_dim: int = 64
    prior_layers: int = 15
    prior_head_hidden: int = 512
    prior_epochs: int = 100
    prior_batch_size: int = 128
    prior_lr: float = 3e-4
    sample_batch_size: int = 500

    def __post_init__(self) -> None:
        fields.require_positive(
            self,
            (
                "epochs",
                "batch_size",
                "lr",
                "code_dim",
                "hidden",
                "residual_hidden",
                "prior_dim",
                "prior_head_hidden",
                "prior_batch_size",
                "prior_lr",
                "sample_batch_size",
            ),
        )
        fields.require_non_negative(self, ("beta", "prior_layers", "prior_epochs"))  # prior_epochs 0: no prior


# Per-profile settings shared by VQ-VAE and RVQ-VAE (the config dataclasses' defaults are the paper's values).
VQ_PROFILES = {
    "smoke": {
        "epochs": 2,
        "batch_size": 32,
        "prior_epochs": 2,
        "prior_layers": 0,
        "prior_head_hidden": 64,
        "prior_dim": 32,
    },
    # 16 px, 600-857 synthetic images: hidden 64 (not 128) and lr 1e-3 for 8 AE epochs; the 4x4 grid's one-layer prior
    # at dim 16 for 40 epochs of batch 64 (~380 steps). A first try (hidden 128, lr 3e-4, 10 prior epochs of batch 128)
    # drew blurry faces and few masks. ~11-14 s CPU per cell on 1 thread; docs/demo-profile.md.
    "demo": {
        "epochs": 8,
        "batch_size": 32,
        "lr": 1e-3,
        "hidden": 64,
        "prior_epochs": 40,
        "prior_layers": 0,
        "prior_dim": 16,
        "prior_head_hidden": 64,
        "prior_lr": 1e-3,
        "prior_batch_size": 64,
    },
    # 32 px, 3-4.3k images: 8 AE epochs at batch 32, a 5-layer (full receptive field at 8x8) dim-32 prior for 10
    # epochs. Measured: 5-7 min per cell (1 thread, prior and 3,000 samples included; docs/results-standin/).
    # Issue 18 measured 7 AE / 8 prior epochs: within one seed's noise on every metric, but alone it saves ~3 min of
    # the grid, not enough to change the profile that every calibrated result was made with (docs/performance.md).
    "cpu": {
        "epochs": 8,
        "batch_size": 32,
        "prior_epochs": 10,
        "prior_layers": 0,
        "prior_dim": 32,
        "prior_head_hidden": 128,
        "prior_lr": 1e-3,
        "prior_batch_size": 64,
    },
    "paper": {},
}


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.conv3 = nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv1 = nn.Conv2d(hidden, channels, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.conv1(F.relu(self.conv3(F.relu(h))))


class Encoder(nn.Module):
    def __init__(self, code_dim: int = 64, hidden: int = 128, residual_hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, hidden // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden // 2, hidden, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, stride=1, padding=1),
            ResidualBlock(hidden, residual_hidden),
            ResidualBlock(hidden, residual_hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, code_dim, 1),  # pre-quantisation conv to D
        )
        sonnet_init_(self)

    def forward(self, x: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
        """z_enc, fp32 ("bf16": the encoder under bf16 autocast, its output widened to fp32 for the codebook
        distances; running the last, pre-quantisation conv in fp32 instead cost 1-4 % of the step and left z_enc's
        error as it was, 0.65 % vs 0.70 %: the error comes from the layers before it)."""
        with P.autocast(precision, x.device):
            return P.widen(self.net(x))


def sonnet_init_(module: nn.Module) -> nn.Module:
    """Sonnet's conv init (truncated normal, std 1/sqrt(fan_in), zero bias), as in the example the paper ported.

    PyTorch's default is about 1.5x smaller per layer; with it the encoder's outputs start far inside the codebook's
    spread and every latent maps to the same code (collapse from step 0).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = m.weight.shape[1] * m.weight[0, 0].numel()
            if isinstance(m, nn.ConvTranspose2d):  # weight is in x out x kh x kw; each output sums in * k*k / s^2
                fan_in = m.weight.shape[0] * m.weight[0, 0].numel() // (m.stride[0] * m.stride[1])
            std = 1.0 / math.sqrt(fan_in)
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(m.bias)
    return module


class Decoder(nn.Module):
    def __init__(self, code_dim: int = 64, hidden: int = 128, residual_hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(code_dim, hidden, 3, stride=1, padding=1),
            ResidualBlock(hidden, residual_hidden),
            ResidualBlock(hidden, residual_hidden),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, 3, 4, stride=2, padding=1),
        )
        sonnet_init_(self)

    def forward(self, z: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
        """Reconstruction, fp32 ("bf16": the decoder under bf16 autocast, its output widened to fp32)."""
        with P.autocast(precision, z.device):
            return P.widen(self.net(z))


def init_codebook(size: int, dim: int) -> nn.Parameter:
    """Sonnet's VarianceScaling init: U(+-sqrt(3/D)) (std 1/sqrt(D), about 0.125 at D = 64)."""
    bound = math.sqrt(3.0 / dim)
    return nn.Parameter(torch.empty(size, dim).uniform_(-bound, bound))


def flatten_latents(z: torch.Tensor) -> torch.Tensor:
    """B x D x h x w -> (B*h*w) x D, position-major within each image."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def unflatten_latents(z_flat: torch.Tensor, batch: int, grid: int) -> torch.Tensor:
    return z_flat.reshape(batch, grid, grid, -1).permute(0, 3, 1, 2)


def squared_distances(z_flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """||z - e||^2 for every row of z_flat (N x D) and code (K x D) -> N x K."""
    return (z_flat.pow(2).sum(1, keepdim=True) - 2 * z_flat @ codebook.T + codebook.pow(2).sum(1)).clamp_min_(0)


def straight_through(z_enc: torch.Tensor, z_vq: torch.Tensor) -> torch.Tensor:
    """z_enc + sg[z_vq - z_enc]: forward value z_vq, gradient passed to z_enc unchanged."""
    return z_enc + (z_vq - z_enc).detach()


def usage_stats(counts: torch.Tensor) -> dict[str, float]:
    """Perplexity of the code-usage histogram, and how many codes were never used."""
    total = counts.sum()
    if total == 0:
        return {"perplexity": 0.0, "dead_codes": int(counts.numel())}
    p = counts.double() / total
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"perplexity": float(entropy.exp()), "dead_codes": int((counts == 0).sum())}


def reset_dead_codes(
    codebook: nn.Parameter, counts: torch.Tensor, recent_latents: torch.Tensor, gen: torch.Generator
) -> int:
    """Optional collapse remedy (off in the paper profile): move unused codes onto random recent encoder outputs."""
    dead = (counts == 0).nonzero().flatten()
    if dead.numel() == 0 or recent_latents.numel() == 0:
        return 0
    pick = torch.randint(recent_latents.shape[0], (dead.numel(),), generator=gen).to(recent_latents.device)
    with torch.no_grad():
        codebook[dead] = recent_latents[pick]
    return int(dead.numel())


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """Shuffled index batches; the order depends only on (seed, epoch), so a resumed run replays the same order."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=gen)
    return list(perm.split(batch_size))


class ImageSource:
    """Training images as float [-1, 1], converted once up front unless that would take too much memory; batches come
    in ``memory_format`` (channels_last by default, the encoder's: indexing a batch keeps it)."""

    def __init__(
        self,
        images: torch.Tensor,
        device: str | torch.device = "cpu",
        memory_format: torch.memory_format = torch.channels_last,
    ):
        self.uint8 = images.to(device)
        self.device = torch.device(device)
        self.memory_format = memory_format
        nbytes = images.numel() * 4
        self.float = (
            to_float(self.uint8).contiguous(memory_format=memory_format) if nbytes <= _PRECONVERT_LIMIT_BYTES else None
        )

    def __len__(self) -> int:
        return self.uint8.shape[0]

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        idx = idx.to(self.device)
        if self.float is not None:
            return self.float[idx]
        return to_float(self.uint8[idx]).contiguous(memory_format=self.memory_format)

    def variance(self) -> float:
        if self.float is not None:
            return float(self.float.var())
        sub = to_float(self.uint8[: min(len(self), 2000)])
        return float(sub.var())


def prior_config_for(cfg: Any, image_size: int, num_codes: int) -> PixelCNNConfig:
    grid = image_size // 4
    layers = cfg.prior_layers if cfg.prior_layers > 0 else min_layers_for_grid(grid)
    return PixelCNNConfig(num_codes=num_codes, dim=cfg.prior_dim, layers=layers, head_hidden=cfg.prior_head_hidden)


class VQModelBase(GenerativeModel):
    """Shared fit/sample/save logic. Subclasses define the quantiser, one training epoch and the prior's indices.

    ``fit`` runs two phases, both checkpointed: the autoencoder (``epochs`` epochs, subclass ``_train_epoch``) and the
    PixelCNN prior on the latent indices (``prior_epochs``). A checkpoint holds tensors and plain values only.
    """

    # Encoder/decoder conv weights (and training batches, ImageSource) in NHWC: 1.27x autoencoder steps per second on
    # one core against NCHW (benchmarks/ab.py); same maths, only the float summation order changes.
    memory_format = torch.channels_last
    # What the training steps (autoencoder and prior) run in: fit sets it from FitConfig.precision (P.resolve).
    precision = "fp32"

    def __init__(self, cfg: Any, image_size: int):
        super().__init__(cfg, image_size)
        if image_size % 4:
            raise ValueError(f"image size must be a multiple of 4, got {image_size}")
        self.grid = image_size // 4
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self._build()

    # -- subclass hooks --
    @abc.abstractmethod
    def _build_quantiser(self) -> None: ...

    @abc.abstractmethod
    def _generation_codebook(self) -> torch.Tensor:
        """Codebook (K x D) that the prior's indices refer to."""

    @abc.abstractmethod
    def _prior_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Latent index grid (B x h x w) of float images, as the prior is trained on."""

    @abc.abstractmethod
    def _train_epoch(self, data: ImageSource, epoch: int, seed: int, labels: torch.Tensor) -> dict[str, Any]: ...

    def _extra_train_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_train_state(self, state: dict[str, Any]) -> None:
        pass

    def _final_history(self, history: dict[str, Any], labels: torch.Tensor) -> None:
        pass

    def _set_aside(self) -> dict[str, Any]:
        """FitResult fields saying which training images the model set aside (none for a plain VQ-VAE)."""
        return {}

    # -- construction --
    def _build(self) -> None:
        c = self.cfg
        self.encoder = Encoder(c.code_dim, c.hidden, c.residual_hidden).to(memory_format=self.memory_format)
        self.decoder = Decoder(c.code_dim, c.hidden, c.residual_hidden).to(memory_format=self.memory_format)
        self._build_quantiser()
        self.prior = GatedPixelCNN(prior_config_for(c, self.image_size, self._generation_codebook().shape[0]))
        self.data_variance = 1.0

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        return [p for m in self._modules_for_state().values() if isinstance(m, nn.Module) for p in m.parameters()] + [
            p for p in self._codebooks().values()
        ]

    def _codebooks(self) -> dict[str, nn.Parameter]:
        return {}

    @property
    def device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    def to(self, device: str | torch.device) -> VQModelBase:
        """Move every network and codebook (in place: optimisers built afterwards see the same Parameters)."""
        for module in (*self._modules_for_state().values(), self.prior):
            module.to(device)
        for p in self._codebooks().values():
            p.data = p.data.to(device)
        self._move_extra_state(torch.device(device))
        return self

    def _move_extra_state(self, device: torch.device) -> None:
        pass

    def _modules_for_state(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    # -- training --
    def fit(
        self,
        train_images: torch.Tensor,
        train_is_outlier: torch.Tensor,
        cfg: FitConfig,
        progress: Progress = null_progress,
    ) -> FitResult:
        ckpt = cfg.checkpoint
        self.precision, fallback = P.resolve(cfg.precision, cfg.device)
        if fallback:
            note(progress, fallback, phase=None)
        state = ckpt.load() if ckpt is not None else None
        labels = train_is_outlier.bool()  # reporting only: never used by training
        data = ImageSource(train_images, cfg.device)
        if state is None:
            with torch.random.fork_rng():
                torch.manual_seed(cfg.seed)
                self._build()
            self.to(cfg.device)
            self.data_variance = data.variance()
            self._opt = adam(self.autoencoder_parameters(), self.cfg.lr)
            history: dict[str, Any] = {"epochs": [], "prior_epochs": []}
            start_epoch, prior_start = 0, 0
        else:
            self.load_state_dict(state["model"])
            self.to(cfg.device)
            self._opt = adam(self.autoencoder_parameters(), self.cfg.lr)
            load_optimizer_state(self._opt, state["opt"])
            self._load_extra_train_state(state.get("extra", {}))
            history = state["history"]
            start_epoch, prior_start = int(state["epoch"]), int(state["prior_epoch"])
        prior_opt = adam(self.prior.parameters(), self.cfg.prior_lr)
        if state is not None and "prior_opt" in state:
            load_optimizer_state(prior_opt, state["prior_opt"])

        def save(epoch: int, prior_epoch: int) -> None:
            if ckpt is None or not ckpt.due():
                return
            blob = {
                "model": self.state_dict(),
                "opt": self._opt.state_dict(),
                "extra": self._extra_train_state(),
                "history": history,
                "epoch": epoch,
                "prior_epoch": prior_epoch,
            }
            if prior_epoch > 0:
                blob["prior_opt"] = prior_opt.state_dict()
            ckpt.save(blob)

        with progress(total=self.cfg.epochs, desc=f"{self.name} train") as bar:
            bar.update(start_epoch)
            for epoch in range(start_epoch, self.cfg.epochs):
                t0 = time.perf_counter()
                self.encoder.train()
                self.decoder.train()
                row = self._train_epoch(data, epoch, cfg.seed, labels)
                row["epoch"] = epoch + 1
                row["img_per_s"] = len(data) / (time.perf_counter() - t0)
                history["epochs"].append(row)
                save(epoch + 1, 0)
                bar.set_postfix(loss=f"{row['loss']:.4g}")
                bar.update(1)

        self.encoder.eval()
        self.decoder.eval()
        note(progress, f"{self.name} prior: encoding the {len(train_images)} training images into its code grids")
        indices = self.latent_indices(train_images).to(self.device)
        with progress(total=self.cfg.prior_epochs, desc=f"{self.name} prior") as bar:
            bar.update(prior_start)
            for pe in range(prior_start, self.cfg.prior_epochs):
                self.prior.train()
                total, count = torch.zeros((), device=self.device), 0
                for b in epoch_batches(len(indices), self.cfg.prior_batch_size, cfg.seed + 7, pe):
                    loss = self.prior.loss(indices[b.to(self.device)], self.precision)
                    prior_opt.zero_grad(set_to_none=True)
                    loss.backward()
                    prior_opt.step()
                    total += loss.detach() * len(b)
                    count += len(b)
                history["prior_epochs"].append({"epoch": pe + 1, "nll": float(total / max(count, 1))})
                save(self.cfg.epochs, pe + 1)
                bar.update(1)
        self.prior.eval()
        if history["epochs"]:
            last = history["epochs"][-1]
            history["final_loss"] = last["loss"]
            history["train_img_per_s"] = sum(r["img_per_s"] for r in history["epochs"]) / len(history["epochs"])
            history["images_seen"] = len(history["epochs"]) * len(data)
        if history["prior_epochs"]:
            history["prior_nll"] = history["prior_epochs"][-1]["nll"]
        history["training_precision"] = self.precision
        if fallback:
            history["training_precision_note"] = fallback
        self._final_history(history, labels)
        return FitResult(history=history, images_seen=int(history.get("images_seen", 0)), **self._set_aside())

    @torch.inference_mode()
    def latent_indices(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """The prior's training targets for uint8 images: N x h x w long (on the CPU)."""
        self.encoder.eval()
        dev = self.device
        out = [
            self._prior_indices(to_float(images[i : i + batch_size].to(dev))).cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(out) if out else torch.zeros(0, self.grid, self.grid, dtype=torch.long)

    @torch.inference_mode()
    def decode_indices(self, idx: torch.Tensor) -> torch.Tensor:
        """Index grid B x h x w -> uint8 images (on the CPU) via the generation codebook and the decoder."""
        self.decoder.eval()
        z = self._generation_codebook()[idx.to(self.device)].permute(0, 3, 1, 2)
        return to_uint8(self.decoder(z)).cpu()

    @torch.inference_mode()
    def reconstruction(self, images: torch.Tensor) -> torch.Tensor:
        """Encode to the prior's index grid and decode: what the generator can draw of ``images`` (in batches)."""
        self.encoder.eval()
        step = self.cfg.sample_batch_size
        parts = [self.decode_indices(self._prior_indices(to_float(images[i : i + step].to(self.device))))
                 for i in range(0, len(images), step)]  # fmt: skip
        return torch.cat(parts) if parts else images[:0].clone()

    @torch.inference_mode()
    def training_scores(self, images: torch.Tensor) -> torch.Tensor:
        """-log p(z) in nats of each image's code grid under the PixelCNN prior (``nll_per_grid``): the prior term of
        the model's log-likelihood (the decoder's term is a fixed-variance reconstruction error, which the detectors'
        page shows barely sees the masks). Without a prior (``prior_epochs`` 0) every grid scores alike."""
        self.prior.eval()
        idx = self.latent_indices(images).to(self.device)
        step = self.cfg.sample_batch_size
        return torch.cat([self.prior.nll_per_grid(idx[i : i + step]).double().cpu() for i in range(0, len(idx), step)])

    @torch.inference_mode()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        self.prior.eval()
        gen = torch.Generator().manual_seed(seed)
        out = []
        for start in range(0, n, self.cfg.sample_batch_size):
            m = min(self.cfg.sample_batch_size, n - start)
            out.append(self.decode_indices(self.prior.sample(m, self.grid, gen)))
        return torch.cat(out) if out else torch.zeros(0, 3, self.image_size, self.image_size, dtype=torch.uint8)

    # -- persistence --
    def state_dict(self) -> dict[str, Any]:
        def host(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to("cpu", copy=True)

        state: dict[str, Any] = {
            f"{k}.{n}": host(t) for k, m in self._modules_for_state().items() for n, t in m.state_dict().items()
        }
        state.update({f"codebook.{k}": host(p) for k, p in self._codebooks().items()})
        state.update({f"prior.{n}": host(t) for n, t in self.prior.state_dict().items()})
        state["data_variance"] = float(self.data_variance)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, module in {**self._modules_for_state(), "prior": self.prior}.items():
            prefix = f"{key}."
            module.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        with torch.no_grad():
            for k, p in self._codebooks().items():
                p.copy_(state[f"codebook.{k}"])
        self.data_variance = float(state.get("data_variance", 1.0))
