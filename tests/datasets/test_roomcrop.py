import numpy as np
import pytest

from bench.config import DataConfig
from bench.datasets.roomcrop import blacken, corruption, draw_rectangles


@pytest.mark.parametrize("size", [16, 32, 64])
def test_one_to_three_rectangles_with_sides_in_range(size):
    cfg = DataConfig()
    rng = np.random.default_rng(0)
    counts = set()
    scale = size / 64
    for _ in range(300):
        rects = draw_rectangles(rng, size, cfg)
        counts.add(len(rects))
        for r in rects:
            assert 0 <= r.x0 < r.x1 <= size and 0 <= r.y0 < r.y1 <= size
            w, h = r.x1 - r.x0, r.y1 - r.y0
            # clipped at the border, never larger than the maximum side
            assert w <= round(25 * scale) + 1 and h <= round(25 * scale) + 1
    assert counts == {1, 2, 3}


def test_area_reading_gives_small_rectangles():
    cfg = DataConfig(rect_reading="area")
    rng = np.random.default_rng(1)
    for _ in range(200):
        for r in draw_rectangles(rng, 64, cfg):
            assert (r.x1 - r.x0) * (r.y1 - r.y0) <= 40


def test_rectangles_are_black_and_rest_untouched():
    img = np.full((32, 32, 3), 200, np.uint8)
    rng = np.random.default_rng(2)
    rects = draw_rectangles(rng, 32, DataConfig())
    out = blacken(img, rects)
    mask = np.zeros((32, 32), bool)
    for r in rects:
        mask[r.y0 : r.y1, r.x0 : r.x1] = True
    assert (out[mask] == 0).all() and (out[~mask] == 200).all()
    assert (img == 200).all()  # input not modified


def test_corruption_is_deterministic_per_item():
    fn, _ = corruption(DataConfig(), seed=5)
    img = np.full((32, 32, 3), 128, np.uint8)
    assert np.array_equal(fn(img, 7), fn(img, 7))
    assert not np.array_equal(fn(img, 7), fn(img, 8))
