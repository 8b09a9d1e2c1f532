import numpy as np
import pytest
import torch

from bench.config import DataConfig, load_profile
from bench.datasets import build_split, n_outliers_for
from bench.datasets.split import Split
from bench.errors import BenchError
from tests.conftest import data_config


def small_data(size=16) -> DataConfig:
    return data_config(size, facemask=(60, 20, 10, 20), roomcrop=(60, 20, 10, 20, 140))


@pytest.mark.parametrize("ratio", [0, 5, 10, 15, 20, 25, 30])
def test_outlier_fraction_exact_at_every_ratio(ratio):
    for n_in in (120, 1_200, 3_000, 10_000, 30_000):
        n_out = n_outliers_for(ratio, n_in)
        assert n_out == round(ratio / (100 - ratio) * n_in)
        # within one image of the requested fraction of *all* training images
        assert abs(n_out - ratio / 100 * (n_in + n_out)) <= 1


@pytest.mark.parametrize("bad", [-1, 100, 150])
def test_ratio_out_of_range(bad):
    with pytest.raises(BenchError, match=r"\[0, 100\)"):
        n_outliers_for(bad, 10)


@pytest.mark.parametrize("dataset", ["facemask", "roomcrop"])
def test_synthetic_split_counts_and_disjointness(tmp_path, dataset):
    data = small_data()
    s: Split = build_split(dataset, data, 25, 0, tmp_path)
    assert s.train_images.dtype == torch.uint8 and s.train_images.shape[1:] == (3, 16, 16)
    assert s.n_inliers == 60 and s.n_outliers == n_outliers_for(25, 60) == 20
    assert s.clf_train_images.shape[0] == 40 and int(s.clf_train_is_outlier.sum()) == 20
    assert s.clf_test_inliers.shape[0] == s.clf_test_outliers.shape[0] == 10
    assert s.reference_images.shape[0] == 20
    # no image appears in two of the sets
    sets = {
        "train": s.train_images, "clf": s.clf_train_images, "test_in": s.clf_test_inliers,
        "test_out": s.clf_test_outliers, "ref": s.reference_images,
    }  # fmt: skip
    seen = {}
    for name, imgs in sets.items():
        for img in imgs:
            key = img.numpy().tobytes()
            assert seen.setdefault(key, name) == name, f"an image is in both {seen[key]} and {name}"


def test_determinism_byte_identical_and_cached(tmp_path):
    data = small_data()
    a = build_split("roomcrop", data, 10, 3, tmp_path / "a")
    b = build_split("roomcrop", data, 10, 3, tmp_path / "b")
    assert a.split_hash == b.split_hash
    assert a.path.read_bytes() == b.path.read_bytes()
    again = build_split("roomcrop", data, 10, 3, tmp_path / "a")  # from the cache
    assert again.path == a.path and torch.equal(again.train_images, a.train_images)
    other_seed = build_split("roomcrop", data, 10, 4, tmp_path / "a")
    assert other_seed.split_hash != a.split_hash


def test_heldout_sets_do_not_depend_on_ratio_and_outliers_are_nested(tmp_path):
    data = small_data()
    lo = build_split("facemask", data, 10, 0, tmp_path)
    hi = build_split("facemask", data, 30, 0, tmp_path)
    assert lo.heldout_hash == hi.heldout_hash
    out_lo = {x.numpy().tobytes() for x in lo.train_images[lo.train_is_outlier]}
    out_hi = {x.numpy().tobytes() for x in hi.train_images[hi.train_is_outlier]}
    assert out_lo < out_hi


def test_smoke_profile_builds_both_datasets(tmp_path):
    p = load_profile("smoke")
    for ds in ("facemask", "roomcrop"):
        s = build_split(ds, p.data, 30, 0, tmp_path)
        assert s.n_outliers == n_outliers_for(30, s.n_inliers)
        assert np.isclose(s.n_outliers / (s.n_inliers + s.n_outliers), 0.3, atol=1 / (s.n_inliers + s.n_outliers))


def test_synthetic_pool_limit_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="ratio below 75 %"):
        build_split("facemask", small_data(), 90, 0, tmp_path)
