"""Scoring a sample set: the one step every cell, ``bench score``, ``--append-to`` and ``bench eval`` go through.

``score_samples`` takes a split's :class:`~bench.evaluator.Evaluator` and a sample set and returns a :class:`Score`:
the evaluator's metrics (paper §4.3), the two reference generators' % inliers on the same split, seed and sample
count (``bench/robustness.py``), the robustness index between them, and, for a model with an inlier-only path,
whether that path refuses the training outliers (RVQ-VAE's C_in, eq. 8).

A new metric is a field of :class:`Score` and its line in ``score_samples``: the cell record, runs.csv, the JSON
files and ``bench score`` take their columns from here. A field with ``metadata={"column": False}`` is kept in
metrics.json but is not a runs.csv column.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from bench import robustness

NOT_A_COLUMN = {"column": False}


@dataclass(frozen=True)
class Score:
    """Every number one sample set gets (column order is runs.csv's)."""

    pct_inliers: float  # % of samples the inlier classifier calls inliers (Tables 1, 2)
    robustness: float | None = None  # 0 = as contaminated as the data, 1 = as clean as the inlier-only oracle
    pct_replay: float | None = None  # % inliers of replaying the training set ("no robustness")
    pct_replay_inliers: float | None = None  # % inliers of replaying its inliers (the oracle)
    fid: float | None = None  # FID with local InceptionV3 weights, else None (never anything else)
    fid_kind: str = ""  # "inception" or "none"
    fd_classifier: float | None = None  # Frechet distance in the classifier's features (not FID)
    kid: float | None = None
    precision: float | None = None
    recall: float | None = None
    # recall / the oracle's recall on the same split, seed and sample count: the share of the inlier variety the
    # samples cover, next to the index (a collapsed or blurred generator can raise % inliers, not this)
    coverage: float | None = None
    recall_replay_inliers: float | None = None  # the oracle's recall (replay-inliers)
    sharpness: float | None = None  # mean squared Laplacian response (high-frequency energy; blur lowers it)
    # % of held-out real outliers that the classifier calls inliers once encoded and decoded along the path the model
    # samples from: a model that cannot draw the contamination (its decoder loses it) is not robust for that reason
    outlier_recon_pct_inliers: float | None = None
    kid_std: float | None = field(default=None, metadata=NOT_A_COLUMN)
    n: int | None = field(default=None, metadata=NOT_A_COLUMN)  # samples scored
    outlier_recon_called_outlier_pct: float | None = field(default=None, metadata=NOT_A_COLUMN)
    outlier_orig_called_outlier_pct: float | None = field(default=None, metadata=NOT_A_COLUMN)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def columns(cls) -> list[str]:
        """The fields that are runs.csv columns, in order."""
        return [f.name for f in dataclasses.fields(cls) if f.metadata.get("column", True)]


@dataclass(frozen=True)
class Anchors:
    """The two reference generators on one split, seed and sample count (``bench/robustness.py``)."""

    pct_replay: float | None  # % inliers of replaying the training set
    pct_replay_inliers: float | None  # % inliers of replaying its inliers (the oracle)
    recall_replay_inliers: float | None  # the oracle's recall: the coverage a perfect generator of the inliers has


NO_ANCHORS = Anchors(None, None, None)  # a sample set scored without a training set (bench score without --ratio)


def anchors(evaluator: Any, train_images: torch.Tensor, train_is_outlier: torch.Tensor, n: int, seed: int) -> Anchors:
    """The reference generators (replay, replay-inliers) on this split, seed and sample count."""
    oracle = robustness.replay_samples(train_images[~train_is_outlier.bool()], n, seed)
    return Anchors(evaluator.pct_inliers(robustness.replay_samples(train_images, n, seed)),
                   evaluator.pct_inliers(oracle), evaluator.recall(oracle))  # fmt: skip


def coverage(recall: float | None, oracle_recall: float | None) -> float | None:
    """``recall`` as a share of the oracle's (None when either is unknown or the oracle covers nothing)."""
    if recall is None or not oracle_recall:
        return None
    return recall / oracle_recall


def outlier_reconstruction(evaluator: Any, model: Any, split: Any) -> float | None:
    """% of the held-out real outliers the classifier calls inliers after the model encodes and decodes them along its
    generation path (``GenerativeModel.reconstruction``); None for a model without an encoder."""
    outliers = split.clf_test_outliers
    if model is None or len(outliers) == 0:
        return None
    with torch.inference_mode():
        recon = model.reconstruction(outliers)
    return None if recon is None else evaluator.pct_inliers(recon)


def refusal(evaluator: Any, model: Any, split: Any) -> tuple[float | None, float | None]:
    """Does the model's inlier part refuse outliers? Training outliers reconstructed through it: the share the held-out
    classifier still calls outliers, next to the share of the originals it calls so (RVQ-VAE's C_in, eq. 8)."""
    outliers = split.train_images[split.train_is_outlier]
    if model is None or len(outliers) == 0:
        return None, None
    with torch.inference_mode():
        recon = model.inlier_only_reconstruction(outliers)
    if recon is None:
        return None, None
    return evaluator.called_outlier_pct(recon), evaluator.called_outlier_pct(outliers)


def laplacian_energy(images: torch.Tensor) -> float:
    """Mean squared response of the 3 x 3 Laplacian on the grey level in [0, 1] (valid pixels only): the sample set's
    high-frequency energy. Blur and down-up-sampling lower it, noise raises it; it is a description of the samples to
    read beside the other columns (and to match degraded anchors to), not a quality score."""
    grey = images.float().mean(1, keepdim=True) / 255.0
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return float(torch.nn.functional.conv2d(grey, kernel).pow(2).mean())


def score_samples(evaluator: Any, split: Any, samples: torch.Tensor, seed: int, *, with_anchors: bool = True,
                  model: Any = None) -> Score:  # fmt: skip
    """Score ``samples`` (uint8 N x 3 x H x W) under ``split``'s evaluator. ``with_anchors``: also the reference
    generators and the robustness index (they need the split's training set at the cell's ratio); ``model``: also
    the refusal of its inlier-only path, when it has one."""
    metrics = evaluator.score(samples)
    a = anchors(evaluator, split.train_images, split.train_is_outlier, metrics.n, seed) if with_anchors else NO_ANCHORS
    recon_pct, orig_pct = refusal(evaluator, model, split)
    return Score(
        pct_inliers=metrics.pct_inliers,
        robustness=robustness.robustness_index(metrics.pct_inliers, a.pct_replay, a.pct_replay_inliers),
        pct_replay=a.pct_replay,
        pct_replay_inliers=a.pct_replay_inliers,
        fid=metrics.fid,
        fid_kind=metrics.fid_kind,
        fd_classifier=metrics.fd_classifier,
        kid=metrics.kid,
        precision=metrics.precision,
        recall=metrics.recall,
        coverage=coverage(metrics.recall, a.recall_replay_inliers),
        recall_replay_inliers=a.recall_replay_inliers,
        sharpness=laplacian_energy(samples),
        outlier_recon_pct_inliers=outlier_reconstruction(evaluator, model, split),
        kid_std=metrics.kid_std,
        n=metrics.n,
        outlier_recon_called_outlier_pct=recon_pct,
        outlier_orig_called_outlier_pct=orig_pct,
    )
