"""Learned label-free outlier detectors: features or a reconstruction model trained on the contaminated set itself.

``bench.detectors`` scores images in a fixed feature space (pixels, principal components). The detectors here learn
one from the training images they are asked to score, without labels:

- ``ssl-mcd``: a small CNN trained self-supervised with SimCLR's contrastive loss (NT-Xent on two augmented views;
  Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual Representations", ICML
  2020), then a score in its embedding: a robust Mahalanobis distance (MinCovDet) on its whitened principal
  components, or the mean cosine distance to the k nearest other images.
- ``trimmed-ae``: a conv autoencoder refitted on the images it reconstructs best (trimmed likelihood): fit on all,
  drop the worst ``trim`` share, refit on the rest, ``rounds`` times; score = reconstruction error.
- ``ensemble``: the mean of the rank-normalised scores of several registered detectors.

All three train or call models, so they are registered ``cheap=False``: they serve as ``--filter NAME:F`` but the
report's per-split detector table does not fit them. Deterministic for a seed at a given thread count (initial weights,
batch order and augmentations come from ``torch.Generator`` objects seeded from it; the global RNG is left as it was),
and they use the threads the caller set with ``torch.set_num_threads``. Measured in docs/detectors.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench import fields as _fields
from bench.detectors import register_detector, robust_mahalanobis
from bench.errors import BenchError

# ---- shared pieces -------------------------------------------------------------------------------------------------


def _to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x C x H x W -> float32 in [0, 1]."""
    return images.float() / 255.0


def _seeded_module(seed: int, build: type[nn.Module], *args: int) -> nn.Module:
    """``build(*args)`` with its initial weights drawn from ``seed``, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(*args)


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch of index batches; a last batch of fewer than 2 images is merged into the one before."""
    order = torch.randperm(n, generator=gen)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches[-2] = torch.cat([batches[-2], batches.pop()])
    return batches


@torch.no_grad()
def _in_chunks(fn, x: torch.Tensor, size: int = 512) -> torch.Tensor:
    return torch.cat([fn(chunk) for chunk in x.split(size)])


# ---- ssl-mcd -------------------------------------------------------------------------------------------------------


def augment(x: torch.Tensor, gen: torch.Generator, min_crop: float = 0.3) -> torch.Tensor:
    """One SimCLR-style random view of each float image in [0, 1] (N x 3 x H x W), all draws from ``gen``.

    Random resized crop (area in [min_crop, 1], aspect ratio in [3/4, 4/3], resized back by bilinear sampling) with a
    horizontal flip half the time; colour jitter with probability 0.8 (brightness, contrast, saturation each by a
    factor in [0.6, 1.4]; no hue shift); grey-scale with probability 0.2; a Gaussian blur (3 x 3, sigma in
    [0.1, 1]) half the time.
    """
    n, c, h, w = x.shape
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    # crop + flip as one affine map of the sampling grid (normalised coordinates, [-1, 1])
    area = min_crop + (1 - min_crop) * u(n)
    ratio = torch.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u(n))
    cw, ch = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    tx, ty = (1 - cw) * (2 * u(n) - 1), (1 - ch) * (2 * u(n) - 1)
    flip = torch.where(u(n) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = cw * flip, tx, ch, ty
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # colour jitter (applied to a random 80 %), then grey-scale (20 %)
    jitter = (u(n) < 0.8).float().view(n, 1, 1, 1)
    b, k, s = (1 + jitter * 0.4 * (2 * u(n, 1, 1, 1) - 1) for _ in range(3))
    x = x * b
    grey = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]) if c == 3 else x.mean(1, keepdim=True)
    x = (x - grey.mean((2, 3), keepdim=True)) * k + grey.mean((2, 3), keepdim=True)
    grey = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]) if c == 3 else x.mean(1, keepdim=True)
    x = (x - grey) * s + grey
    to_grey = (u(n) < 0.2).view(n, 1, 1, 1)
    x = torch.where(to_grey, grey.expand_as(x), x)
    # Gaussian blur, one sigma per image (grouped 1-D convolutions), on half the images
    sigma = 0.1 + 0.9 * u(n)
    taps = torch.exp(-(torch.tensor([-1.0, 0.0, 1.0]) ** 2) / (2 * sigma.view(n, 1) ** 2))
    taps = taps / taps.sum(1, keepdim=True)
    taps = torch.where((u(n) < 0.5).view(n, 1), taps, torch.tensor([0.0, 1.0, 0.0]))
    kernel = taps.repeat_interleave(c, 0)  # (n c) x 3
    flat = x.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (1, 1, 0, 0), mode="replicate"), kernel.view(n * c, 1, 1, 3), groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, 1, 1), mode="replicate"), kernel.view(n * c, 1, 3, 1), groups=n * c)
    return flat.reshape(n, c, h, w).clamp(0, 1)


class SmallEncoder(nn.Module):
    """4 conv layers (width, 2w, 4w, 4w channels, each stride 2) + global average pool -> 4w features,
    and a 2-layer projection head to ``dim`` for the contrastive loss."""

    def __init__(self, width: int, dim: int) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
            ]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(chans[-1], chans[-1]), nn.ReLU(inplace=True), nn.Linear(chans[-1], dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x - 0.5) / 0.25))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross entropy: each view must pick its partner among the 2B - 1 others."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    b = z1.shape[0]
    sim = (z @ z.T) / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)])
    return F.cross_entropy(sim, target)


def knn_cosine_scores(emb: torch.Tensor, k: int) -> torch.Tensor:
    """Mean cosine distance of each row to its k nearest other rows (k capped at N - 1)."""
    e = F.normalize(emb.double(), dim=1)
    k = min(k, e.shape[0] - 1)
    out = []
    for start in range(0, e.shape[0], 1024):
        sim = e[start : start + 1024] @ e.T
        rows = torch.arange(sim.shape[0])
        sim[rows, rows + start] = float("-inf")  # not its own neighbour
        out.append(1.0 - sim.topk(k, dim=1).values.mean(1))
    return torch.cat(out)


@dataclass(frozen=True)
class SSLParams:
    epochs: int = 20  # passes over the training images (two views each); ~4 s each for 4,300 32 px images, 1 core
    batch_size: int = 256  # images per contrastive batch (2 x that many views)
    width: int = 32  # channels of the first conv layer (then 2w, 4w, 4w)
    dim: int = 64  # projection head output, where the loss is computed
    temperature: float = 0.5  # NT-Xent temperature (SimCLR's CIFAR-10 setting)
    lr: float = 1e-3  # Adam learning rate
    min_crop: float = 0.3  # smallest crop area of the random resized crop, in (0, 1]
    # "mcd": robust Mahalanobis (MinCovDet) on the embedding's whitened top-`components` principal components;
    # "knn": mean cosine distance to the k nearest other images (misses a large compact outlier group: see the doc)
    score: str = "mcd"
    k: int = 10  # neighbours averaged by score="knn"
    components: int = 8  # principal components of the embedding used by score="mcd"
    embedding: str = "backbone"  # "backbone": the pooled 4w features; "projection": the dim-d head output

    def __post_init__(self) -> None:
        _fields.require_positive(
            self, ["epochs", "batch_size", "width", "dim", "temperature", "lr", "min_crop", "k", "components"]
        )
        _fields.require(self.min_crop <= 1, f"min_crop must be in (0, 1], got {self.min_crop!r}")
        _fields.require(self.batch_size >= 2, f"batch_size must be at least 2, got {self.batch_size!r}")
        _fields.require_choice(self, "score", ("mcd", "knn"))
        _fields.require_choice(self, "embedding", ("backbone", "projection"))


def ssl_embedding(images: torch.Tensor, params: SSLParams, seed: int) -> torch.Tensor:
    """Train the SimCLR encoder on ``images`` (uint8) and return their embeddings (float32 N x d, not normalised)."""
    x = _to_float(images)
    gen = torch.Generator().manual_seed(seed)
    model = _seeded_module(seed, SmallEncoder, params.width, params.dim)
    opt = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=1e-6)
    model.train()
    for _ in range(params.epochs):
        for idx in _batches(len(x), params.batch_size, gen):
            batch = x[idx]
            z1, z2 = model(augment(batch, gen, params.min_crop)), model(augment(batch, gen, params.min_crop))
            loss = nt_xent(z1, z2, params.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    embed = model if params.embedding == "projection" else (lambda b: model.features((b - 0.5) / 0.25))
    return _in_chunks(embed, x)


@register_detector(
    "ssl-mcd",
    params=SSLParams,
    cheap=False,
    description="SimCLR-trained small CNN on the training set itself; robust Mahalanobis (or k-NN) in its embedding",
)
def _ssl_mcd(images: torch.Tensor, params: SSLParams, seed: int) -> torch.Tensor:
    """Self-supervised features of the contaminated set (SimCLR, Chen et al. 2020), then a label-free score in them.

    ``score="mcd"`` (default) L2-normalises the embeddings, fits a robust covariance (MinCovDet) on the least
    outlying half of their whitened top principal components and scores the distance from it: it finds a large
    compact outlier group. ``score="knn"`` scores the mean cosine distance to the k nearest other images: it finds
    isolated images, but ranks a large compact group (whose members are each other's neighbours) as inliers, which
    is why it is not the default (FaceMask at r = 30 %: AUC 0.25 against 0.999, docs/detectors.md).
    """
    emb = ssl_embedding(images, params, seed)
    if params.score == "knn":
        return knn_cosine_scores(emb, params.k)
    return robust_mahalanobis(F.normalize(emb.double(), dim=1), params.components, seed, "ssl-mcd")


# ---- trimmed-ae ----------------------------------------------------------------------------------------------------


class ConvAutoencoder(nn.Module):
    """Three stride-2 conv layers down (width, 2w, 4w channels) to a ``latent``-d code, and back up."""

    def __init__(self, width: int, latent: int, size: int) -> None:
        super().__init__()
        self.side = max(1, size // 8)
        c = 4 * width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, c, 4, 2, 1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(self.side), nn.Flatten(), nn.Linear(c * self.side**2, latent),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(latent, c * self.side**2), nn.ReLU(inplace=True), nn.Unflatten(1, (c, self.side, self.side)),
            nn.ConvTranspose2d(c, 2 * width, 4, 2, 1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, 3, 4, 2, 1),
        )  # fmt: skip
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.decoder(self.encoder(x - 0.5))
        if y.shape[-1] != self.size or y.shape[-2] != self.size:
            y = F.interpolate(y, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return torch.sigmoid(y)


@dataclass(frozen=True)
class TrimmedAEParams:
    epochs: int = 5  # training passes per round
    trim: float = 0.3  # share of the worst-reconstructed images left out of the next round, in [0, 1)
    rounds: int = 3  # trimmed refits after the first fit on all images (0 = a plain autoencoder)
    width: int = 32  # channels of the first conv layer (then 2w, 4w)
    latent: int = 4  # size of the bottleneck code (tight, so that it models the majority; see the doc)
    batch_size: int = 64
    lr: float = 1e-3  # Adam learning rate
    warm_start: bool = True  # each round continues from the last model (False: a fresh model per round)

    def __post_init__(self) -> None:
        _fields.require_positive(self, ["epochs", "width", "latent", "batch_size", "lr"])
        _fields.require_non_negative(self, ["rounds"])
        _fields.require(0 <= self.trim < 1, f"trim must be in [0, 1), got {self.trim!r}")


def _reconstruction_errors(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return _in_chunks(lambda b: (model(b) - b).pow(2).flatten(1).mean(1), x).double()


@register_detector(
    "trimmed-ae",
    params=TrimmedAEParams,
    cheap=False,
    description="conv autoencoder refitted on its best-reconstructed (1 - trim) share; score = reconstruction error",
)
def _trimmed_ae(images: torch.Tensor, params: TrimmedAEParams, seed: int) -> torch.Tensor:
    """Trimmed-likelihood autoencoder: fit on all images, then ``rounds`` times drop the ``trim`` share with the
    largest reconstruction error and refit on the rest; score every image by its error under the last model.

    The trimming keeps a minority the first fit learned to reconstruct out of the later fits, so that its error
    grows; an autoencoder that reconstructs the outliers as well as the inliers in round one gives no signal.
    """
    x = _to_float(images)
    gen = torch.Generator().manual_seed(seed)
    size = x.shape[-1]
    model = _seeded_module(seed, ConvAutoencoder, params.width, params.latent, size)
    keep = torch.arange(len(x))
    for round_ in range(params.rounds + 1):
        if round_ > 0:
            errors = _reconstruction_errors(model, x)
            n_keep = max(2, len(x) - math.ceil(params.trim * len(x) - 1e-9))
            keep = torch.argsort(errors, stable=True)[:n_keep]
            if not params.warm_start:
                model = _seeded_module(seed + round_, ConvAutoencoder, params.width, params.latent, size)
        opt = torch.optim.Adam(model.parameters(), lr=params.lr)
        model.train()
        train = x[keep]
        for _ in range(params.epochs):
            for idx in _batches(len(train), params.batch_size, gen):
                batch = train[idx]
                loss = F.mse_loss(model(batch), batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return _reconstruction_errors(model, x)


# ---- ensemble ------------------------------------------------------------------------------------------------------


def rank_normalise(scores: torch.Tensor) -> torch.Tensor:
    """Ranks / N (ties share their average rank): 1/N for the lowest score, 1 for the highest."""
    from scipy.stats import rankdata

    return torch.from_numpy(rankdata(scores.double().numpy(), method="average") / scores.numel())


@dataclass(frozen=True)
class EnsembleParams:
    # registered detectors, each run at its defaults, separated by "," or "+" ("+" inside --filter, whose own
    # parameters are comma-separated: --filter ensemble:0.3:members=mcd+ssl-mcd)
    members: str = "mcd,ssl-mcd"

    def __post_init__(self) -> None:
        from bench import detectors

        _fields.require(isinstance(self.members, str), f"members must be a string, got {self.members!r}")
        names = self.member_names
        _fields.require(bool(names), f"members must name at least one detector, got {self.members!r}")
        _fields.require(len(set(names)) == len(names), f"members must not repeat a detector, got {self.members!r}")
        _fields.require("ensemble" not in names, "members must not include ensemble itself")
        for name in names:
            try:
                detectors.get(name)
            except BenchError:
                raise ValueError(
                    f"members must be registered detectors ({', '.join(detectors.names())}), got {name!r}"
                ) from None

    @property
    def member_names(self) -> list[str]:
        return [n.strip() for n in self.members.replace("+", ",").split(",") if n.strip()]


@register_detector(
    "ensemble",
    params=EnsembleParams,
    cheap=False,
    description="mean of the rank-normalised scores (ranks / N) of several registered detectors, each at its defaults",
)
def _ensemble(images: torch.Tensor, params: EnsembleParams, seed: int) -> torch.Tensor:
    """Rank averaging: each member's scores become ranks / N (scales and units no longer matter), then the mean.
    An image every member puts near the top stays there; one flagged by a single member moves to the middle."""
    from bench import detectors

    ranks = [rank_normalise(detectors.score(name, images, None, seed)) for name in params.member_names]
    return torch.stack(ranks).mean(0)


__all__ = [
    "ConvAutoencoder",
    "EnsembleParams",
    "SSLParams",
    "SmallEncoder",
    "TrimmedAEParams",
    "augment",
    "knn_cosine_scores",
    "nt_xent",
    "rank_normalise",
    "ssl_embedding",
]
