"""``--filter DETECTOR:FRACTION``: parsing, the spec's stored form, and what ``training_set`` keeps and reports.

Inputs are built by hand: a Split-like object holding only what ``training_set`` reads (training images, outlier
labels, the split hash), with dark inliers and bright outliers, so the ``mean`` detector (distance to the mean image)
separates them exactly and every reported number can be written down in advance.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from bench import detectors, filtering
from bench.errors import BenchError
from bench.filtering import FilterSpec


def make_split(bright: list[bool], is_outlier: list[bool], split_hash: str = "a" * 64, size: int = 8, noise: int = 10):
    """One image per entry: bright (~240) or dark (~15), with seeded noise of +-``noise``; labels as given."""
    g = torch.Generator().manual_seed(0)
    n = len(bright)
    base = torch.tensor([240 if b else 15 for b in bright], dtype=torch.int16).view(n, 1, 1, 1)
    noise = torch.randint(-noise, noise + 1, (n, 3, size, size), generator=g, dtype=torch.int16)
    images = (base + noise).clamp(0, 255).to(torch.uint8)
    return SimpleNamespace(
        train_images=images,
        train_is_outlier=torch.tensor(is_outlier, dtype=torch.bool),
        split_hash=split_hash,
    )


def mixed_split(n_in: int = 20, n_out: int = 5, **kw):
    """Inliers dark, outliers bright, interleaved (a split mixes its classes)."""
    labels = [i % 5 == 4 for i in range(n_in + n_out)]
    assert sum(labels) == n_out
    return make_split(labels, labels, **kw)


# ------------------------------------------------------------------------------------------------------ parse


@pytest.mark.parametrize("text", ["none", "", "  none  "])
def test_parse_none_means_no_filter(text):
    assert filtering.parse(text) is None


def test_parse_detector_and_fraction():
    spec = filtering.parse("pca:0.3")
    assert (spec.detector, spec.fraction, spec.overrides) == ("pca", 0.3, {})
    assert spec.params == dataclasses.asdict(detectors.make_params("pca"))  # the detector's full defaults
    assert spec.label == "pca:0.3"


def test_parse_parameters_are_typed_and_labelled_in_sorted_order():
    spec = filtering.parse(" iforest : 0.25 : n_estimators=50,k=4 ")
    assert spec.detector == "iforest" and spec.fraction == 0.25
    assert spec.overrides == {"n_estimators": 50, "k": 4}
    assert spec.params["n_estimators"] == 50 and spec.params["k"] == 4
    assert spec.params["max_samples"] == detectors.make_params("iforest").max_samples
    assert spec.label == "iforest:0.25:k=4,n_estimators=50"


@pytest.mark.parametrize(
    "text, says",
    [
        ("pca", "DETECTOR:FRACTION"),
        ("nosuch:0.3", "unknown detector 'nosuch'"),
        ("pca:abc", "not a number"),
        ("pca:0", "(0, 1)"),
        ("pca:1", "(0, 1)"),
        ("pca:-0.2", "(0, 1)"),
        ("pca:1.5", "(0, 1)"),
        ("pca:0.3:k", "not key=value"),
        ("pca:0.3:=4", "not key=value"),
        ("pca:0.3:nosuch=1", "nosuch"),
        ("pca:0.3:k=-1", "k"),
        ("pca:0.3:k=many", "k"),
    ],
)
def test_parse_bad_specs_are_one_line_errors(text, says):
    with pytest.raises(BenchError) as info:
        filtering.parse(text)
    message = str(info.value)
    assert "\n" not in message, message
    assert says in message, message


# ------------------------------------------------------------------------------------------------------ FilterSpec


@pytest.mark.parametrize("text", ["pca:0.3", "mean:0.1", "iforest:0.25:n_estimators=50,k=4", "pca:0.5:k=2"])
def test_filter_spec_round_trips_through_its_dict(text):
    spec = filtering.parse(text)
    d = spec.to_dict()
    assert d["label"] == spec.label and d["detector"] == spec.detector and d["fraction"] == spec.fraction
    assert d["params"] == spec.params
    again = FilterSpec.from_dict(d)
    assert again == spec and again.label == spec.label


def test_filter_spec_from_no_dict_is_no_filter():
    assert FilterSpec.from_dict(None) is None


# ------------------------------------------------------------------------------------------------------ training_set


def test_no_filter_keeps_everything(tmp_path):
    split = mixed_split()
    train = filtering.training_set(split, None, 0, tmp_path)
    assert torch.equal(train.images, split.train_images)
    assert torch.equal(train.is_outlier, split.train_is_outlier)
    assert train.report == {}
    assert not (tmp_path / "detectors").exists()


@pytest.mark.parametrize("n, fraction, dropped", [(30, 0.3, 9), (30, 0.25, 8), (25, 0.2, 5), (10, 0.05, 1)])
def test_drops_the_requested_fraction(tmp_path, n, fraction, dropped):
    split = make_split([i % 3 == 0 for i in range(n)], [False] * n)
    train = filtering.training_set(split, filtering.parse(f"pca:{fraction}"), 0, tmp_path)
    assert len(train.images) == len(train.is_outlier) == n - dropped  # ceil(fraction * n) dropped
    assert train.report["n_train_kept"] == n - dropped


def test_perfect_detector_report(tmp_path):
    split = mixed_split(20, 5)
    train = filtering.training_set(split, filtering.parse("mean:0.2"), 0, tmp_path)
    r = train.report
    assert r["filter"] == "mean:0.2"
    assert r["filter_precision"] == 1.0 and r["filter_recall"] == 1.0 and r["filter_auc"] == 1.0
    assert r["n_train_kept"] == 20 and r["kept_outlier_share"] == 0.0
    assert not train.is_outlier.any()
    assert torch.equal(train.images, split.train_images[~split.train_is_outlier])  # the inliers, in split order


def test_report_counts_misses_and_false_alarms(tmp_path):
    # 25 noise-free images, 5 outliers; one outlier looks like an inlier (dark) and one inlier like an outlier
    # (bright). Dropping 20 % drops the 5 bright ones: 4 outliers + 1 inlier.
    labels = [i % 5 == 4 for i in range(25)]
    bright = list(labels)
    bright[4], bright[0] = False, True
    split = make_split(bright, labels, noise=0)
    r = filtering.training_set(split, filtering.parse("mean:0.2"), 0, tmp_path).report
    assert r["filter_precision"] == pytest.approx(4 / 5)
    assert r["filter_recall"] == pytest.approx(4 / 5)
    assert r["n_train_kept"] == 20
    assert r["kept_outlier_share"] == pytest.approx(1 / 20)
    # AUC over the 5 x 20 (outlier, inlier) pairs, ties count one half: bright outliers beat the 19 dark inliers (76)
    # and tie the bright inlier (4 x 0.5); the dark outlier ties the 19 dark inliers (19 x 0.5) and loses to the
    # bright one: 87.5 / 100.
    assert r["filter_auc"] == pytest.approx(0.875)


def test_no_outliers_at_all(tmp_path):
    split = make_split([i % 4 == 0 for i in range(20)], [False] * 20)
    r = filtering.training_set(split, filtering.parse("mean:0.25"), 0, tmp_path).report
    assert r["filter_precision"] == 0.0 and r["filter_recall"] is None and r["filter_auc"] is None
    assert r["n_train_kept"] == 15 and r["kept_outlier_share"] == 0.0


@pytest.mark.parametrize("text", ["mean:0.2", "pca:0.3:k=2", "iforest:0.2:n_estimators=20,k=4"])
def test_the_detector_never_sees_the_labels(tmp_path, text):
    """The kept images do not depend on the labels: shuffled or all-false labels keep the same images (each run with
    its own cache, so the scores are recomputed)."""
    spec = filtering.parse(text)
    split = mixed_split(20, 5)
    kept = filtering.training_set(split, spec, 0, tmp_path / "a").images
    g = torch.Generator().manual_seed(1)
    shuffled = split.train_is_outlier[torch.randperm(25, generator=g)]
    for i, labels in enumerate([shuffled, torch.zeros(25, dtype=torch.bool)]):
        other = SimpleNamespace(**{**vars(split), "train_is_outlier": labels})
        assert torch.equal(filtering.training_set(other, spec, 0, tmp_path / f"b{i}").images, kept)


def test_the_detector_is_given_images_only(tmp_path, monkeypatch):
    seen = []
    real = detectors.get("mean")

    def spy(images, params, seed):
        seen.append((images, params, seed))
        return real.fn(images, params, seed)

    monkeypatch.setattr(detectors, "get", lambda name: dataclasses.replace(real, fn=spy))
    split = mixed_split(20, 5)
    filtering.training_set(split, filtering.parse("mean:0.2"), 3, tmp_path)
    ((images, params, seed),) = seen
    assert torch.equal(images, split.train_images) and images.dtype == torch.uint8
    assert seed == 3


def test_second_call_reads_the_cache(tmp_path, monkeypatch):
    spec = filtering.parse("pca:0.2:k=2")
    split = mixed_split(20, 5)
    first = filtering.training_set(split, spec, 0, tmp_path)
    files = list((tmp_path / "detectors").glob("pca-*.pt"))
    assert len(files) == 1

    def refuse(name):
        raise AssertionError("the detector was fitted again although its scores are cached")

    monkeypatch.setattr(detectors, "get", refuse)
    second = filtering.training_set(split, spec, 0, tmp_path)
    assert torch.equal(second.images, first.images) and second.report == first.report
    assert list((tmp_path / "detectors").glob("pca-*.pt")) == files
    assert first.report["filter_fit_s"] >= 0  # the fit's seconds travel with the cached scores


def test_detector_scores_says_whether_it_read_the_cache(tmp_path):
    spec, split = filtering.parse("pca:0.2:k=2"), mixed_split(20, 5)
    fresh = filtering.detector_scores(spec, split.train_images, split.split_hash, 0, tmp_path)
    again = filtering.detector_scores(spec, split.train_images, split.split_hash, 0, tmp_path)
    assert not fresh.cached and again.cached and again.seconds == fresh.seconds
    assert torch.equal(again.scores, fresh.scores)


@pytest.mark.parametrize("change", ["split_hash", "seed", "params"])
def test_cache_is_keyed_on_split_seed_and_settings(tmp_path, change):
    split = mixed_split(20, 5)
    filtering.training_set(split, filtering.parse("pca:0.2:k=2"), 0, tmp_path)
    spec, seed = filtering.parse("pca:0.2:k=2"), 0
    if change == "split_hash":
        split = SimpleNamespace(**{**vars(split), "split_hash": "b" * 64})
    elif change == "seed":
        seed = 1
    else:
        spec = filtering.parse("pca:0.2:k=3")
    filtering.training_set(split, spec, seed, tmp_path)
    assert len(list((tmp_path / "detectors").glob("pca-*.pt"))) == 2


def test_the_same_scores_serve_every_fraction(tmp_path):
    """The fraction is not part of the score cache: every model and fraction behind one detector reuses the fit."""
    split = mixed_split(20, 5)
    filtering.training_set(split, filtering.parse("pca:0.2:k=2"), 0, tmp_path)
    filtering.training_set(split, filtering.parse("pca:0.3:k=2"), 0, tmp_path)
    assert len(list((tmp_path / "detectors").glob("pca-*.pt"))) == 1
