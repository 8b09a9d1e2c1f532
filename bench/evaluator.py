"""Evaluation of generated samples (paper §4.3) and the classifier's own check (Appendix D, Table 5).

An :class:`Evaluator` is built once per (dataset split's held-out sets, evaluation settings, seed): it owns the
inlier classifier (trained once, cached on disk by content), the reference features and Table 5, and scores any
number of sample sets, from a cell or from `bench score`. ``Evaluator.score`` returns :class:`Metrics`::

    pct_inliers    % of samples the inlier classifier labels inlier (Tables 1, 2)
    fid            FID vs the real inlier reference set with InceptionV3 (Tables 3, 4); None without local weights
    fid_kind       "inception" or "none"
    fd_classifier  Frechet distance in the inlier classifier's 128-d penultimate features; always computed, so
                   rows are comparable across machines with and without Inception weights (never called FID)
    kid, kid_std   KID (mean, std over subsets) and
    precision, recall  torch-fidelity's PRC (generated = input 1, real = input 2), both computed in the FID
                   feature space when fid_kind == "inception", else in the classifier feature space.
    n              number of samples scored
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

from bench import validity
from bench.classifiers.features import classifier_space, extract_features, inception_space, reference_features
from bench.classifiers.inlier_cnn import (
    InlierCNN,
    as_uint8_images,
    is_outlier_prediction,
    load_or_train_classifier,
    predict_outlier_prob,
)
from bench.classifiers.outlier_scores import TABLE5_RATIOS, f1_table, pct_inliers
from bench.config import EvalConfig
from bench.errors import BenchError
from bench.progress import Progress, null_progress
from bench.validity import Validity

RESULT_KEYS = ("pct_inliers", "fid", "fid_kind", "fd_classifier", "kid", "kid_std", "precision", "recall")
PRC_NEIGHBORHOOD = 3  # torch-fidelity's default k for the k-NN balls


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (torch-fidelity's eigenvalue-based sqrtm)."""
    stats_a = fid_features_to_statistics(features_a.double())
    stats_b = fid_features_to_statistics(features_b.double())
    return float(fid_statistics_to_metric(stats_a, stats_b, False)[KEY_METRIC_FID])


def kid(generated: torch.Tensor, reference: torch.Tensor, cfg: EvalConfig, seed: int) -> tuple[float, float]:
    """KID (mean, std) with the subset size capped at the smaller set, so small N works."""
    subset = min(cfg.kid_subset_size, len(generated), len(reference))
    out = kid_features_to_metric(generated, reference, kid_subset_size=subset, rng_seed=seed, verbose=False)
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def precision_recall(generated: torch.Tensor, reference: torch.Tensor) -> tuple[float | None, float | None]:
    """torch-fidelity PRC (k = 3); None when a set is too small to have a k-th neighbour."""
    if min(len(generated), len(reference)) <= PRC_NEIGHBORHOOD:
        return None, None
    out = prc_features_to_metric(
        generated, reference, prc_neighborhood=PRC_NEIGHBORHOOD, save_cpu_ram=True, verbose=False
    )
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class Metrics:
    """One sample set's scores (paper §4.3); ``fid`` is None without local InceptionV3 weights."""

    pct_inliers: float
    fid: float | None
    fid_kind: str
    fd_classifier: float | None
    kid: float
    kid_std: float
    precision: float | None
    recall: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class HeldOut:
    """The labelled sets an evaluator needs, all disjoint from every training set (identical for every ratio)."""

    clf_train_images: torch.Tensor
    clf_train_is_outlier: torch.Tensor
    clf_test_inliers: torch.Tensor
    clf_test_outliers: torch.Tensor
    reference_images: torch.Tensor

    @classmethod
    def of(cls, split: Any) -> HeldOut:
        return cls(split.clf_train_images, split.clf_train_is_outlier, split.clf_test_inliers, split.clf_test_outliers,
                   split.reference_images)  # fmt: skip


class Evaluator:
    """The classifier, reference features and Table 5 of one held-out protocol: built once, used by every cell of a
    (dataset, seed) and by `bench score`. Everything expensive is cached in ``cache_dir`` by content."""

    def __init__(self, heldout: HeldOut, cfg: EvalConfig, seed: int, cache_dir: Path,
                 progress: Progress = null_progress):  # fmt: skip
        self.heldout, self.cfg, self.seed, self.cache_dir = heldout, cfg, seed, Path(cache_dir)
        self.progress = progress
        self.reference = as_uint8_images(heldout.reference_images, "reference images")

    @classmethod
    def for_split(cls, split: Any, cfg: EvalConfig, seed: int, cache_dir: Path, progress: Progress = null_progress):
        return cls(HeldOut.of(split), cfg, seed, cache_dir, progress)

    @cached_property
    def classifier(self) -> InlierCNN:
        h = self.heldout
        return load_or_train_classifier(h.clf_train_images, h.clf_train_is_outlier, self.cfg, self.seed,
                                        self.cache_dir, self.progress)  # fmt: skip

    @cached_property
    def _classifier_space(self):
        return classifier_space(self.classifier, self.cfg)

    @cached_property
    def _reference_classifier_features(self) -> torch.Tensor:
        return reference_features(self._classifier_space, self.reference, self.cache_dir)

    @cached_property
    def _inception(self):
        space = inception_space(self.cfg)
        return None if space is None else (space, reference_features(space, self.reference, self.cache_dir))

    def warm(self) -> None:
        """Train (or load) the classifier and compute the reference features now, so parallel workers only read."""
        self._reference_classifier_features  # noqa: B018  (cached_property: computes and caches)
        self._inception  # noqa: B018

    def pct_inliers(self, images) -> float:
        return pct_inliers(self.classifier, images)

    def called_outlier_pct(self, images) -> float:
        return 100.0 * float(is_outlier_prediction(predict_outlier_prob(self.classifier, images)).float().mean())

    def _prc_features(
        self, samples: torch.Tensor, gen_clf: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(generated, reference) features of the space FID, KID and precision / recall are computed in: InceptionV3
        with local weights, else the classifier's penultimate layer."""
        if self._inception is None:
            gen = extract_features(self._classifier_space, samples) if gen_clf is None else gen_clf
            return gen, self._reference_classifier_features
        space, ref_feats = self._inception
        return extract_features(space, samples), ref_feats

    def recall(self, images) -> float | None:
        """Recall (k-NN coverage of the reference inliers, as in :meth:`score`) of one image set."""
        return precision_recall(*self._prc_features(as_uint8_images(images, "images")))[1]

    def score(self, samples_uint8) -> Metrics:
        """Every metric of one sample set."""
        samples = as_uint8_images(samples_uint8, "generated samples")
        if len(samples) < 2 or len(self.reference) < 2:
            raise BenchError(
                f"evaluation needs at least 2 generated and 2 reference images, got {len(samples)} and {len(self.reference)}"
            )
        gen_clf = extract_features(self._classifier_space, samples)
        ref_clf = self._reference_classifier_features
        gen_feats, ref_feats = self._prc_features(samples, gen_clf)
        fid, fid_kind = (
            (None, "none") if self._inception is None else (frechet_distance(gen_feats, ref_feats), "inception")
        )
        kid_mean, kid_std = kid(gen_feats, ref_feats, self.cfg, self.seed)
        precision, recall = precision_recall(gen_feats, ref_feats)
        return Metrics(
            pct_inliers=self.pct_inliers(samples), fid=fid, fid_kind=fid_kind,
            fd_classifier=_finite_or_none(frechet_distance(gen_clf, ref_clf)), kid=kid_mean, kid_std=kid_std,
            precision=precision, recall=recall, n=len(samples),
        )  # fmt: skip

    @cached_property
    def validity(self) -> Validity:
        """The classifier's validity check on its held-out real inliers and outliers (``bench/validity.py``)."""
        h = self.heldout
        return validity.check(self.pct_inliers, h.clf_test_inliers, h.clf_test_outliers, self.seed)

    def f1_table(self, ratios=TABLE5_RATIOS) -> list[dict]:
        """Paper Table 5 for this classifier: F1 with inliers positive at each test outlier ratio (%)."""
        h = self.heldout
        return f1_table(self.classifier, h.clf_test_inliers, h.clf_test_outliers, ratios=ratios, seed=self.seed)


def evaluate_samples(
    samples_uint8, *, clf_train_images, clf_train_is_outlier, reference_images, cfg: EvalConfig, seed: int,
    cache_dir: Path,
) -> dict:  # fmt: skip
    """All metrics of one sample set as a dict (an Evaluator built for this call; its caches are on disk)."""
    empty = torch.zeros(0, *clf_train_images.shape[1:], dtype=torch.uint8)
    heldout = HeldOut(clf_train_images, clf_train_is_outlier, empty, empty, reference_images)
    result = Evaluator(heldout, cfg, seed, cache_dir).score(samples_uint8).to_dict()
    result.pop("n")
    assert tuple(result) == RESULT_KEYS
    return result


def classifier_f1_table(
    *, clf_train_images, clf_train_is_outlier, clf_test_inliers, clf_test_outliers, cfg: EvalConfig, seed: int,
    cache_dir: Path, ratios=TABLE5_RATIOS,
) -> list[dict]:  # fmt: skip
    """Paper Table 5 for the (cached) classifier: F1 with inliers positive at each test outlier ratio (%)."""
    heldout = HeldOut(clf_train_images, clf_train_is_outlier, clf_test_inliers, clf_test_outliers,
                      clf_train_images[:0])  # fmt: skip
    return Evaluator(heldout, cfg, seed, cache_dir).f1_table(ratios)
