"""The learned detectors (bench.detectors_learned): registered, label-free, deterministic, better than chance on a toy
set, one-line errors for bad parameters. Tiny synthetic images, a few seconds in all."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench import detectors, filtering
from bench.detectors import roc_auc
from bench.detectors_learned import knn_cosine_scores, nt_xent, rank_normalise
from bench.errors import BenchError

LEARNED = ("ssl-mcd", "trimmed-ae", "ensemble")

# Small settings for 140 images of 16 px (the defaults are sized for 4,300 images of 32 px).
TOY_PARAMS = {
    "ssl-mcd": {"epochs": 40, "batch_size": 64, "width": 16},
    "trimmed-ae": {"epochs": 20, "batch_size": 32, "rounds": 2, "latent": 16, "width": 16},
    "ensemble": {"members": "mean,mcd"},
}


def _toy(n_in: int = 120, n_out: int = 20, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth images (a random colour plus a random linear ramp and a little noise); the last ``n_out`` carry a
    white 6 x 6 square at a random place (every other one) or a stripe texture (random period, phase, direction)."""
    g = torch.Generator().manual_seed(seed)
    n = n_in + n_out
    colour = 60 + 130 * torch.rand(n, 3, 1, 1, generator=g)
    angle = 2 * torch.pi * torch.rand(n, 1, 1, 1, generator=g)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    ramp = torch.cos(angle) * xx + torch.sin(angle) * yy
    x = (
        colour
        + 30 * ramp * (0.5 + torch.rand(n, 3, 1, 1, generator=g))
        + 3 * torch.randn(n, 3, size, size, generator=g)
    )
    for i in range(n_in, n):
        if (i - n_in) % 2 == 0:
            r, c = torch.randint(0, size - 6, (2,), generator=g).tolist()
            x[i, :, r : r + 6, c : c + 6] = 250
        else:
            period, phase = int(torch.randint(2, 5, (1,), generator=g)), int(torch.randint(0, 8, (1,), generator=g))
            wave = 70 * (((torch.arange(size) + phase) // period) % 2 * 2 - 1).float()
            x[i] += wave.view(1, size, 1) if torch.rand(1, generator=g) < 0.5 else wave.view(1, 1, size)
    labels = torch.zeros(n, dtype=torch.bool)
    labels[n_in:] = True
    return x.clamp(0, 255).round().to(torch.uint8), labels


@pytest.fixture(scope="module")
def toy():
    return _toy()


def _score(name: str, images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    torch.set_num_threads(1)
    return detectors.score(name, images, detectors.make_params(name, TOY_PARAMS[name]), seed)


@pytest.fixture(scope="module")
def toy_scores(toy):
    images, _ = toy
    return {name: _score(name, images) for name in LEARNED}


def test_registered_listed_and_not_in_the_cheap_table():
    names = detectors.names()
    for name in LEARNED:
        assert name in names
        spec = detectors.get(name)
        assert spec.description and dataclasses.is_dataclass(spec.params_cls) and not spec.cheap
        assert detectors.origin_of(name) == "built-in"


@pytest.mark.parametrize("name", LEARNED)
def test_finite_scores_better_than_chance_and_deterministic(name, toy, toy_scores):
    images, labels = toy
    scores = toy_scores[name]
    assert scores.dtype == torch.float64 and scores.shape == (len(images),) and torch.isfinite(scores).all()
    assert roc_auc(scores, labels) > 0.8, (name, roc_auc(scores, labels))
    state = torch.random.get_rng_state()
    assert torch.equal(scores, _score(name, images)), name  # the same seed: the same scores
    assert torch.equal(state, torch.random.get_rng_state()), f"{name} drew from the global RNG"


@pytest.mark.parametrize("name", ["ssl-mcd", "trimmed-ae"])
def test_another_seed_trains_another_model(name, toy, toy_scores):
    assert not torch.equal(toy_scores[name], _score(name, toy[0], seed=1))


def test_defaults_run_on_a_tiny_set(toy):
    images = toy[0][::4]  # 35 images: the default settings (and the default ensemble) still return finite scores
    scores = detectors.score("ensemble", images, None, seed=0)
    assert scores.shape == (len(images),) and torch.isfinite(scores).all()
    assert float(scores.min()) > 0 and float(scores.max()) <= 1


def test_ensemble_is_the_mean_of_the_members_ranks(toy, toy_scores):
    images, _ = toy
    want = (rank_normalise(detectors.score("mean", images)) + rank_normalise(detectors.score("mcd", images))) / 2
    assert torch.allclose(toy_scores["ensemble"], want)
    assert rank_normalise(torch.tensor([3.0, 1.0, 2.0, 2.0])).tolist() == [1.0, 0.25, 0.625, 0.625]


def test_knn_and_nt_xent_helpers():
    emb = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.98, -0.1], [0.0, 1.0]])
    scores = knn_cosine_scores(emb, 2)
    assert int(scores.argmax()) == 3 and scores.shape == (4,)
    z = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    assert float(nt_xent(z, z, 0.5)) < float(nt_xent(z, z.roll(1, 0), 0.5))  # matching views: the lower loss


def test_ssl_knn_score_knn_mode(toy):
    images, _ = toy
    params = detectors.make_params("ssl-mcd", {**TOY_PARAMS["ssl-mcd"], "epochs": 2, "score": "knn", "k": 5})
    scores = detectors.score("ssl-mcd", images, params, 0)
    assert scores.shape == (len(images),) and torch.isfinite(scores).all() and float(scores.min()) >= 0


@pytest.mark.parametrize(
    "name, overrides, match",
    [
        ("ssl-mcd", {"k": 0}, "k must be positive"),
        ("ssl-mcd", {"epochs": -1}, "epochs must be positive"),
        ("ssl-mcd", {"min_crop": 1.5}, "min_crop must be in"),
        ("ssl-mcd", {"score": "lof"}, "score must be one of"),
        ("ssl-mcd", {"batch_size": 1}, "batch_size must be at least 2"),
        ("trimmed-ae", {"trim": 1.0}, "trim must be in"),
        ("trimmed-ae", {"rounds": -1}, "rounds must be >= 0"),
        ("trimmed-ae", {"width": 0}, "width must be positive"),
        ("trimmed-ae", {"epochs": 2.5}, "is not an integer"),
        ("ensemble", {"members": "mcd,nope"}, "members must be registered detectors"),
        ("ensemble", {"members": "mcd,ensemble"}, "must not include ensemble"),
        ("ensemble", {"members": "mcd,mcd"}, "must not repeat"),
        ("ensemble", {"members": " , "}, "at least one detector"),
        ("ensemble", {"k": 3}, "unknown setting"),
    ],
)
def test_bad_params_are_one_line_errors(name, overrides, match):
    with pytest.raises(BenchError, match=match) as info:
        detectors.make_params(name, overrides)
    assert "\n" not in str(info.value)


def test_filter_specs_parse():
    spec = filtering.parse("ssl-mcd:0.3")
    assert spec.detector == "ssl-mcd" and spec.fraction == 0.3 and spec.params["components"] == 8
    spec = filtering.parse("trimmed-ae:0.2:trim=0.25,rounds=1")
    assert spec.params["trim"] == 0.25 and spec.params["rounds"] == 1
    spec = filtering.parse("ensemble:0.3:members=mean+mcd")
    assert detectors.make_params("ensemble", spec.params).member_names == ["mean", "mcd"]
    with pytest.raises(BenchError, match="members must be registered"):
        filtering.parse("ensemble:0.3:members=mean+nope")
