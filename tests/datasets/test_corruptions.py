"""Corruptions: RoomCrop's rectangles as the paper describes them, the other registered corruptions, the registry."""

import numpy as np
import pytest

from bench.datasets import corruptions
from bench.datasets.corruptions import RectanglesParams, blacken, corrupt_item, draw_rectangles
from bench.errors import BenchError


@pytest.mark.parametrize("size", [16, 32, 64])
def test_one_to_three_rectangles_with_sides_in_range(size):
    rng = np.random.default_rng(0)
    counts = set()
    scale = size / 64
    for _ in range(300):
        rects = draw_rectangles(rng, size, RectanglesParams())
        counts.add(len(rects))
        for r in rects:
            assert 0 <= r.x0 < r.x1 <= size and 0 <= r.y0 < r.y1 <= size
            w, h = r.x1 - r.x0, r.y1 - r.y0
            # clipped at the border, never larger than the maximum side
            assert w <= round(25 * scale) + 1 and h <= round(25 * scale) + 1
    assert counts == {1, 2, 3}


def test_area_reading_gives_small_rectangles():
    rng = np.random.default_rng(1)
    for _ in range(200):
        for r in draw_rectangles(rng, 64, RectanglesParams(reading="area")):
            assert (r.x1 - r.x0) * (r.y1 - r.y0) <= 40


def test_rectangles_are_black_and_rest_untouched():
    img = np.full((32, 32, 3), 200, np.uint8)
    rng = np.random.default_rng(2)
    rects = draw_rectangles(rng, 32, RectanglesParams())
    out = blacken(img, rects)
    mask = np.zeros((32, 32), bool)
    for r in rects:
        mask[r.y0 : r.y1, r.x0 : r.x1] = True
    assert (out[mask] == 0).all() and (out[~mask] == 200).all()
    assert (img == 200).all()  # input not modified


@pytest.mark.parametrize("name", corruptions.names())
def test_every_corruption_is_deterministic_per_item_and_changes_the_image(name):
    params = corruptions.get(name).make_params({}, "params")
    fn, tag = corrupt_item(name, params, seed=5)
    img = np.random.default_rng(0).integers(60, 200, (32, 32, 3)).astype(np.uint8)
    a, b = fn(img, 7), fn(img, 8)
    assert a.dtype == np.uint8 and a.shape == img.shape
    assert np.array_equal(a, fn(img, 7)) and not np.array_equal(a, b)
    assert not np.array_equal(a, img)  # an outlier differs from its clean image
    assert name in tag


def test_noise_is_heavy_and_patch_is_local():
    img = np.full((32, 32, 3), 128, np.uint8)
    noisy = corrupt_item("noise", corruptions.NoiseParams(), 0)[0](img, 0)
    assert noisy.astype(float).std() > 40  # sigma 0.25 of the range = 64 grey levels (clipped a little)
    patched = corrupt_item("patch", corruptions.PatchParams(), 0)[0](img, 0)
    changed = (patched != img).any(2)
    assert 0.05 < changed.mean() < 0.6  # a patch, not the whole image


def test_bad_corruption_settings_are_one_line():
    with pytest.raises(BenchError, match="unknown corruption 'blur'"):
        corruptions.get("blur")
    with pytest.raises(BenchError, match="unknown setting params.sigma"):
        corruptions.get("rectangles").make_params({"sigma": 1}, "params")
    with pytest.raises(BenchError, match="reading"):
        corruptions.get("rectangles").make_params({"reading": "diag"}, "params")
