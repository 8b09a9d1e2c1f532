"""The paper's inlier classifier: architecture sizes, learning an easy task, the training cache, F1 helpers."""

from __future__ import annotations

import pytest
import torch

from bench.classifiers import inlier_cnn
from bench.classifiers.inlier_cnn import (
    InlierCNN,
    classifier_embeddings,
    flatten_size,
    load_or_train_classifier,
    predict_outlier_prob,
    train_classifier,
)
from bench.classifiers.outlier_scores import f1_and_accuracy, mixture_sizes, pct_inliers
from bench.config import EvalConfig
from bench.errors import BenchError

SIZE = 16
EASY_CFG = EvalConfig(classifier_epochs=5, classifier_batch=16)


def square_images(n: int, with_square: bool, seed: int, size: int = SIZE) -> torch.Tensor:
    """Dark noise; inliers also carry one bright square (side 3/8 of the image) at a random place."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 80, (n, 3, size, size), generator=g, dtype=torch.uint8)
    if with_square:
        side = size * 3 // 8
        for i in range(n):
            r, c = torch.randint(0, size - side + 1, (2,), generator=g).tolist()
            x[i, :, r : r + side, c : c + side] = 255
    return x


def balanced_split(n_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.cat([square_images(n_per_class, True, seed), square_images(n_per_class, False, seed + 1)])
    is_outlier = torch.cat([torch.zeros(n_per_class, dtype=torch.bool), torch.ones(n_per_class, dtype=torch.bool)])
    return images, is_outlier


@pytest.fixture(scope="module")
def easy_classifier():
    images, is_outlier = balanced_split(160, seed=10)
    return train_classifier(images, is_outlier, EASY_CFG, seed=0)


@pytest.mark.parametrize("size, flat", [(16, 64), (32, 576), (64, 3136)])
def test_output_shapes_and_flatten_size(size, flat):
    net = InlierCNN(size).eval()
    assert flatten_size(size) == flat
    assert net.fc1.in_features == flat
    x = torch.rand(5, 3, size, size)
    assert net(x).shape == (5, 2)
    assert net.embed(x).shape == (5, 128)
    prob = predict_outlier_prob(net, torch.randint(0, 256, (5, 3, size, size), dtype=torch.uint8))
    assert prob.shape == (5,) and prob.dtype == torch.float32
    assert ((prob >= 0) & (prob <= 1)).all()


def test_paper_flatten_size_at_64px():
    assert flatten_size(64) == 3136 == 64 * 7 * 7


def test_learns_easy_task(easy_classifier):
    held_out_inliers = square_images(200, True, seed=20)
    held_out_outliers = square_images(200, False, seed=21)
    pct_in = pct_inliers(easy_classifier, held_out_inliers)
    pct_out = pct_inliers(easy_classifier, held_out_outliers)
    # % inliers of real inliers is the classifier's accuracy on that class.
    prob = predict_outlier_prob(easy_classifier, held_out_inliers)
    assert pct_in == pytest.approx(100.0 * float((prob <= 0.5).float().mean()))
    assert pct_in > 95.0
    assert pct_out < 5.0


def test_embeddings_are_128d(easy_classifier):
    emb = classifier_embeddings(easy_classifier, square_images(7, True, seed=3))
    assert emb.shape == (7, 128)


def test_wrong_image_size_is_a_bench_error(easy_classifier):
    with pytest.raises(BenchError, match="trained on"):
        predict_outlier_prob(easy_classifier, square_images(3, True, seed=3, size=32))


def test_needs_both_classes():
    images = square_images(8, True, seed=1)
    with pytest.raises(BenchError, match="needs both"):
        train_classifier(images, torch.zeros(8, dtype=torch.bool), EASY_CFG, seed=0)


def test_training_is_deterministic_per_seed():
    images, is_outlier = balanced_split(16, seed=5)
    cfg = EvalConfig(classifier_epochs=1, classifier_batch=8)
    a = train_classifier(images, is_outlier, cfg, seed=3)
    b = train_classifier(images, is_outlier, cfg, seed=3)
    for (name, ta), (_, tb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(ta, tb), name


def test_cache_trains_once_and_keys_on_content(tmp_path, monkeypatch):
    calls = []
    real_train = inlier_cnn.train_classifier

    def counting_train(*args, **kwargs):
        calls.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(inlier_cnn, "train_classifier", counting_train)
    images, is_outlier = balanced_split(16, seed=5)
    cfg = EvalConfig(classifier_epochs=1, classifier_batch=8)

    first = load_or_train_classifier(images, is_outlier, cfg, 0, tmp_path)
    files = list(tmp_path.glob("inlier_cnn-*.pt"))
    assert len(calls) == 1 and len(files) == 1
    mtime = files[0].stat().st_mtime_ns

    second = load_or_train_classifier(images.clone(), is_outlier.clone(), cfg, 0, tmp_path)
    assert len(calls) == 1, "second call must load the cached classifier, not retrain"
    assert files[0].stat().st_mtime_ns == mtime
    probe = square_images(6, True, seed=9)
    assert torch.equal(predict_outlier_prob(first, probe), predict_outlier_prob(second, probe))

    flipped = images.clone()
    flipped[0, 0, 0, 0] ^= 1  # one bit of content changes the key
    load_or_train_classifier(flipped, is_outlier, cfg, 0, tmp_path)
    load_or_train_classifier(images, is_outlier, cfg, 1, tmp_path)  # so does the seed
    assert len(calls) == 3
    assert len(list(tmp_path.glob("inlier_cnn-*.pt"))) == 3


def test_unreadable_cache_entry_is_retrained(tmp_path, capsys):
    images, is_outlier = balanced_split(8, seed=5)
    cfg = EvalConfig(classifier_epochs=1, classifier_batch=8)
    load_or_train_classifier(images, is_outlier, cfg, 0, tmp_path)
    (entry,) = tmp_path.glob("inlier_cnn-*.pt")
    entry.write_bytes(b"not a checkpoint")
    net = load_or_train_classifier(images, is_outlier, cfg, 0, tmp_path)
    assert isinstance(net, InlierCNN)
    assert "retraining" in capsys.readouterr().err
    torch.load(entry, weights_only=True)  # rewritten as a valid checkpoint


def test_f1_uses_inliers_as_positive_class():
    truth = torch.tensor([False] * 8 + [True] * 2)  # 8 inliers, 2 outliers
    perfect_on_inliers_only = torch.zeros(10, dtype=torch.bool)  # everything called inlier
    f1, acc = f1_and_accuracy(perfect_on_inliers_only, truth)
    assert f1 == pytest.approx(2 * 8 / (2 * 8 + 2))  # 2 outliers are false positives
    assert acc == pytest.approx(0.8)
    f1_clean, _ = f1_and_accuracy(torch.zeros(5, dtype=torch.bool), torch.zeros(5, dtype=torch.bool))
    assert f1_clean == 1.0  # 0 % test outliers, all inliers accepted: the paper's 1.000


def test_mixture_sizes():
    assert mixture_sizes(100, 50, 0) == (100, 0)
    assert mixture_sizes(100, 50, 20) == (100, 25)
    assert mixture_sizes(100, 10, 20) == (40, 10)  # too few outliers: inliers shrink
    n_in, n_out = mixture_sizes(500, 500, 30)
    assert n_out / (n_in + n_out) == pytest.approx(0.30, abs=0.002)
