"""The one interface every generative model implements, plus checkpointing shared by all of them.

Images cross this interface as uint8 tensors N x 3 x H x W. ``train_is_outlier`` is passed to ``fit`` only so a
model can *report* how well it set outliers aside (e.g. per epoch): no model may train on it (``bench check-model``
permutes the labels and checks that nothing changes). ``fit`` returns a :class:`FitResult`; a robust model says
there which training images it set aside (``set_aside``, ``outlier_scores``), and the harness scores that against
the labels.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from bench import atomic, registries
from bench.errors import BenchError
from bench.progress import Progress, null_progress


class Checkpointer:
    """Periodic, atomic training-state snapshots so an interrupted cell resumes where it stopped."""

    def __init__(self, path: str | Path, every_s: float = 300.0):
        self.path = Path(path)
        self.every_s = every_s
        self._last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.every_s

    def save(self, state: dict[str, Any]) -> None:
        atomic.torch_save(self.path, state)
        self._last = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            return torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # a corrupt checkpoint is not fatal: start the cell over
            print(f"warning: ignoring unreadable checkpoint {self.path}: {e}")
            return None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class FitConfig:
    """Run-level settings for one ``fit`` call (the model's own hyper-parameters live in ``model.cfg``)."""

    seed: int = 0
    checkpoint: Checkpointer | None = None
    device: str = "cpu"
    # "fp32" or "bf16" (bench.precision): bf16 trains the built-in models' forward passes under bf16 autocast where
    # the device computes bf16 natively (fit falls back to fp32 with a note elsewhere). Sampling stays fp32.
    precision: str = "fp32"


@dataclass
class FitResult:
    """What ``fit`` returns.

    ``history``: anything JSON-serialisable the model wants stored (losses per epoch, ...), kept in metrics.json.
    ``images_seen``: training images processed by the main training (epochs x N, or iterations x real batch), for the
    img/s column. ``set_aside`` (bool, one per training image) and ``outlier_scores`` (float, higher = more outlying):
    optional, label-free, what a robust model set aside; the harness reports their precision / recall / AUC.
    ``set_aside_rule``: one line saying how ``set_aside`` was chosen.
    """

    history: dict[str, Any] = field(default_factory=dict)
    images_seen: int = 0
    set_aside: torch.Tensor | None = None
    outlier_scores: torch.Tensor | None = None
    set_aside_rule: str = ""

    @classmethod
    def coerce(cls, result: Any, n_train: int) -> FitResult:
        """A model's return value as a FitResult (a bare history dict from an older plug-in is accepted)."""
        if isinstance(result, FitResult):
            return result
        if isinstance(result, dict):
            return cls(history=result, images_seen=int(result.get("images_seen", n_train)))
        if result is None:
            return cls(images_seen=n_train)
        raise BenchError(f"fit returned {type(result).__name__}: it must return a bench.api.FitResult")


class GenerativeModel(abc.ABC):
    """Base class: subclasses set ``name`` via ``@register_model`` and take their config dataclass."""

    name: ClassVar[str] = ""

    def __init__(self, cfg: Any, image_size: int):
        self.cfg = cfg
        self.image_size = image_size

    @abc.abstractmethod
    def fit(
        self,
        train_images: torch.Tensor,
        train_is_outlier: torch.Tensor,
        cfg: FitConfig,
        progress: Progress = null_progress,
    ) -> FitResult:
        """Train on uint8 images N x 3 x H x W (never on ``train_is_outlier``); return a :class:`FitResult`."""

    @abc.abstractmethod
    def sample(self, n: int, seed: int) -> torch.Tensor:
        """``n`` generated images as uint8 N x 3 x H x W; the same seed gives the same images."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything ``sample`` needs, as tensors and plain Python values (loadable with weights_only=True)."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def inlier_only_reconstruction(self, images: torch.Tensor) -> torch.Tensor | None:
        """Optional diagnostic of models with an inlier model inside (RVQ-VAE's C_in): ``images`` encoded and decoded
        through the inlier part only, as uint8. The harness then measures whether the inlier part refuses outliers.
        None (the default): the model has no such part."""
        return None

    def reconstruction(self, images: torch.Tensor) -> torch.Tensor | None:
        """Optional, for models with an encoder: uint8 ``images`` encoded and decoded along the path the model samples
        from, as uint8. The harness measures how many held-out real outliers survive it (can the model draw the
        contamination at all?). None (the default): the model has no encoder."""
        return None

    def training_scores(self, images: torch.Tensor) -> torch.Tensor | None:
        """Optional, the model's own label-free outlier score of uint8 ``images`` after ``fit``: float, one per image,
        higher = less likely under the model (e.g. a negative log-likelihood). ``--filter self-trim:F`` uses it to
        refit the model without the images it finds least likely (trimmed likelihood). None (the default): the model
        has no such score, and cannot be put behind that filter."""
        return None

    @classmethod
    def scores_training_images(cls) -> bool:
        """Whether the class overrides ``training_scores`` (checked before a grid starts, without building it)."""
        return cls.training_scores is not GenerativeModel.training_scores

    def save(self, path: str | Path) -> None:
        atomic.torch_save(
            path,
            {
                "model": self.name,
                "image_size": self.image_size,
                "config": dataclasses.asdict(self.cfg),
                "state": self.state_dict(),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> GenerativeModel:
        """The model saved at ``path``, of the registered model the file names (looked up by kind in
        ``bench.registries``: this module sits below the model registry and never imports it)."""
        try:
            blob = torch.load(Path(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise BenchError(f"model file not found: {path}") from None
        except Exception as e:
            raise BenchError(f"cannot read model file {path}: {e}") from None
        spec = registries.registry_of("model").get(blob["model"])
        model = spec.cls(spec.config_cls(**blob["config"]), blob["image_size"])
        model.load_state_dict(blob["state"])
        return model


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (clamped, rounded)."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
