"""Reference generators (``bench/robustness.py``): ``replay`` draws training images uniformly, ``replay-inliers`` the
training inliers only (an oracle: it reads the outlier labels by design). No training beyond bookkeeping; they anchor
the robustness index and appear in every report, set apart from real models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

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
