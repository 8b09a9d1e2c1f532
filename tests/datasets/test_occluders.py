"""The ``occluders`` corruption: deterministic, local, varied, soft-edged, validated, and usable by ``corrupted``."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from bench import api
from bench.datasets import corruptions
from bench.datasets.occluders import OccludersParams, draw_occluders, occluders
from bench.errors import BenchError


def face_like(size: int, seed: int = 0) -> np.ndarray:
    """A smooth, natural-looking test image: a skin-toned blob on a gradient background, with a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    blob = np.exp(-(((xx - 0.5) / 0.3) ** 2 + ((yy - 0.5) / 0.4) ** 2))[..., None]
    background = np.stack([60 + 80 * xx, 70 + 60 * yy, 90 + 40 * xx * yy], -1)
    img = (1 - blob) * background + blob * np.array([210.0, 160.0, 130.0]) + rng.normal(0, 4, (size, size, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def test_registered_with_the_other_corruptions():
    assert "occluders" in corruptions.names()
    assert corruptions.get("occluders").params_cls is OccludersParams
    assert corruptions.origin_of("occluders") == "built-in"


@pytest.mark.parametrize("size", [16, 32, 64])
def test_same_rng_same_image_and_shape_dtype_kept(size):
    img = face_like(size)
    before = img.copy()
    a = occluders(img, np.random.default_rng([3, 7]), OccludersParams())
    b = occluders(img, np.random.default_rng([3, 7]), OccludersParams())
    c = occluders(img, np.random.default_rng([3, 8]), OccludersParams())
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(img, before)  # the input is not modified


def test_changed_area_is_a_sane_share_of_the_image():
    img = face_like(64)
    cover, changed = [], []
    for seed in range(200):
        out, alpha = draw_occluders(img, np.random.default_rng(seed), OccludersParams())
        cover.append((alpha > 0.5).mean())
        changed.append((np.abs(np.rint(out) - img).max(-1) > 8).mean())
    cover, changed = np.array(cover), np.array(changed)
    assert 0.03 < cover.mean() < 0.40 and 0.03 < changed.mean() < 0.40
    assert cover.min() > 0.01 and cover.max() < 0.75  # never a speck, never the whole image


def test_occluders_vary_in_colour_and_position_and_have_soft_edges():
    img = face_like(64)
    colours, centres, soft = [], [], []
    for seed in range(60):
        out, alpha = draw_occluders(img, np.random.default_rng(seed), OccludersParams(count_max=1))
        inside = alpha > 0.9
        colours.append(out[inside].mean(0))
        yy, xx = np.nonzero(inside)
        centres.append((xx.mean(), yy.mean()))
        partial = (alpha > 0.02) & (alpha < 0.98)
        soft.append(partial.sum() / max(1, (alpha > 0.02).sum()))
    colours, centres = np.array(colours), np.array(centres)
    assert colours.std(0).min() > 20  # not one colour (e.g. black) for all
    assert len({tuple(np.round(c / 32)) for c in colours}) >= 8
    assert centres.std(0).min() > 4  # not one position
    assert np.median(soft) > 0.1  # anti-aliased, blurred edges: a band of partial opacity around each occluder


def test_face_bias_puts_occluders_around_the_lower_centre():
    img = face_like(64)
    ys = []
    for seed in range(60):
        _, alpha = draw_occluders(img, np.random.default_rng(seed), OccludersParams(face_bias=1.0, count_max=1))
        ys.append(np.nonzero(alpha > 0.5)[0].mean())
    assert 36 < np.mean(ys) < 52  # the mouth and chin of a centred face, not the image centre (32)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"min": 30, "max": 20}, "min <= max"),
        ({"count_min": 0}, "count_min"),
        ({"shapes": "ellipse,hexagon"}, "shapes must be a comma-separated list"),
        ({"colours": ""}, "colours must list at least one"),
        ({"textures": "plaid"}, "textures"),
        ({"face_bias": 1.5}, "face_bias"),
        ({"opacity_min": 0.0}, "opacity_min"),
        ({"edge": -1.0}, "edge"),
        ({"aspect": 0.5}, "aspect"),
        ({"size": 3}, "unknown setting params.size"),
        ({"min": "big"}, "is not a number"),
    ],
)
def test_bad_parameters_are_one_line_errors(overrides, match):
    with pytest.raises(BenchError, match=match) as e:
        corruptions.get("occluders").make_params(overrides, "params")
    assert "\n" not in str(e.value)


def test_parameters_are_frozen_and_override_by_name():
    p = corruptions.get("occluders").make_params({"colours": "skin, grey", "max": 30}, "params")
    assert p.colours == "skin, grey" and p.max == 30.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.max = 10.0  # type: ignore[misc]
    out = occluders(face_like(32), np.random.default_rng(0), p)
    assert out.shape == (32, 32, 3)


def test_corrupted_dataset_builds_a_split_with_occluders(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    for i in range(300):
        Image.fromarray(face_like(24, seed=i)).save(root / f"{i:03d}.png")
    sets = {
        "data.corrupted.corruption": "occluders",
        "data.corrupted.inliers": 30,
        "data.corrupted.classifier_train_per_class": 16,
        "data.corrupted.classifier_test_per_class": 8,
        "data.corrupted.reference": 16,
    }
    split = api.build_split("corrupted", 30, 0, profile="smoke", data_root=root, out=tmp_path / "out", **sets)
    assert split.n_inliers == 30 and split.n_outliers == 13  # round(0.3 / 0.7 x 30)
    assert tuple(split.train_images.shape[1:]) == (3, 16, 16)
    assert "occluders" in split.meta["source"]
    again = api.build_split("corrupted", 30, 0, profile="smoke", data_root=root, out=tmp_path / "again", **sets)
    assert np.array_equal(split.train_images.numpy(), again.train_images.numpy())
