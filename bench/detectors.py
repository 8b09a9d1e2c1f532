"""Trivial outlier detectors and the metrics used to judge any flagged set against the true outlier labels.

The detectors are baselines for RVQ-VAE's self-recognition step: if a model's "top eta of reconstruction errors"
does not beat the distance to the mean image or a PCA residual, its flagging adds nothing. Higher score = more
outlying. The VQ models report their per-epoch flagged sets through ``flag_metrics`` so every number is computed
the same way.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def _flat_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 or float N x C x H x W -> float64 N x P (uint8 is mapped to [0, 1])."""
    x = images.reshape(images.shape[0], -1)
    return x.double() / 255.0 if images.dtype == torch.uint8 else x.double()


def mean_distance_scores(images: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of each image to the mean image of the set."""
    x = _flat_float(images)
    return (x - x.mean(0, keepdim=True)).norm(dim=1)


def pca_residual_scores(images: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Norm of each image's residual after projecting onto the top-k principal components of the set."""
    x = _flat_float(images)
    x = x - x.mean(0, keepdim=True)
    k = max(0, min(k, min(x.shape) - 1))
    if k == 0:
        return x.norm(dim=1)
    # Right singular vectors of the centred data = principal directions.
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    basis = vh[:k]  # k x P
    residual = x - (x @ basis.T) @ basis
    return residual.norm(dim=1)


def trivial_detectors(images: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """The no-training baselines a self-recognition step is compared with: (name, outlier scores) pairs."""
    return [("distance to mean image", mean_distance_scores(images)), ("PCA-8 residual", pca_residual_scores(images, 8))]


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """ROC AUC of ``scores`` for positive ``labels`` via the Mann-Whitney U statistic (ties get average ranks).

    Returns NaN when one class is empty.
    """
    scores = scores.detach().double().flatten()
    labels = labels.detach().bool().flatten()
    n_pos = int(labels.sum())
    n_neg = labels.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(scores, stable=True)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    # Average rank (1-based) within each run of tied scores.
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    starts = ends - counts.double() + 1
    ranks[order] = ((starts + ends) / 2)[inverse]
    rank_sum_pos = ranks[labels].sum().item()
    u = rank_sum_pos - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def top_fraction(scores: torch.Tensor, eta: float) -> torch.Tensor:
    """Boolean mask of the ceil(eta * N) highest scores (ties broken by index, lowest first)."""
    n = scores.numel()
    k = min(n, math.ceil(eta * n - 1e-9))
    mask = torch.zeros(n, dtype=torch.bool, device=scores.device)
    if k > 0:
        mask[torch.topk(scores.detach().double().flatten(), k, sorted=False).indices] = True
    return mask


def flag_metrics(
    is_outlier: torch.Tensor,
    eta: float,
    scores: torch.Tensor | None = None,
    flagged: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Precision/recall of a flagged set against the true outliers, AUC of the flagging score, and references.

    ``flagged`` defaults to the top ``eta`` of ``scores``. The references: chance precision = true outlier ratio
    r; because only a fraction eta is flagged, recall cannot exceed min(1, eta/r) and precision cannot exceed
    min(1, r/eta). Undefined values (nothing flagged, no outliers, no scores) are None (JSON null).
    """
    is_outlier = is_outlier.detach().bool().flatten()
    if flagged is None:
        if scores is None:
            raise ValueError("flag_metrics needs scores or a flagged mask")
        flagged = top_fraction(scores, eta)
    flagged = flagged.detach().bool().flatten()
    n = is_outlier.numel()
    n_out = int(is_outlier.sum())
    n_flag = int(flagged.sum())
    hits = int((flagged & is_outlier).sum())
    r = n_out / n if n else float("nan")
    auc = roc_auc(scores, is_outlier) if scores is not None else float("nan")
    return {
        "precision": hits / n_flag if n_flag else None,
        "recall": hits / n_out if n_out else None,
        "auc": None if math.isnan(auc) else auc,
        "flagged": n_flag,
        "chance_precision": r,
        "recall_ceiling": min(1.0, eta / r) if r > 0 else None,
        "precision_ceiling": min(1.0, r / eta) if eta > 0 else None,
    }


# ------------------------------------------------------------------ registry (interim; the detectors branch extends it)
import dataclasses  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable  # noqa: E402

from bench import fields as _fields  # noqa: E402
from bench.errors import BenchError  # noqa: E402


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    fn: Callable[[torch.Tensor, Any, int], torch.Tensor]
    params_cls: type
    description: str = ""
    cheap: bool = True  # fitted on every split for the report's detector table (False: only when used as a filter)

    def make_params(self, overrides: dict[str, Any] | None = None) -> Any:
        return _fields.build(self.params_cls, dict(overrides or {}), f"detector {self.name}")

    def score(self, images: torch.Tensor, params: Any = None, seed: int = 0) -> torch.Tensor:
        params = self.make_params() if params is None else params
        return torch.as_tensor(self.fn(images, params, seed)).detach().double().flatten()


_DETECTORS: dict[str, DetectorSpec] = {}


def register_detector(name: str, *, params: type, description: str = "", cheap: bool = True) -> Callable:
    def deco(fn: Callable) -> Callable:
        if name in _DETECTORS and _DETECTORS[name].fn.__qualname__ != fn.__qualname__:
            raise BenchError(f"detector name '{name}' is already registered")
        _DETECTORS[name] = DetectorSpec(name, fn, params, description or (fn.__doc__ or "").strip().split("\n")[0],
                                        cheap)
        return fn

    return deco


def names() -> list[str]:
    return sorted(_DETECTORS)


def get(name: str) -> DetectorSpec:
    if name not in _DETECTORS:
        raise BenchError(f"unknown detector '{name}': choose from {', '.join(names())}")
    return _DETECTORS[name]


def make_params(name: str, overrides: dict[str, Any] | None = None) -> Any:
    return get(name).make_params(overrides)


@dataclass(frozen=True)
class _NoParams:
    pass


@dataclass(frozen=True)
class _PCAParams:
    k: int = 8


@register_detector("mean", params=_NoParams)
def _mean(images: torch.Tensor, params: Any, seed: int) -> torch.Tensor:
    """Euclidean distance to the mean training image."""
    return mean_distance_scores(images)


@register_detector("pca", params=_PCAParams)
def _pca(images: torch.Tensor, params: Any, seed: int) -> torch.Tensor:
    """Residual norm after projecting onto the top-k principal components."""
    return pca_residual_scores(images, params.k)
