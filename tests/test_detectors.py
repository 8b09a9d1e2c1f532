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


# ---- registry ------------------------------------------------------------------------------------------------------

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bench import detectors, fields  # noqa: E402
from bench.errors import BenchError  # noqa: E402

BUILT_INS = ("mean", "pca", "iforest", "lof", "mcd", "kurtosis")


def _images_with_planted_patch(n=300, n_out=15, seed=0):
    """3-factor 8x8 images; the first ``n_out`` carry a bright 3x3 square, each at its own place (off the subspace)."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(3, 3 * 8 * 8, generator=g)
    x = 110 + 4 * torch.randn(n, 3, generator=g) @ basis + 3 * torch.randn(n, 192, generator=g)
    x = x.reshape(n, 3, 8, 8)
    for i, (r, c) in enumerate(torch.randint(0, 6, (n_out, 2), generator=g).tolist()):
        x[i, :, r : r + 3, c : c + 3] += 90
    labels = torch.zeros(n, dtype=torch.bool)
    labels[:n_out] = True
    return x.clamp(0, 255).round().to(torch.uint8), labels


def _images_with_a_mode_inside_the_subspace(n_in=300, n_out=100, seed=0):
    """A 25 % second mode that sits *on* the inliers' principal subspace: residual detectors cannot see it."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(192, 3, generator=g)).Q.T * 8  # 3 x 192, orthogonal rows
    a = torch.randn(n_in + n_out, 3, generator=g) * torch.tensor([12.0, 10.0, 8.0])
    a[n_in:, 0] = 70 + torch.randn(n_out, generator=g)  # the outliers: a tight group along the top direction
    x = 128 + a @ basis + torch.randn(n_in + n_out, 192, generator=g)
    labels = torch.zeros(n_in + n_out, dtype=torch.bool)
    labels[n_in:] = True
    return x.reshape(-1, 3, 8, 8).clamp(0, 255).round().to(torch.uint8), labels


def test_built_ins_are_registered_with_descriptions():
    assert set(BUILT_INS) <= set(detectors.names())
    for name in BUILT_INS:
        spec = detectors.get(name)
        assert spec.description and dataclasses.is_dataclass(spec.params_cls)


@pytest.mark.parametrize("name", BUILT_INS)
def test_planted_outliers_rank_first_and_scores_are_deterministic(name):
    images, labels = _images_with_planted_patch()
    params = detectors.make_params(name, {"k": 3} if name == "pca" else {"k": 8} if name != "mean" else {})
    scores = detectors.score(name, images, params, seed=3)
    assert scores.dtype == torch.float64 and scores.shape == (images.shape[0],)
    assert roc_auc(scores, labels) > 0.97, name
    assert flag_metrics(labels, 0.05, scores=scores)["precision"] >= 0.8, name
    assert torch.equal(scores, detectors.score(name, images, params, seed=3))


def test_robust_covariance_finds_a_large_mode_that_the_pca_residual_misses():
    images, labels = _images_with_a_mode_inside_the_subspace()
    assert roc_auc(detectors.score("pca", images, detectors.make_params("pca", {"k": 3})), labels) < 0.75
    mcd = detectors.score("mcd", images, detectors.make_params("mcd", {"k": 3}))
    assert roc_auc(mcd, labels) > 0.99
    kurt = detectors.score("kurtosis", images, detectors.make_params("kurtosis", {"k": 3}))
    assert roc_auc(kurt, labels) > 0.95


def test_seed_reaches_randomised_detectors():
    images, _ = _images_with_planted_patch()
    a = detectors.score("iforest", images, seed=0)
    assert not torch.equal(a, detectors.score("iforest", images, seed=1))


def test_registered_pca_equals_the_legacy_function():
    images, _ = _images_with_planted_patch(n=120)
    for k in (0, 4, 8):
        new = detectors.score("pca", images, detectors.make_params("pca", {"k": k}))
        assert torch.allclose(new, pca_residual_scores(images, k), rtol=1e-9, atol=1e-9)
    assert torch.allclose(detectors.score("mean", images), mean_distance_scores(images))


def test_top_principal_components_match_a_full_svd():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(200, 100, generator=g, dtype=torch.float64) * torch.linspace(5, 0.1, 100, dtype=torch.float64)
    x = x - x.mean(0)
    vals, vecs = detectors.top_principal_components(x, 6)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    assert torch.allclose(vals, s[:6] ** 2 / 199, rtol=1e-10)
    assert torch.allclose((vecs.T @ vh[:6].T).abs(), torch.eye(6, dtype=torch.float64), atol=1e-8)


def test_kurtosis_directions_find_a_bimodal_and_a_heavy_tailed_axis():
    rng = np.random.default_rng(0)
    n = 4000
    bimodal = np.where(rng.random(n) < 0.5, -1.0, 1.0) + 0.1 * rng.standard_normal(n)  # kurtosis ~1
    heavy = rng.standard_t(4, n)  # kurtosis > 3
    z = np.column_stack([bimodal, heavy, rng.standard_normal(n)])
    rot = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    z = (z - z.mean(0)) / z.std(0) @ rot
    dirs = detectors.kurtosis_directions(z, np.random.default_rng(1))
    assert np.allclose(dirs.T @ dirs, np.eye(3), atol=1e-8)
    cos = np.abs(dirs.T @ rot.T)  # rows: found directions, columns: true axes
    assert cos[:, 0].max() > 0.99 and cos[:, 1].max() > 0.95


def test_make_params_checks_names_types_and_ranges():
    assert detectors.make_params("pca", {}).k == 8
    assert detectors.make_params("pca", {"k": 16}).k == 16
    p = detectors.make_params("iforest", {"max_features": 1})
    assert isinstance(p.max_features, float) and p.max_features == 1.0
    assert detectors.make_params("mcd", {"support_fraction": None}).support_fraction is None
    assert detectors.make_params("mcd", {"support_fraction": 0.75}).support_fraction == 0.75
    bad = [
        ("pca", {"kk": 3}, "unknown setting detector pca.kk"),
        ("pca", {"k": "8"}, "is not an integer"),
        ("pca", {"k": 8.5}, "is not an integer"),
        ("pca", {"k": True}, "is not an integer"),
        ("pca", {"k": -1}, "k must be >= 0"),
        ("iforest", {"max_features": 1.5}, "max_features must be in [0, 1]"),
        ("iforest", {"max_features": 0.0}, "max_features must be positive"),
        ("iforest", {"max_features": float("nan")}, "not a finite number"),
        ("iforest", {"max_samples": 1}, "max_samples must be at least 2"),
        ("lof", {"n_neighbors": 0}, "n_neighbors must be positive"),
        ("mcd", {"support_fraction": 0.2}, "support_fraction must be a number in [0.5, 1]"),
        ("mcd", {"support_fraction": "half"}, "support_fraction must be a number in [0.5, 1]"),
        ("kurtosis", {"c_steps": -1}, "c_steps must be >= 0"),
        ("mean", {"k": 1}, "unknown setting detector mean.k"),
        ("nope", {}, "unknown detector 'nope'"),
    ]
    for name, overrides, msg in bad:
        with pytest.raises(BenchError) as err:
            detectors.make_params(name, overrides)
        assert msg in str(err.value) and "\n" not in str(err.value), (name, overrides, str(err.value))


def test_score_rejects_wrong_params_and_images():
    images, _ = _images_with_planted_patch(n=40)
    with pytest.raises(BenchError, match="takes PCAParams"):
        detectors.score("pca", images, detectors.make_params("lof"))
    with pytest.raises(BenchError, match="uint8 images"):
        detectors.score("mean", images.float())
    with pytest.raises(BenchError, match="uint8 images"):
        detectors.score("mean", images[:, 0])


def test_registration_is_validated():
    @dataclasses.dataclass
    class P:
        a: int = 1

    def other(images, params, seed):
        return images.double().mean((1, 2, 3))

    with pytest.raises(
        BenchError, match="detector name 'pca' is taken by the built-in bench.detectors._pca: pick another name"
    ):
        detectors.register_detector("pca", params=P)(other)
    with pytest.raises(BenchError, match="must be a dataclass class"):
        detectors.register_detector("test-bad-params", params=dict)
    with pytest.raises(BenchError, match="must be a dataclass class"):
        detectors.register_detector("test-bad-params", params=P())

    @dataclasses.dataclass
    class NoDefault:
        a: int

    with pytest.raises(BenchError, match="needs a default"):
        detectors.register_detector("test-no-default", params=NoDefault)

    @dataclasses.dataclass
    class BadDefault:
        a: int = -1

        def __post_init__(self):
            fields.require_non_negative(self, ["a"])

    with pytest.raises(BenchError, match="a must be >= 0"):
        detectors.register_detector("test-bad-default", params=BadDefault)(other)
    with pytest.raises(BenchError, match="bad detector name"):
        detectors.register_detector("Has Space", params=P)
    with pytest.raises(BenchError, match="decorates a function"):
        detectors.register_detector("test-not-callable", params=P)(42)
    assert not [n for n in detectors.names() if n.startswith("test-")]
    assert detectors.get("pca").fn.__name__ == "_pca"


def test_a_new_detector_registers_once_and_is_found():
    @dataclasses.dataclass(frozen=True)
    class BrightParams:
        channel: int = 0

        def __post_init__(self):
            fields.require(self.channel in (0, 1, 2), f"channel must be 0, 1 or 2, got {self.channel!r}")

    name = "test-brightness"
    try:

        @detectors.register_detector(name, params=BrightParams, description="mean of one channel")
        def bright(images, params, seed):
            return images[:, params.channel].double().mean((1, 2))

        images, labels = _images_with_planted_patch()
        assert name in detectors.names() and detectors.get(name).description == "mean of one channel"
        assert roc_auc(detectors.score(name, images), labels) > 0.97
        with pytest.raises(BenchError, match=r"channel must be 0, 1 or 2"):
            detectors.make_params(name, {"channel": 3})
        detectors.register_detector(name, params=BrightParams)(bright)  # the same function again: a re-import

        def impostor(images, params, seed):
            return -bright(images, params, seed)

        with pytest.raises(BenchError, match="is taken by"):
            detectors.register_detector(name, params=BrightParams)(impostor)
        assert detectors.get(name).fn is bright
    finally:
        detectors.DETECTORS.remove(name)


def test_degenerate_sets_score_or_fail_with_one_line():
    constant = torch.full((20, 3, 4, 4), 7, dtype=torch.uint8)
    for name in BUILT_INS:
        if name == "mcd":
            with pytest.raises(BenchError, match="detector mcd cannot fit"):
                detectors.score(name, constant)
        else:
            scores = detectors.score(name, constant)
            assert torch.isfinite(scores).all() and scores.unique().numel() == 1, name
