"""Evaluation of one cell's generated samples (paper §4.3) and the classifier's own check (Appendix D, Table 5).

``evaluate_samples`` returns exactly::

    pct_inliers    % of samples the inlier classifier labels inlier (Tables 1, 2)
    fid            FID vs the real inlier reference set with InceptionV3 (Tables 3, 4); None without local weights
    fid_kind       "inception" or "none"
    fd_classifier  Frechet distance in the inlier classifier's 128-d penultimate features; always computed, so
                   rows are comparable across machines with and without Inception weights (never called FID)
    kid, kid_std   KID (mean, std over subsets) and
    precision, recall  torch-fidelity's PRC (generated = input 1, real = input 2), both computed in the FID
                   feature space when fid_kind == "inception", else in the classifier feature space.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric, KEY_METRIC_FID
from torch_fidelity.metric_kid import kid_features_to_metric, KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD
from torch_fidelity.metric_prc import prc_features_to_metric, KEY_METRIC_PRECISION, KEY_METRIC_RECALL

from bench.classifiers.features import classifier_space, extract_features, inception_space, reference_features
from bench.classifiers.inlier_cnn import as_uint8_images, load_or_train_classifier
from bench.classifiers.outlier_scores import TABLE5_RATIOS, f1_table, pct_inliers
from bench.config import EvalConfig
from bench.errors import BenchError

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


def evaluate_samples(
    samples_uint8,
    *,
    clf_train_images,
    clf_train_is_outlier,
    reference_images,
    cfg: EvalConfig,
    seed: int,
    cache_dir: Path,
) -> dict:
    """All metrics of one cell. The classifier is trained once per (split, settings, seed) and cached in
    ``cache_dir``; reference features are cached there too, keyed by content and extractor."""
    samples = as_uint8_images(samples_uint8, "generated samples")
    reference = as_uint8_images(reference_images, "reference images")
    if len(samples) < 2 or len(reference) < 2:
        raise BenchError(
            f"evaluation needs at least 2 generated and 2 reference images, got {len(samples)} and {len(reference)}"
        )
    cache_dir = Path(cache_dir)
    classifier = load_or_train_classifier(clf_train_images, clf_train_is_outlier, cfg, seed, cache_dir)

    clf_space = classifier_space(classifier, cfg)
    gen_clf = extract_features(clf_space, samples)
    ref_clf = reference_features(clf_space, reference, cache_dir)

    inception = inception_space(cfg)
    if inception is None:
        fid, fid_kind = None, "none"
        gen_feats, ref_feats = gen_clf, ref_clf
    else:
        gen_feats = extract_features(inception, samples)
        ref_feats = reference_features(inception, reference, cache_dir)
        fid, fid_kind = frechet_distance(gen_feats, ref_feats), "inception"

    kid_mean, kid_std = kid(gen_feats, ref_feats, cfg, seed)
    precision, recall = precision_recall(gen_feats, ref_feats)
    result = {
        "pct_inliers": pct_inliers(classifier, samples),
        "fid": fid,
        "fid_kind": fid_kind,
        "fd_classifier": _finite_or_none(frechet_distance(gen_clf, ref_clf)),
        "kid": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
    }
    assert tuple(result) == RESULT_KEYS
    return result


def classifier_f1_table(
    *,
    clf_train_images,
    clf_train_is_outlier,
    clf_test_inliers,
    clf_test_outliers,
    cfg: EvalConfig,
    seed: int,
    cache_dir: Path,
    ratios=TABLE5_RATIOS,
) -> list[dict]:
    """Paper Table 5 for the (cached) classifier: F1 with inliers positive at each test outlier ratio (%)."""
    classifier = load_or_train_classifier(clf_train_images, clf_train_is_outlier, cfg, seed, Path(cache_dir))
    return f1_table(classifier, clf_test_inliers, clf_test_outliers, ratios=ratios, seed=seed)
