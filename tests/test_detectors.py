import math

import torch

from bench.detectors import flag_metrics, mean_distance_scores, pca_residual_scores, roc_auc, top_fraction


def test_auc_matches_hand_count():
    # Positive/negative pairs: (0.35 vs 0.1 win, 0.35 vs 0.4 loss, 0.8 wins both) -> 3 of 4 pairs.
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
    labels = torch.tensor([0, 0, 1, 1])
    assert roc_auc(scores, labels) == 0.75


def test_auc_ties_count_half_and_extremes():
    assert roc_auc(torch.ones(6), torch.tensor([0, 1, 0, 1, 0, 1])) == 0.5
    assert roc_auc(torch.arange(6.0), torch.tensor([0, 0, 0, 1, 1, 1])) == 1.0
    assert roc_auc(-torch.arange(6.0), torch.tensor([0, 0, 0, 1, 1, 1])) == 0.0
    assert math.isnan(roc_auc(torch.arange(3.0), torch.zeros(3)))


def test_top_fraction_takes_ceil_eta_n():
    scores = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 0.0, 6.0])
    mask = top_fraction(scores, 0.2)  # ceil(1.4) = 2
    assert mask.tolist() == [True, False, False, False, False, False, True]
    assert int(top_fraction(torch.arange(10.0), 0.2).sum()) == 2


def test_flag_metrics_precision_recall_and_references():
    is_out = torch.tensor([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=torch.bool)  # r = 0.2
    flagged = torch.tensor([1, 0, 1, 1, 0, 0, 0, 0, 0, 0], dtype=torch.bool)
    m = flag_metrics(is_out, eta=0.3, flagged=flagged)
    assert m["precision"] == 1 / 3 and m["recall"] == 0.5
    assert m["chance_precision"] == 0.2
    assert m["recall_ceiling"] == 1.0 and abs(m["precision_ceiling"] - 2 / 3) < 1e-12
    m = flag_metrics(is_out, eta=0.1, scores=torch.arange(10.0).flip(0))
    assert m["precision"] == 1.0 and m["recall"] == 0.5 and m["auc"] == 1.0 and m["recall_ceiling"] == 0.5


def _dark_set_with_bright_outliers(n=40, n_out=4):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 60, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    images[:n_out] = torch.randint(200, 256, (n_out, 3, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.zeros(n, dtype=torch.bool)
    labels[:n_out] = True
    return images, labels


def test_mean_distance_ranks_bright_outliers_first():
    images, labels = _dark_set_with_bright_outliers()
    assert roc_auc(mean_distance_scores(images), labels) == 1.0


def test_pca_residual_flags_points_off_the_subspace():
    g = torch.Generator().manual_seed(1)
    basis = torch.randn(2, 30, generator=g)
    inliers = torch.randn(50, 2, generator=g) @ basis * 10  # exactly on a 2-d subspace
    outliers = torch.randn(3, 30, generator=g)  # small norm, but off the subspace
    x = torch.cat([inliers, outliers])
    labels = torch.zeros(53, dtype=torch.bool)
    labels[50:] = True
    scores = pca_residual_scores(x.reshape(53, 30, 1, 1), k=2)
    assert roc_auc(scores, labels) == 1.0
    # Distance to the mean cannot find them: they sit close to the mean.
    assert roc_auc(mean_distance_scores(x.reshape(53, 30, 1, 1)), labels) < 0.5
