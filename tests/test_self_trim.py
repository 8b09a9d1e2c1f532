"""``--filter self-trim``: trimmed likelihood with the model's own score (parse, the rounds, the grid's checks, one
cell end to end with a scoring plug-in), and the VQ models' score (the PixelCNN prior's NLL of a code grid)."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

from bench import api, filtering, grid
from bench.errors import BenchError
from bench.models.pixelcnn import GatedPixelCNN, PixelCNNConfig
from tests.grid_helpers import FAST, forget_plugin
from tests.test_filtering import mixed_split

# ------------------------------------------------------------------------------------------------------ parse


def test_parse_self_trim():
    spec = filtering.parse("self-trim:0.3")
    assert spec.self_trim and not spec.capacity_control
    assert (spec.fraction, spec.params, spec.label) == (0.3, {"rounds": 1}, "self-trim:0.3")
    auto = filtering.parse("self-trim:auto:rounds=2")
    assert auto.fraction is None and auto.params == {"rounds": 2} and auto.label == "self-trim:auto:rounds=2"
    assert filtering.FilterSpec.from_dict(auto.to_dict()) == auto
    assert not filtering.parse("mcd:0.3").self_trim


@pytest.mark.parametrize(
    "text, says",
    [("self-trim:0.3:rounds=0", "rounds"), ("self-trim:0.3:round=2", "unknown setting self-trim.round"),
     ("self-trim:1.2", "(0, 1)"), ("self-trim", "DETECTOR:FRACTION")],
)  # fmt: skip
def test_parse_bad_self_trim_is_a_one_line_error(text, says):
    with pytest.raises(BenchError) as e:
        filtering.parse(text)
    assert says in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------------ rounds


class MeanScorer:
    """A fake ``fit_and_score``: the model is the mean image of what it was fitted on; the score, the distance to it.
    Records what each round was given."""

    def __init__(self, split):
        self.split, self.calls = split, []

    def __call__(self, images, is_outlier, round_):
        self.calls.append((len(images), is_outlier.clone(), round_))
        mean = images.double().mean(0, keepdim=True)
        return (self.split.train_images.double() - mean).flatten(1).norm(dim=1)


@pytest.mark.parametrize("rounds", [1, 3])
def test_rounds_fit_on_the_last_kept_set_and_drop_the_least_likely(rounds):
    split = mixed_split(20, 5)
    fake = MeanScorer(split)
    kept = filtering.trimmed_training_set(split, filtering.parse(f"self-trim:0.2:rounds={rounds}"), 0, fake)
    assert [c[2] for c in fake.calls] == list(range(rounds))
    assert fake.calls[0][0] == 25 and all(c[0] == 20 for c in fake.calls[1:])  # all, then the kept 80 %
    assert all(not c[1].any() for c in fake.calls[1:])  # the bright outliers are gone after round one
    assert len(kept.images) == 20 and not kept.is_outlier.any()
    assert kept.report["filter_recall"] == 1.0 and kept.report["filter_precision"] == 1.0
    assert kept.report["rounds_recall"] == [1.0] * rounds and kept.report["filter"] == f"self-trim:0.2:rounds={rounds}"


def test_rounds_are_cached_per_kept_set(tmp_path):
    """A cached round is not fitted again: a second call fits nothing, and another fraction shares the first fit
    (fitted on everything) but not the second (fitted on another kept set)."""
    split = mixed_split(20, 5)
    first = MeanScorer(split)
    a = filtering.trimmed_training_set(split, filtering.parse("self-trim:0.2:rounds=2"), 0, first, cache_dir=tmp_path,
                                       model_key="m")  # fmt: skip
    again = MeanScorer(split)
    b = filtering.trimmed_training_set(split, filtering.parse("self-trim:0.2:rounds=2"), 0, again, cache_dir=tmp_path,
                                       model_key="m")  # fmt: skip
    assert len(first.calls) == 2 and again.calls == [] and torch.equal(a.images, b.images)
    assert b.report["filter_fit_s"] == a.report["filter_fit_s"]  # cached rounds count at what they first cost
    other = MeanScorer(split)
    filtering.trimmed_training_set(split, filtering.parse("self-trim:0.4:rounds=2"), 0, other, cache_dir=tmp_path,
                                   model_key="m")  # fmt: skip
    assert [c[2] for c in other.calls] == [1]  # round 0 read from the cache, round 1 kept 15 images, not 20
    fresh = MeanScorer(split)
    filtering.trimmed_training_set(split, filtering.parse("self-trim:0.2"), 0, fresh, cache_dir=tmp_path,
                                   model_key="another model")  # fmt: skip
    assert len(fresh.calls) == 1


def test_the_rounds_never_see_the_labels():
    """Labels permuted: the same images are kept (they reach fit for its reports only)."""
    split = mixed_split(20, 5)
    shuffled = mixed_split(20, 5)
    shuffled.train_is_outlier = split.train_is_outlier[torch.randperm(25, generator=torch.Generator().manual_seed(1))]
    spec = filtering.parse("self-trim:0.2:rounds=2")
    a = filtering.trimmed_training_set(split, spec, 0, MeanScorer(split))
    b = filtering.trimmed_training_set(shuffled, spec, 0, MeanScorer(shuffled))
    assert torch.equal(a.images, b.images)


def test_a_score_of_the_wrong_size_is_refused():
    split = mixed_split(20, 5)
    with pytest.raises(BenchError, match="need 25 finite"):
        filtering.trimmed_training_set(split, filtering.parse("self-trim:0.2"), 0, lambda x, y, k: torch.zeros(3))


def test_a_model_without_a_score_is_refused():
    with pytest.raises(BenchError, match="returned None"):
        filtering.trimmed_training_set(mixed_split(), filtering.parse("self-trim:0.2"), 0, lambda x, y, k: None)


def test_training_set_refuses_self_trim(tmp_path):
    with pytest.raises(BenchError, match="needs the model"):
        filtering.training_set(mixed_split(), filtering.parse("self-trim:0.2"), 0, tmp_path)


# ------------------------------------------------------------------------------------------------------ the VQ score


def test_pixelcnn_nll_per_grid_is_the_sum_of_the_position_nlls():
    grid_side = 4
    model = GatedPixelCNN(PixelCNNConfig(num_codes=9, dim=8, layers=3, head_hidden=16)).double()
    idx = torch.randint(0, 9, (3, grid_side, grid_side), generator=torch.Generator().manual_seed(1))
    logp = model(idx).log_softmax(dim=1)
    by_hand = -logp.gather(1, idx.unsqueeze(1)).flatten(1).sum(1)
    assert torch.allclose(model.nll_per_grid(idx), by_hand, rtol=1e-10)
    assert torch.allclose(model.nll_per_grid(idx).mean() / grid_side**2, model.loss(idx), rtol=1e-10)


def test_a_vq_model_scores_the_codes_it_never_saw_as_less_likely():
    """VQ-VAE's ``training_scores`` after a smoke fit on dark images: bright images (codes its prior never saw) score
    higher than the dark ones it was fitted on."""
    from bench.models import registry
    from bench.models.base import FitConfig

    spec = registry.get("vqvae")
    model = spec.build("smoke", 16, {"prior_epochs": 30})
    g = torch.Generator().manual_seed(0)
    dark = torch.randint(0, 40, (64, 3, 16, 16), generator=g, dtype=torch.uint8)
    bright = torch.randint(215, 256, (16, 3, 16, 16), generator=g, dtype=torch.uint8)
    model.fit(dark, torch.zeros(64, dtype=torch.bool), FitConfig(seed=0))
    scores = model.training_scores(torch.cat([dark, bright]))
    assert scores.shape == (80,) and torch.isfinite(scores).all()
    assert scores[64:].min() > scores[:64].median()
    assert registry.get("vqvae").cls.scores_training_images() and not registry.get("gan").cls.scores_training_images()


# ------------------------------------------------------------------------------------------------------ the grid

SCORING_PLUGIN = '''
from dataclasses import dataclass

import torch

from bench.plugin import FitResult, GenerativeModel, register_model


@dataclass
class Cfg:
    noise: float = 10.0


@register_model("test_scoring_mean", config=Cfg, profiles={"paper": {}, "cpu": "paper", "demo": "paper",
                                                           "smoke": "paper"})
class ScoringMean(GenerativeModel):
    """The training mean plus noise, with a score: the distance to that mean."""

    def fit(self, train_images, train_is_outlier, cfg, progress=None):
        self.mean = train_images.float().mean(0)
        return FitResult(images_seen=len(train_images))

    def sample(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        x = self.mean + self.cfg.noise * torch.randn((n, *self.mean.shape), generator=g)
        return x.round().clamp(0, 255).to(torch.uint8)

    def state_dict(self):
        return {"mean": self.mean}

    def load_state_dict(self, state):
        self.mean = state["mean"]

    def training_scores(self, images):
        return (images.double() - self.mean.double()).flatten(1).norm(dim=1)
'''


def test_a_grid_refuses_self_trim_for_a_model_without_a_score(tmp_path):
    with pytest.raises(BenchError, match="'gan' has none"):
        api.plan(["gan"], ["facemask"], [30], [0], profile="smoke", out=tmp_path, filters=["self-trim:0.3"])


def test_self_trim_cells_end_to_end_from_a_plugin_in_two_workers(tmp_path):
    plugin = tmp_path / "scoring_mean.py"
    plugin.write_text(textwrap.dedent(SCORING_PLUGIN))
    try:
        spec, planned = api.plan(["test_scoring_mean"], ["facemask"], [20, 30], [0], profile="smoke",
                                 out=tmp_path / "out", filters=["self-trim:0.3:rounds=2"], plugins=[str(plugin)],
                                 overrides=FAST, jobs=2)  # fmt: skip
        records = grid.run(spec, planned)
        assert len(records) == 2
        for record, cell in zip(records, planned):
            row = record.to_row()
            assert row["variant"].endswith("filter=self-trim:0.3:rounds=2")
            assert row["filter_fraction"] == 0.3 and row["n_train_kept"] < row["n_inliers"] + row["n_outliers"]
            metrics = json.loads((cell.job.folder / "metrics.json").read_text())
            assert len(metrics["filter"]["rounds_recall"]) == 2 and metrics["filter"]["filter_fit_s"] >= 0
    finally:
        forget_plugin(str(plugin), "test_scoring_mean")
