"""The outlier-share estimate behind ``--filter DETECTOR:auto``: known mixtures of scores, and the filter using it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench import filtering
from bench.outlier_share import estimate_share


def chi_scores(n_in: int, n_out: int, shift: float = 3.0, k: int = 8, seed: int = 0) -> torch.Tensor:
    """Squared Mahalanobis distances, as ``mcd`` gives them: inliers chi2_k, outliers (sqrt(chi2_k) + shift sqrt(k))^2."""
    rng = np.random.default_rng(seed)
    inl = rng.chisquare(k, n_in)
    out = (np.sqrt(rng.chisquare(k, n_out)) + shift * np.sqrt(k)) ** 2
    return torch.from_numpy(np.concatenate([inl, out]))


@pytest.mark.parametrize("share", [0.1, 0.2, 0.3])
def test_a_separated_mixture_gives_its_share_within_the_interval(share):
    n = 2000
    est = estimate_share(chi_scores(round(n * (1 - share)), round(n * share)), seed=0, bootstrap=30)
    assert est.share == pytest.approx(share, abs=0.03)
    assert est.low <= share + 0.01 and est.high >= share - 0.01 and est.low <= est.share <= est.high


@pytest.mark.parametrize("share", [0.1, 0.2])
def test_overlapping_outliers_are_undercounted_not_missed(share):
    # outliers about 2 sd of the inliers' distance away (AUC 0.92-0.93): counted, if not all of them
    n = 3000
    est = estimate_share(chi_scores(round(n * (1 - share)), round(n * share), shift=0.5), seed=0, bootstrap=20)
    assert 0.3 * share < est.share <= share + 0.03


def test_clean_scores_give_no_outliers():
    est = estimate_share(chi_scores(2000, 0), seed=0, bootstrap=30)
    assert est.share < 0.03 and "95 % interval" in est.words()


def test_degenerate_inputs_give_zero():
    assert estimate_share(torch.ones(5)).share == 0.0
    assert estimate_share(torch.tensor([1.0, float("nan")] * 10)).share == 0.0


def test_auto_filter_parses_labels_and_drops_the_estimated_share(tmp_path, monkeypatch):
    spec = filtering.parse("mean:auto")
    assert spec.fraction is None and spec.label == "mean:auto"
    assert filtering.FilterSpec.from_dict(spec.to_dict()) == spec
    n_in, n_out = 300, 100
    g = torch.Generator().manual_seed(0)
    inl = (torch.rand(n_in, 3, 8, 8, generator=g) * 40 + 100).to(torch.uint8)
    out = (torch.rand(n_out, 3, 8, 8, generator=g) * 40 + 215).to(torch.uint8)
    split = type("S", (), {})()
    split.train_images = torch.cat([inl, out])
    split.train_is_outlier = torch.cat([torch.zeros(n_in, dtype=torch.bool), torch.ones(n_out, dtype=torch.bool)])
    split.split_hash, split.ratio = "b" * 64, 25.0
    train = filtering.training_set(split, spec, 0, tmp_path)
    assert train.report["filter_fraction"] == pytest.approx(0.25, abs=0.03)
    assert train.report["share_estimate_low"] <= train.report["filter_fraction"] <= train.report["share_estimate_high"]
    assert train.is_outlier.float().mean() < 0.05
