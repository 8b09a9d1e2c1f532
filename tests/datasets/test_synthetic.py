"""The embedded synthetic pools: deterministic per (seed, kind, index), and masks salient at the demo's 16 px."""

import numpy as np
import pytest

from bench.datasets.synthetic import SyntheticPool

KINDS = ("face", "masked_face", "room")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [16, 32, 64])
def test_images_are_uint8_rgb_of_the_requested_size(kind, size):
    img = SyntheticPool(kind, 0, 5).get(0, size)
    assert img.dtype == np.uint8 and img.shape == (size, size, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_image_is_a_function_of_seed_kind_and_index_only(kind):
    short, long = SyntheticPool(kind, 3, 10), SyntheticPool(kind, 3, 10_000)
    for i in (0, 7, 9):
        assert np.array_equal(short.get(i, 16), long.get(i, 16))  # pool length does not matter
        assert np.array_equal(short.get(i, 16), short.get(i, 16))  # nor drawing it twice
    assert not np.array_equal(short.get(0, 16), short.get(1, 16))
    assert not np.array_equal(short.get(0, 16), SyntheticPool(kind, 4, 10).get(0, 16))


def test_fingerprints_differ_by_kind_and_seed_and_carry_the_drawing_version():
    prints = {SyntheticPool(k, s, 10).fingerprint for k in KINDS for s in (0, 1)}
    assert len(prints) == 6
    assert SyntheticPool("face", 0, 10).fingerprint == SyntheticPool("face", 0, 99).fingerprint


def _lower_face_blue_minus_red(kind: str, n: int = 60) -> np.ndarray:
    """Mean (blue - red) over the region a mask covers (rows 10-13, columns 5-10 at 16 px), per image."""
    pool = SyntheticPool(kind, 0, n)
    region = np.stack([pool.get(i, 16)[10:14, 5:11].astype(float) for i in range(n)])
    return (region[..., 2] - region[..., 0]).mean(axis=(1, 2))


def test_masks_are_salient_at_16_px():
    """Every masked face's lower face is light blue/white/green, every bare one skin: a colour rule separates them.

    The demo profile (16 px) relies on this: a generated mask must stay recognisable as a mask to the classifier.
    """
    bare, masked = _lower_face_blue_minus_red("face"), _lower_face_blue_minus_red("masked_face")
    assert bare.max() < -30 < masked.min()
