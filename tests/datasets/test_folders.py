"""Real-folder builders: layouts, formats, and every bad input as one clear BenchError."""

import pytest
import torch

from bench.config import DataConfig
from bench.datasets import build_split
from bench.errors import BenchError
from tests.conftest import data_config, shared_path, write_images


def tiny(size=16) -> DataConfig:
    return data_config(size, facemask=(10, 4, 3, 4), roomcrop=(10, 4, 3, 4, 30))


def make_facemask(root, n_in=30, n_out=20):
    write_images(root / "without_mask", n_in // 3, (200, 150, 120), suffix=".png", mode="RGBA")
    write_images(root / "without_mask", n_in - n_in // 3, (210, 160, 130), size=(50, 70), suffix=".jpg")
    write_images(root / "with_mask", n_out, (100, 150, 220), size=(64, 64), suffix=".webp")


def test_facemask_reads_any_format_mode_and_size(tmp_path):
    make_facemask(tmp_path / "fm")
    s = build_split("facemask", tiny(), 25, 0, tmp_path / "cache", tmp_path / "fm")
    assert s.train_images.shape == (10 + 3, 3, 16, 16) and s.n_outliers == 3  # round(0.25/0.75 * 10)
    # inliers are warm-coloured, outliers blue: labels follow the folders
    red_minus_blue = s.train_images[:, 0].float().mean((1, 2)) - s.train_images[:, 2].float().mean((1, 2))
    assert torch.all((red_minus_blue < 0) == s.train_is_outlier)


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    make_facemask(tmp_path / "fm")
    for i in range(3):
        (tmp_path / "fm" / "without_mask" / f"broken{i}.jpg").write_bytes(b"not an image")
    s = build_split("facemask", tiny(), 0, 0, tmp_path / "cache", tmp_path / "fm")
    assert s.n_inliers == 10
    assert 0 <= s.meta["unreadable_skipped"] <= 3


def test_too_few_readable_images_fails_clearly(tmp_path):
    make_facemask(tmp_path / "fm", n_in=12, n_out=20)
    with pytest.raises(BenchError, match=r"not enough facemask inlier images: need 21, found 12"):
        build_split("facemask", tiny(), 0, 0, tmp_path / "cache", tmp_path / "fm")
    assert not list((tmp_path / "cache").rglob("*.npz"))  # nothing half-written


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda r: None, "not found"),
        (lambda r: r.mkdir(), "has no without_mask/ folder"),
        (lambda r: (r / "without_mask").mkdir(parents=True), "has no with_mask/ folder"),
        (lambda r: [(r / d).mkdir(parents=True) for d in ("without_mask", "with_mask")], "no images in"),
    ],
)
def test_facemask_bad_roots(tmp_path, setup, fragment):
    root = tmp_path / "fm"
    setup(root)
    with pytest.raises(BenchError, match=fragment):
        build_split("facemask", tiny(), 10, 0, tmp_path / "cache", root)


def test_roomcrop_folder_and_bad_roots(tmp_path):
    write_images(tmp_path / "beds", 70, (180, 170, 160), size=(48, 36))
    s = build_split("roomcrop", tiny(), 30, 0, tmp_path / "cache", tmp_path / "beds")
    assert s.n_inliers == 10 and s.n_outliers == 4
    # outliers carry black rectangles, inliers (noisy mid-grey) do not
    black = (s.train_images.amax(1) == 0).flatten(1).sum(1)
    assert torch.all((black > 0) == s.train_is_outlier)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no images in data root .* for .roomcrop."):
        build_split("roomcrop", tiny(), 10, 0, tmp_path / "cache", tmp_path / "empty")
    with pytest.raises(BenchError, match="not found"):
        build_split("roomcrop", tiny(), 10, 0, tmp_path / "cache", tmp_path / "nope")


def test_roomcrop_lmdb(tmp_path):
    lmdb = pytest.importorskip("lmdb", reason="optional dependency lmdb not installed")
    import io

    import numpy as np
    from PIL import Image

    env = lmdb.open(str(tmp_path / "bedroom_train_lmdb"), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for i in range(70):
            buf = io.BytesIO()
            Image.fromarray(np.full((40, 52, 3), 100 + i, np.uint8)).save(buf, format="WEBP")
            txn.put(f"{i:06d}".encode(), buf.getvalue())
    env.close()
    s = build_split("roomcrop", tiny(), 20, 1, tmp_path / "cache", tmp_path / "bedroom_train_lmdb")
    assert s.n_inliers == 10 and s.n_outliers == 2


@pytest.mark.standin
def test_facemask_standin_at_30_percent(tmp_path):
    root = shared_path("facemask12k")
    data = data_config(32, facemask=(300, 50, 50, 50))
    s = build_split("facemask", data, 30, 0, tmp_path, root)
    assert s.n_outliers == round(0.3 / 0.7 * 300)
    assert abs(s.n_outliers - 0.3 * (s.n_inliers + s.n_outliers)) <= 1


@pytest.mark.standin
def test_roomcrop_standin_has_visible_rectangles(tmp_path):
    root = shared_path("bedroom", "images")
    data = data_config(32, roomcrop=(200, 50, 50, 50, 400))
    s = build_split("roomcrop", data, 30, 0, tmp_path, root)
    black = (s.train_images.amax(1) == 0).flatten(1).sum(1).float()
    assert black[s.train_is_outlier].min() >= 4  # every outlier has a visible black block
    assert black[s.train_is_outlier].mean() > 5 * black[~s.train_is_outlier].mean()
