"""A headline that sample quality cannot game: degradations, the classifier's validity check, the gaming probes, the
capacity control and the flags that withhold "robust".

Degradations and the check run on hand-made images whose answer is known; the probes and the control run through the
real grid on the smoke profile's tiny embedded data.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from bench import degradations, filtering, headline, validity
from bench.errors import BenchError
from bench.scoring import coverage, laplacian_energy
from tests.grid_helpers import mean_plugin, run_grid  # noqa: F401, F811  (fixture)


def checkerboard(n: int = 6, size: int = 32) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    board = (((x // 2 + y // 2) % 2) * 200 + 28).to(torch.uint8)
    return board.expand(n, 3, size, size).clone()


# ------------------------------------------------------------------------------------------------ degradations


@pytest.mark.parametrize("d", degradations.VALIDITY_SET, ids=lambda d: d.name)
def test_every_degradation_keeps_uint8_shape_and_is_seeded(d):
    images = checkerboard()
    a, b = d.apply(images, seed=3), d.apply(images, seed=3)
    assert a.dtype == torch.uint8 and a.shape == images.shape and torch.equal(a, b)


@pytest.mark.parametrize("kind, weak, strong", [("blur", 1.0, 3.0), ("downup", 2.0, 4.0)])
def test_stronger_smoothing_removes_more_detail(kind, weak, strong):
    images = checkerboard()
    sharp = laplacian_energy(images)
    mild = laplacian_energy(degradations.Degradation(kind, weak).apply(images))
    harsh = laplacian_energy(degradations.Degradation(kind, strong).apply(images))
    assert harsh < mild < sharp


def test_jpeg_changes_the_image_more_at_lower_quality():
    images = checkerboard()
    err = [(degradations.Degradation("jpeg", q).apply(images).float() - images.float()).abs().mean() for q in (50, 20)]
    assert 0 < err[0] < err[1]


def test_noise_adds_detail_and_none_is_the_identity():
    images = torch.full((4, 3, 16, 16), 128, dtype=torch.uint8)
    assert torch.equal(degradations.Degradation("none").apply(images), images)
    noisy = degradations.Degradation("noise", 0.1).apply(images, seed=0)
    assert laplacian_energy(noisy) > 0 == laplacian_energy(images)
    assert 20 < (noisy.float() - 128).std() < 31  # sigma 0.1 of the full range = 25.5 grey levels


def test_augmentation_leaves_a_share_clean_and_degrades_the_rest():
    images = checkerboard(n=400, size=16)
    out = degradations.augment(images, torch.Generator().manual_seed(0))
    changed = (out != images).flatten(1).any(1).float().mean()
    assert out.shape == images.shape and out.dtype == torch.uint8
    degraded = 1 - degradations.AUGMENT_CLEAN_SHARE  # some operations can leave an image intact
    assert degraded - 0.2 < changed <= degraded + 0.05


# ------------------------------------------------------------------------------------------------ validity check


def dark_patch_classifier(images: torch.Tensor) -> float:
    """% inliers of a 'classifier' that calls an image an outlier when any 4x4 block is nearly black (a rectangle)."""
    blocks = torch.nn.functional.avg_pool2d(images.float().mean(1, keepdim=True), 4)
    return 100.0 * float((blocks.flatten(1).min(1).values > 40).float().mean())


def edge_classifier(images: torch.Tensor) -> float:
    """% inliers of a 'classifier' that calls an image an outlier only when it has sharp edges: what blur defeats."""
    grey = images.float().mean(1)
    edges = (grey[:, :, 1:] - grey[:, :, :-1]).abs().amax((1, 2))
    return 100.0 * float((edges < 120).float().mean())


def rectangles(n: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    inliers = (torch.rand(n, 3, size, size, generator=g) * 60 + 150).to(torch.uint8)
    outliers = inliers.clone()
    outliers[:, :, 8:24, 8:24] = 0
    return inliers, outliers


def test_a_content_classifier_passes_and_an_edge_classifier_fails_under_blur():
    inliers, outliers = rectangles(20)
    good = validity.check(dark_patch_classifier, inliers, outliers, seed=0)
    bad = validity.check(edge_classifier, inliers, outliers, seed=0)
    assert good.passed and "passed" in good.summary()
    assert not bad.passed and "FAILED" in bad.summary()
    assert {r.degradation for r in bad.failures()} >= {"blur:2", "downup:4"}
    assert [r.degradation for r in good.rows] == [d.name for d in degradations.VALIDITY_SET]


def test_ungated_rows_are_reported_but_do_not_fail_the_check():
    inliers, outliers = rectangles(10)
    only_ungated = tuple(d for d in degradations.VALIDITY_SET if not d.gated)
    result = validity.check(edge_classifier, inliers, outliers, seed=0, degradations=only_ungated)
    assert result.passed and any(not r.passed for r in result.rows)


# ------------------------------------------------------------------------------------------------ capacity control


def test_the_capacity_control_trains_on_the_outliers_only(tmp_path):
    split = type("S", (), {})()
    split.train_images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 2, 2).clone()
    split.train_is_outlier = torch.tensor([i % 3 == 0 for i in range(10)])
    split.ratio, split.split_hash = 30.0, "a" * 64
    spec = filtering.parse("outliers-only")
    assert spec.capacity_control and spec.label == "outliers-only"
    assert filtering.FilterSpec.from_dict(spec.to_dict()) == spec
    train = filtering.training_set(split, spec, 0, tmp_path)
    assert train.is_outlier.all() and train.images[:, 0, 0, 0].tolist() == [0, 3, 6, 9]
    split.train_is_outlier = torch.zeros(10, dtype=torch.bool)
    with pytest.raises(BenchError, match="needs training outliers"):
        filtering.training_set(split, spec, 0, tmp_path)


# ------------------------------------------------------------------------------------------------ flags


def frame(rows: list[dict]) -> pd.DataFrame:
    base = {"protocol_digest": "p", "dataset": "d", "variant": "", "seed": 0, "outlier_recon_pct_inliers": None}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_a_collapsed_row_is_flagged_and_never_robust():
    df = frame([{"model": "collapse", "ratio": 30, "pct_inliers": 100.0, "recall": 0.02, "coverage": 0.02}])
    f = headline.flags(df)
    assert f.iloc[0] == headline.LOW_COVERAGE
    assert headline.verdict(1.0, f.iloc[0]).startswith("flagged") and headline.verdict(0.9, "") == "robust"


def test_losing_recall_under_contamination_is_flagged():
    df = frame([
        {"model": "m", "ratio": 0, "pct_inliers": 99.0, "recall": 0.6, "coverage": 0.65},
        {"model": "m", "ratio": 30, "pct_inliers": 99.0, "recall": 0.3, "coverage": 0.33},
        {"model": "k", "ratio": 0, "pct_inliers": 99.0, "recall": 0.6, "coverage": 0.65},
        {"model": "k", "ratio": 30, "pct_inliers": 90.0, "recall": 0.58, "coverage": 0.63},
    ])  # fmt: skip
    assert headline.flags(df).tolist() == ["", headline.LOST_COVERAGE, "", ""]


def test_a_model_whose_control_draws_inliers_cannot_draw_outliers():
    df = frame([
        {"model": "m", "ratio": 30, "pct_inliers": 95.0, "recall": 0.5, "coverage": 0.6},
        {"model": "m", "ratio": 30, "variant": "filter=outliers-only", "pct_inliers": 60.0, "recall": 0.1,
         "coverage": 0.1},
        {"model": "v", "ratio": 30, "pct_inliers": 95.0, "recall": 0.5, "coverage": 0.6,
         "outlier_recon_pct_inliers": 38.0},
        {"model": "g", "ratio": 30, "pct_inliers": 80.0, "recall": 0.5, "coverage": 0.6},
        {"model": "g", "ratio": 30, "variant": "filter=outliers-only", "pct_inliers": 5.0, "recall": 0.1,
         "coverage": 0.1},
    ])  # fmt: skip
    assert headline.flags(df).tolist() == [headline.NO_CAPACITY, "", headline.NO_CAPACITY, "", ""]
    cap = headline.capacity(df).set_index("model")
    assert cap.loc["m", "control_called_outliers"] == pytest.approx(40.0)
    assert cap.loc["g", "control_called_outliers"] == pytest.approx(95.0)


def test_coverage_is_recall_over_the_oracles():
    assert coverage(0.3, 0.6) == pytest.approx(0.5)
    assert coverage(None, 0.6) is None and coverage(0.3, 0.0) is None


# ------------------------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_probes_and_the_control_run_through_the_grid(tmp_path, mean_plugin):  # noqa: F811
    rows, planned = run_grid(tmp_path / "out", ["test_mean", "replay", "replay-inliers", "collapse", "replay-blur",
                                                "replay-noise"], ratios=(30,))  # fmt: skip
    df = pd.DataFrame(rows)
    assert set(df.model) == {"test_mean", "replay", "replay-inliers", "collapse", "replay-blur", "replay-noise"}
    collapse = df[df.model == "collapse"]
    oracle = df[df.model == "replay-inliers"]
    assert collapse.coverage.iloc[0] < 0.5 * oracle.coverage.iloc[0]  # 8 images cover little of the reference
    assert collapse.pct_inliers.iloc[0] >= df[df.model == "replay"].pct_inliers.iloc[0]
    assert {"coverage", "recall_replay_inliers", "outlier_recon_pct_inliers"} <= set(df.columns)
    assert list((tmp_path / "out" / "validity").glob("facemask_s0_*.csv"))
    spec, control = __import__("bench.api", fromlist=["plan"]).plan(
        ["test_mean", "replay"], ["facemask"], [0, 30], [0], profile="smoke", out=tmp_path / "out",
        filters=["outliers-only"], overrides={"data.facemask.inliers": 40})  # fmt: skip
    cells = [(p.cell.model, p.cell.ratio) for p in control]
    assert cells == [("test_mean", 30.0)]  # no control at r = 0, none for a reference generator
    assert control[0].job.identity.variant.endswith("filter=outliers-only")
