"""The evaluator: Table 5 F1 on an easy task, the fallback Frechet distance, offline InceptionV3 from a local file,
the missing-weights path and bad weight files."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import torch

from bench.classifiers import features
from bench.classifiers.inlier_cnn import InlierCNN, classifier_embeddings, load_or_train_classifier
from bench.config import EvalConfig
from bench.errors import BenchError
from bench.evaluator import RESULT_KEYS, classifier_f1_table, evaluate_samples, frechet_distance

SIZE = 16
CFG = EvalConfig(classifier_epochs=5, classifier_batch=16, feature_batch=8, kid_subset_size=1000)


def square_images(n: int, with_square: bool, seed: int) -> torch.Tensor:
    """Dark noise; inliers also carry one bright square (side 6 px) at a random place."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 80, (n, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)
    if with_square:
        side = SIZE * 3 // 8
        for i in range(n):
            r, c = torch.randint(0, SIZE - side + 1, (2,), generator=g).tolist()
            x[i, :, r : r + side, c : c + side] = 255
    return x


@pytest.fixture(scope="module")
def split():
    n = 160
    images = torch.cat([square_images(n, True, 10), square_images(n, False, 11)])
    is_outlier = torch.cat([torch.zeros(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)])
    return {"clf_train_images": images, "clf_train_is_outlier": is_outlier}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("eval-cache")  # shared: the classifier trains once for the whole module


@pytest.fixture
def no_inception_anywhere(tmp_path, monkeypatch):
    """An empty TORCH_HOME and no configured weights; the once-per-run notice re-armed."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.setenv(features._NOTICE_ENV, "")  # as in a fresh driver; restored (unset) after the test


@pytest.fixture
def network_forbidden(monkeypatch):
    """Any attempt to reach the network fails the test loudly."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args[:2]}")

    import torch_fidelity.feature_extractor_inceptionv3 as fe_module

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(fe_module, "load_state_dict_from_url", refuse)
    return attempts


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A state dict of torch-fidelity's InceptionV3 with random init (built without any download)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe_module
    from torch_fidelity import FeatureExtractorInceptionV3

    mp = pytest.MonkeyPatch()
    mp.setattr(fe_module, "load_state_dict_from_url", lambda *a, **k: None)
    mp.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
    try:
        torch.manual_seed(0)
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    finally:
        mp.undo()
    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_f1_table_on_easy_task(split, cache_dir):
    rows = classifier_f1_table(
        **split,
        clf_test_inliers=square_images(200, True, 20),
        clf_test_outliers=square_images(60, False, 21),
        cfg=CFG,
        seed=0,
        cache_dir=cache_dir,
    )
    assert [r["ratio"] for r in rows] == [0, 5, 10, 15, 20, 25, 30]
    for r in rows:
        assert set(r) == {"ratio", "f1", "accuracy", "n_inliers", "n_outliers"}
        total = r["n_inliers"] + r["n_outliers"]
        assert r["n_outliers"] / total == pytest.approx(r["ratio"] / 100, abs=0.01)
        assert r["f1"] > 0.95 and r["accuracy"] > 0.95
    assert rows[0]["n_outliers"] == 0 and rows[0]["n_inliers"] == 200
    assert rows[-1]["n_outliers"] == 60 and rows[-1]["n_inliers"] == 140  # outlier pool ran out: inliers shrink


def test_fallback_frechet_distance_separates_inliers_from_outliers(split, cache_dir):
    clf = load_or_train_classifier(split["clf_train_images"], split["clf_train_is_outlier"], CFG, 0, cache_dir)
    inliers_a = classifier_embeddings(clf, square_images(200, True, 30))
    inliers_b = classifier_embeddings(clf, square_images(200, True, 31))
    outliers = classifier_embeddings(clf, square_images(200, False, 32))
    same = frechet_distance(inliers_a, inliers_b)
    different = frechet_distance(inliers_a, outliers)
    assert 0 <= same < 0.1 * different


def test_missing_weights_give_no_fid_and_one_notice(split, cache_dir, no_inception_anywhere, network_forbidden, capsys):
    kwargs = dict(**split, reference_images=square_images(40, True, 40), cfg=CFG, seed=0, cache_dir=cache_dir)
    good = evaluate_samples(square_images(30, True, 41), **kwargs)
    bad = evaluate_samples(square_images(30, False, 42), **kwargs)

    assert tuple(good) == RESULT_KEYS
    assert good["fid"] is None and good["fid_kind"] == "none"
    assert math.isfinite(good["fd_classifier"]) and good["fd_classifier"] < bad["fd_classifier"]
    assert good["pct_inliers"] > 90 and bad["pct_inliers"] < 10
    assert all(isinstance(good[k], float) for k in ("kid", "kid_std", "precision", "recall"))
    assert all(0.0 <= r[k] <= 1.0 for r in (good, bad) for k in ("precision", "recall"))
    assert good["kid"] < bad["kid"]
    notice = [ln for ln in capsys.readouterr().err.splitlines() if "InceptionV3" in ln]
    assert len(notice) == 1 and "fd_classifier" in notice[0]
    assert not network_forbidden


def test_a_worker_does_not_repeat_the_drivers_notice(no_inception_anywhere, capsys, monkeypatch):
    features.missing_weights_notice()  # the driver prints it and marks the environment its workers inherit
    assert "InceptionV3" in capsys.readouterr().err
    repo = str(Path(__file__).resolve().parents[1])
    worker = subprocess.run(  # a worker process started now inherits this environment
        [sys.executable, "-c", "from bench.classifiers import features; features.missing_weights_notice()"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": repo}, timeout=120,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert "InceptionV3" not in worker.stderr
    features.missing_weights_notice()  # and the driver itself does not print it twice
    assert capsys.readouterr().err == ""


def test_reference_features_are_cached_by_content(split, cache_dir, no_inception_anywhere):
    reference = square_images(40, True, 50)
    kwargs = dict(**split, cfg=CFG, seed=0, cache_dir=cache_dir)
    evaluate_samples(square_images(20, True, 51), reference_images=reference, **kwargs)
    before = set((cache_dir / "features").glob("reference-classifier-*.pt"))
    evaluate_samples(square_images(20, True, 52), reference_images=reference.clone(), **kwargs)
    assert set((cache_dir / "features").glob("reference-classifier-*.pt")) == before
    evaluate_samples(square_images(20, True, 52), reference_images=square_images(40, True, 53), **kwargs)
    assert len(set((cache_dir / "features").glob("reference-classifier-*.pt")) - before) == 1


def test_local_inception_weights_are_used_offline(
    split, cache_dir, random_inception_weights, network_forbidden, monkeypatch, tmp_path
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.setattr(features, "_inception_cache", {})
    loaded = []
    real_load = torch.load

    def spying_load(f, *args, **kwargs):
        loaded.append(str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spying_load)
    cfg = EvalConfig(**{**CFG.__dict__, "inception_weights": str(random_inception_weights)})
    result = evaluate_samples(
        square_images(8, True, 60),
        **split,
        reference_images=square_images(8, True, 61),
        cfg=cfg,
        seed=0,
        cache_dir=cache_dir,
    )
    assert str(random_inception_weights.resolve()) in loaded
    assert result["fid_kind"] == "inception"
    assert isinstance(result["fid"], float) and math.isfinite(result["fid"])
    assert math.isfinite(result["fd_classifier"])
    assert not network_forbidden
    assert list((cache_dir / "features").glob("reference-inception-*.pt"))


def test_hub_cache_file_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cfg = EvalConfig()
    assert features.resolve_inception_weights(cfg) is None
    target = tmp_path / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"placeholder")
    assert features.resolve_inception_weights(cfg) == target


def test_configured_but_missing_weights_is_a_bench_error(tmp_path):
    cfg = EvalConfig(inception_weights=str(tmp_path / "nope.pth"))
    with pytest.raises(BenchError, match="nope.pth"):
        features.resolve_inception_weights(cfg)


def _assert_one_line_bench_error(path, monkeypatch):
    monkeypatch.setattr(features, "_inception_cache", {})
    with pytest.raises(BenchError) as err:
        features.inception_space(EvalConfig(inception_weights=str(path)))
    message = str(err.value)
    assert "\n" not in message and str(path.resolve()) in message
    assert "weights-inception-2015-12-05-6726825d.pth" in message  # says how to fix it
    return message


def test_garbage_weights_file_is_a_bench_error(tmp_path, monkeypatch, network_forbidden):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"\x00\x01 definitely not a checkpoint" * 10)
    assert "not a readable PyTorch state dict" in _assert_one_line_bench_error(path, monkeypatch)


def test_weights_of_another_network_are_a_bench_error(tmp_path, monkeypatch, network_forbidden):
    path = tmp_path / "other-net.pth"
    torch.save(InlierCNN(16).state_dict(), path)
    assert "does not fit" in _assert_one_line_bench_error(path, monkeypatch)
