"""Reference generators (``bench/robustness.py``): ``replay`` draws training images uniformly, ``replay-inliers`` the
training inliers only (an oracle: it reads the outlier labels by design). No training beyond bookkeeping; they anchor
the robustness index and appear in every report, set apart from real models.

Three gaming probes beside them, generators a metric must not call robust: ``replay-blur`` (``replay`` blurred by a
Gaussian of 2 px at 32 px, scaled with the image size: what a blurry decoder does to its training data),
``replay-noise`` (``replay`` with Gaussian noise of sigma 0.1: a noisy GAN) and ``collapse`` (a handful of training
inliers repeated: a collapsed model; it reads the labels to pick them, as the worst case of a collapse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bench.degradations import Degradation, noise
from bench.models.base import FitConfig, FitResult, GenerativeModel
from bench.models.registry import register_model
from bench.progress import Progress, null_progress
from bench.robustness import replay_samples

_ALL_PROFILES: dict[str, Any] = {"paper": {}, "cpu": "paper", "demo": "paper", "smoke": "paper"}


@dataclass
class ReplayConfig:
    """No settings: a replay generator has nothing to tune."""


class _Replay(GenerativeModel):
    only_inliers = False

    def fit(self, train_images: torch.Tensor, train_is_outlier: torch.Tensor, cfg: FitConfig,
            progress: Progress = null_progress) -> FitResult:  # fmt: skip
        keep = ~train_is_outlier.bool() if self.only_inliers else torch.ones(len(train_images), dtype=torch.bool)
        self.images = train_images[keep].clone()
        return FitResult(history={"stored_images": int(keep.sum())}, images_seen=len(train_images))

    def sample(self, n: int, seed: int) -> torch.Tensor:
        return replay_samples(self.images, n, seed)

    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.images = state["images"]


# bf16=False: nothing is trained, so a run's precision must not make these cells new ones.
@register_model("replay", config=ReplayConfig, profiles=_ALL_PROFILES, kind="reference", title="replay (no robustness)",
                bf16=False)  # fmt: skip
class Replay(_Replay):
    """Reference: draws training images uniformly (generates exactly the contamination)."""


@register_model("replay-inliers", config=ReplayConfig, profiles=_ALL_PROFILES, kind="reference", oracle=True,
                title="replay inliers (oracle)", bf16=False)  # fmt: skip
class ReplayInliers(_Replay):
    """Reference, oracle: draws training inliers uniformly (reads the outlier labels: the ceiling, not a method)."""

    only_inliers = True


BLUR_SIGMA_AT_32_PX = 2.0
NOISE_SIGMA = 0.1
COLLAPSE_IMAGES = 8


@register_model("replay-blur", config=ReplayConfig, profiles=_ALL_PROFILES, kind="reference",
                title="probe: replay, blurred", bf16=False)  # fmt: skip
class ReplayBlur(_Replay):
    """Gaming probe: replay blurred by sigma = 2 px at 32 px (scaled with the image size)."""

    def sample(self, n: int, seed: int) -> torch.Tensor:
        return Degradation("blur", BLUR_SIGMA_AT_32_PX).apply(replay_samples(self.images, n, seed))


@register_model("replay-noise", config=ReplayConfig, profiles=_ALL_PROFILES, kind="reference",
                title="probe: replay, noisy", bf16=False)  # fmt: skip
class ReplayNoise(_Replay):
    """Gaming probe: replay with Gaussian noise of sigma 0.1 (of the full range)."""

    def sample(self, n: int, seed: int) -> torch.Tensor:
        return noise(replay_samples(self.images, n, seed), NOISE_SIGMA, torch.Generator().manual_seed(seed))


# oracle=True: it reads the labels to pick clean images (the worst case of a collapse for the metric).
@register_model("collapse", config=ReplayConfig, profiles=_ALL_PROFILES, kind="reference", oracle=True,
                title="probe: collapsed (8 inliers)", bf16=False)  # fmt: skip
class Collapse(_Replay):
    """Gaming probe: 8 training inliers repeated (a collapsed generator that happens to be clean)."""

    only_inliers = True

    def fit(self, train_images: torch.Tensor, train_is_outlier: torch.Tensor, cfg: FitConfig,
            progress: Progress = null_progress) -> FitResult:  # fmt: skip
        result = super().fit(train_images, train_is_outlier, cfg, progress)
        self.images = self.images[:COLLAPSE_IMAGES].clone()
        return result
