"""Trivial outlier detectors and the metrics used to judge any flagged set against the true outlier labels.

The detectors are baselines for RVQ-VAE's self-recognition step: if a model's "top eta of reconstruction errors"
does not beat the distance to the mean image or a PCA residual, its flagging adds nothing. Higher score = more
outlying. The VQ models report their per-epoch flagged sets through ``flag_metrics`` so every number is computed
the same way.

The registry below (``register_detector``, ``get``, ``names``, ``make_params``, ``score``) holds the label-free
detectors a "detect, drop, then train an ordinary model" baseline is built from: ``mean``, ``pca`` (the two above),
``iforest``, ``lof``, ``mcd`` (scikit-learn on whitened top-k principal components) and ``kurtosis`` (projection
pursuit). Measured on the FaceMask stand-ins in docs/detectors.md. The registry is the generic one
(``bench.registries``): names, the "name taken" rule (a plug-in never takes a built-in's name), origins.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench import fields as _fields
from bench.errors import BenchError
from bench.registries import NAME_PATTERN, Registry  # noqa: F401 (NAME_PATTERN: detectors.NAME_PATTERN)


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
    _, basis = top_principal_components(x, k)  # P x k (none when k clips to 0: the residual is x itself)
    residual = x - (x @ basis) @ basis.T
    return residual.norm(dim=1)


def trivial_detectors(images: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """The no-training baselines a self-recognition step is compared with: (name, outlier scores) pairs."""
    return [
        ("distance to mean image", mean_distance_scores(images)),
        ("PCA-8 residual", pca_residual_scores(images, 8)),
    ]


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


# --------------------------------------------------------------------------------------------------------------------
# Detector registry: label-free outlier detectors a "detect, drop, then train" baseline can be built from.
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorSpec:
    """One registered detector: ``fn(images, params, seed) -> float64 scores`` (higher = more outlying)."""

    name: str
    fn: Callable[[torch.Tensor, Any, int], torch.Tensor]
    params_cls: type
    description: str = ""
    cheap: bool = True  # fitted on every split for the report's detector table (False: only when used as a filter)

    def make_params(self, overrides: dict[str, Any] | None = None) -> Any:
        """The params dataclass with ``overrides`` applied: names, types (``bench.fields``) and ranges checked."""
        return _fields.build(self.params_cls, dict(overrides or {}), f"detector {self.name}")

    def score(self, images: torch.Tensor, params: Any = None, seed: int = 0) -> torch.Tensor:
        """Outlier scores of ``images`` (uint8 N x C x H x W), float64, one per image; deterministic for ``seed``."""
        if params is None:
            params = self.make_params()
        elif not isinstance(params, self.params_cls):
            raise BenchError(
                f"detector {self.name} takes {self.params_cls.__name__} parameters, not {type(params).__name__}: "
                f"build them with make_params('{self.name}', {{...}})"
            )
        _check_images(self.name, images)
        scores = torch.as_tensor(self.fn(images, params, seed)).detach().to(torch.float64).flatten()
        if scores.numel() != images.shape[0] or not torch.isfinite(scores).all():
            raise BenchError(
                f"detector {self.name} ({self.fn.__module__}) broke its contract: {scores.numel()} scores for "
                f"{images.shape[0]} images, {int((~torch.isfinite(scores)).sum())} not finite"
            )
        return scores


DETECTORS: Registry[DetectorSpec] = Registry(
    "detector", decorator="register_detector", expects="a function (images, params, seed)"
)
_DETECTORS = DETECTORS.mapping  # name -> DetectorSpec, what is registered now (the former dict; tests)


def register_detector(
    name: str, *, params: type, description: str = "", cheap: bool = True
) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    """Decorator: register ``fn(images, params, seed) -> scores`` as detector ``name``.

    ``params`` is a dataclass whose fields all have defaults; ``make_params(name, overrides)`` type-checks
    overrides against those defaults (``bench.fields``) and the dataclass's ``__post_init__`` checks ranges
    (``bench.fields.require*``). ``fn`` gets uint8 training images N x C x H x W, never labels, and returns one
    float score per image, higher = more outlying, the same for the same seed. Registering a taken name raises
    BenchError (re-importing the module that registered it is allowed; a built-in's name is never given to a
    plug-in). ``cheap=False`` (e.g. a detector that trains a
    model) keeps it out of the detector table every grid computes; it still serves as a filter.
    """
    where = DETECTORS.where(name)
    DETECTORS.check_name(name)
    if not (isinstance(params, type) and dataclasses.is_dataclass(params)):
        raise BenchError(f"{where}: params must be a dataclass class, got {params!r}")
    missing = [
        f.name
        for f in dataclasses.fields(params)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise BenchError(f"{where}: params field '{missing[0]}' needs a default (make_params starts from them)")

    def deco(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        DETECTORS.check_object(name, fn)
        DETECTORS.check_free(name, fn)
        spec = DetectorSpec(name, fn, params, description or (fn.__doc__ or "").strip().split("\n")[0], cheap)
        spec.make_params()  # the defaults must pass the params' own checks now, not in a worker later
        DETECTORS.add(name, fn, spec)
        return fn

    return deco


def names() -> list[str]:
    """Registered detector names, sorted."""
    return DETECTORS.names()


def get(name: str) -> DetectorSpec:
    """The detector registered as ``name``; BenchError "unknown detector 'name': choose from ..." if there is none."""
    return DETECTORS.get(name)


def origin_of(name: str) -> str | dict[str, str | None]:
    """``"built-in"`` or the plug-in's ``{"module", "sha256", "distribution"}`` (``bench.registries.PluginOrigin``)."""
    return DETECTORS.origin(name)


def make_params(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """Detector ``name``'s params dataclass with ``overrides`` applied (BenchError on unknown field, type, range)."""
    return get(name).make_params(overrides)


def score(name: str, images: torch.Tensor, params: Any = None, seed: int = 0) -> torch.Tensor:
    """Scores of detector ``name`` (its defaults when ``params`` is None) on uint8 ``images``."""
    return get(name).score(images, params, seed)


def _check_images(detector: str, images: Any) -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        if isinstance(images, torch.Tensor):
            got = f"{images.dtype} tensor of shape {tuple(images.shape)}"
        else:
            got = type(images).__name__
        raise BenchError(f"detector {detector} needs uint8 images N x C x H x W, got {got}")
    if images.shape[0] < 3:
        raise BenchError(f"detector {detector} needs at least 3 images, got {images.shape[0]}")


# ---- shared features -----------------------------------------------------------------------------------------------


def top_principal_components(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(variances k, directions P x k) of the top-k principal components of the already centred rows ``x``.

    Exact (Lanczos on the P x P covariance from a fixed start vector, so deterministic): 2-4 s with the covariance
    on the cpu profile's 4,286 x 3,072 training set on 2 cores, where a full SVD takes ~40 s. Each direction's sign
    is fixed (largest entry positive) so that randomised methods downstream see the same features on every run.
    At most min(N, P) - 1 components, as ``pca_residual_scores`` clips k.
    """
    n, p = x.shape
    k = max(0, min(k, min(n, p) - 1))
    if k == 0:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(p, 0, dtype=torch.float64)
    cov = (x.T @ x).numpy() / max(1, n - 1)
    if k < p - 1 and p > 64:
        from scipy.sparse.linalg import eigsh

        vals, vecs = eigsh(cov, k=k, which="LA", v0=np.ones(p), tol=0)
    else:
        vals, vecs = np.linalg.eigh(cov)
        vals, vecs = vals[-k:], vecs[:, -k:]
    order = np.argsort(vals)[::-1]
    vals, vecs = np.clip(vals[order], 0.0, None), vecs[:, order]
    signs = np.sign(vecs[np.abs(vecs).argmax(0), np.arange(vecs.shape[1])])
    vecs = vecs * np.where(signs == 0, 1.0, signs)
    return torch.from_numpy(vals.copy()), torch.from_numpy(np.ascontiguousarray(vecs))


def whitened_pcs(images: torch.Tensor, k: int) -> torch.Tensor:
    """N x k' coordinates on the top-k principal components, each scaled to unit variance (k' <= k drops null ones)."""
    x = _flat_float(images)
    x = x - x.mean(0, keepdim=True)
    vals, vecs = top_principal_components(x, k)
    keep = vals > 1e-12 * max(float(vals.max()) if vals.numel() else 0.0, 1e-300)
    return (x @ vecs[:, keep]) / vals[keep].sqrt()


# ---- built-in detectors --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoParams:
    pass


@register_detector("mean", params=NoParams, description="Euclidean distance to the mean training image")
def _mean(images: torch.Tensor, params: NoParams, seed: int) -> torch.Tensor:
    return mean_distance_scores(images)


@dataclass(frozen=True)
class PCAParams:
    k: int = 8  # principal components kept; the score is the norm of what they leave out

    def __post_init__(self) -> None:
        _fields.require_non_negative(self, ["k"])


@register_detector(
    "pca", params=PCAParams, description="residual norm after projecting onto the top-k principal components"
)
def _pca(images: torch.Tensor, params: PCAParams, seed: int) -> torch.Tensor:
    return pca_residual_scores(images, params.k)


@dataclass(frozen=True)
class IForestParams:
    k: int = 16  # whitened principal components used as features
    n_estimators: int = 200  # trees (scikit-learn's default is 100; 200 halves the seed-to-seed noise)
    max_samples: int = 256  # images per tree (scikit-learn's "auto"; capped at N)
    max_features: float = 1.0  # share of the k features each tree draws, in (0, 1]

    def __post_init__(self) -> None:
        _fields.require_positive(self, ["k", "n_estimators", "max_features"])
        _fields.require(self.max_samples >= 2, f"max_samples must be at least 2, got {self.max_samples!r}")
        _fields.require_fraction(self, ["max_features"])


@register_detector(
    "iforest",
    params=IForestParams,
    description="scikit-learn IsolationForest on whitened top-k principal components (short paths = outlying)",
)
def _iforest(images: torch.Tensor, params: IForestParams, seed: int) -> torch.Tensor:
    from sklearn.ensemble import IsolationForest

    z = whitened_pcs(images, params.k).numpy()
    forest = IsolationForest(
        n_estimators=params.n_estimators,
        max_samples=min(params.max_samples, z.shape[0]),
        max_features=params.max_features,
        random_state=seed,
    ).fit(z)
    return torch.from_numpy(-forest.score_samples(z))


@dataclass(frozen=True)
class LOFParams:
    k: int = 16  # whitened principal components used as features
    n_neighbors: int = 20  # neighbours defining local density (scikit-learn's default; capped at N - 1)

    def __post_init__(self) -> None:
        _fields.require_positive(self, ["k", "n_neighbors"])


@register_detector(
    "lof",
    params=LOFParams,
    description="scikit-learn LocalOutlierFactor on whitened top-k principal components (low local density = outlying)",
)
def _lof(images: torch.Tensor, params: LOFParams, seed: int) -> torch.Tensor:
    from sklearn.neighbors import LocalOutlierFactor

    z = whitened_pcs(images, params.k).numpy()
    lof = LocalOutlierFactor(n_neighbors=min(params.n_neighbors, z.shape[0] - 1)).fit(z)
    return torch.from_numpy(-lof.negative_outlier_factor_)


@dataclass(frozen=True)
class MCDParams:
    k: int = 16  # whitened principal components used as features
    # share of images the robust covariance is fitted on, in [0.5, 1]; None = (N + k + 1) / 2N, the most robust
    support_fraction: float | None = None

    def __post_init__(self) -> None:
        _fields.require_positive(self, ["k"])
        f = self.support_fraction
        if f is not None:
            _fields.require(
                isinstance(f, (int, float)) and not isinstance(f, bool) and 0.5 <= f <= 1,
                f"support_fraction must be a number in [0.5, 1] or None, got {f!r}",
            )
            object.__setattr__(self, "support_fraction", float(f))


@register_detector(
    "mcd",
    params=MCDParams,
    description="robust Mahalanobis distance (scikit-learn MinCovDet) on whitened top-k principal components",
)
def _mcd(images: torch.Tensor, params: MCDParams, seed: int) -> torch.Tensor:
    return robust_mahalanobis(images, params.k, seed, "mcd", params.support_fraction)


def robust_mahalanobis(x: torch.Tensor, k: int, seed: int, detector: str,
                       support_fraction: float | None = None) -> torch.Tensor:  # fmt: skip
    """Robust Mahalanobis distance (scikit-learn MinCovDet) of each row of ``x`` (images or feature vectors) on its
    whitened top-k principal components; a one-line BenchError naming ``detector`` when the fit is singular."""
    from sklearn.covariance import MinCovDet

    z = whitened_pcs(x, k).numpy()
    try:
        mcd = MinCovDet(support_fraction=support_fraction, random_state=seed).fit(z)
    except ValueError as e:  # e.g. more than half the images identical: the robust covariance is singular
        raise BenchError(f"detector {detector} cannot fit these {len(z)} images ({e}): use another detector") from None
    return torch.from_numpy(mcd.mahalanobis(z))


@dataclass(frozen=True)
class KurtosisParams:
    k: int = 16  # whitened principal components searched for extreme-kurtosis directions
    max_iter: int = 200  # fixed-point iterations per direction
    # 0 = score by the projection outlyingness (Pena & Prieto's first stage); N > 0 = then up to N concentration
    # steps of a Mahalanobis fit on the least outlying half (their reweighting stage, MCD-like)
    c_steps: int = 0

    def __post_init__(self) -> None:
        _fields.require_positive(self, ["k", "max_iter"])
        _fields.require_non_negative(self, ["c_steps"])


def kurtosis_directions(z: np.ndarray, rng: np.random.Generator, max_iter: int = 200, tol: float = 1e-8) -> np.ndarray:
    """k orthonormal directions (columns) of locally extreme kurtosis of the whitened rows ``z`` (N x k).

    One direction at a time, each orthogonal to the ones before (deflation), by the fixed-point iteration
    u <- E[z (u.z)^3] - 3u that is stationary exactly where the kurtosis of z.u is extreme on the unit sphere
    (maxima for heavy tails: a small group far out; minima for bimodality: a large second group). Random
    starts from ``rng``.
    """
    n, d = z.shape
    dirs = np.zeros((d, 0))
    for _ in range(d):
        u = rng.standard_normal(d)
        u -= dirs @ (dirs.T @ u)
        u /= np.linalg.norm(u)
        for _ in range(max_iter):
            new = z.T @ ((z @ u) ** 3) / n - 3.0 * u
            new -= dirs @ (dirs.T @ new)
            norm = np.linalg.norm(new)
            if norm < 1e-12:  # kurtosis exactly 3 in every remaining direction: keep u
                break
            new /= norm
            done = abs(abs(float(new @ u)) - 1.0) < tol
            u = new
            if done:
                break
        dirs = np.column_stack([dirs, u])
    return dirs


def projection_outlyingness(y: np.ndarray) -> np.ndarray:
    """max over the columns of ``y`` (projections) of |y - median| / (1.4826 MAD): Stahel-Donoho style, per row."""
    med = np.median(y, axis=0)
    mad = 1.4826 * np.median(np.abs(y - med), axis=0)
    return (np.abs(y - med) / np.maximum(mad, 1e-12)).max(axis=1)


def _half_sample_mahalanobis(z: np.ndarray, start: np.ndarray, steps: int) -> np.ndarray:
    """Concentration steps: fit mean / covariance on the half of rows with the lowest current score, re-score."""
    n, d = z.shape
    h = (n + d + 1) // 2
    score = start
    for _ in range(steps):
        keep = np.argsort(score, kind="stable")[:h]
        mu = z[keep].mean(0)
        prec = np.linalg.pinv(np.cov(z[keep], rowvar=False))
        diff = z - mu
        new = np.einsum("ij,jk,ik->i", diff, prec, diff)
        if np.array_equal(np.argsort(new, kind="stable")[:h], keep):
            return new
        score = new
    return score


@register_detector(
    "kurtosis",
    params=KurtosisParams,
    description="projection pursuit: outlyingness along directions of extreme kurtosis (Pena & Prieto 2001 style)",
)
def _kurtosis(images: torch.Tensor, params: KurtosisParams, seed: int) -> torch.Tensor:
    """Peña & Prieto (2001) style projection pursuit on whitened top-k principal components.

    Finds k orthonormal directions of locally extreme kurtosis (a minority group shows up as a heavy tail at
    small shares, as a second mode - low kurtosis - at large ones) and scores each image by its largest robust
    z-score (median / MAD) along them. With ``c_steps > 0`` the least outlying half then seeds a Mahalanobis
    fit refined by concentration steps, the reweighting Peña & Prieto end with. Caveats: it finds a group only
    when the group differs along one linear direction of the top-k PCs (aligned faces, a mask in one place);
    on clean data it still ranks someone first (the heaviest-tailed direction: unusual lighting or colour).
    """
    z = whitened_pcs(images, params.k).numpy()
    rng = np.random.default_rng([seed, 0x6B75])
    dirs = kurtosis_directions(z, rng, params.max_iter)
    score = projection_outlyingness(z @ dirs)
    if params.c_steps:
        score = _half_sample_mahalanobis(z, score, params.c_steps)
    return torch.from_numpy(score)
