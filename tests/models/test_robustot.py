"""Robust OT GAN: weight normalisation, chi-square budget, schedule, flag report, plus the interface contract."""

from __future__ import annotations

import pytest
import torch

from bench.models import gan_common as gc
from bench.models import registry
from bench.models.base import FitConfig
from bench.models.robustot import (
    DCGANCritic,
    DCGANGenerator,
    WeightNet,
    chi_square,
    normalised_weights,
    weight_loss,
)
from tests.models.test_gan_common import (
    build,
    contract_shapes,
    contract_training_step,
    flat_params,
    tiny_data,
)

NAME = "robustot"
TINY = {
    "g_channels": 4,
    "d_channels": 4,
    "w_channels": 4,
    "batch_size": 8,
    "weight_warmup": 0,
    "weight_update_every": 1,
    "n_critic": 2,
}


def test_registered_with_official_wgan_settings():
    cfg = registry.get(NAME).make_config("paper")
    assert (cfg.batch_size, cfg.lr, cfg.beta1, cfg.beta2, cfg.n_critic, cfg.lambda_gp) == (128, 1e-4, 0.5, 0.9, 5, 10.0)
    assert (cfg.budget_penalty, cfg.weight_update_every, cfg.weight_warmup) == (100.0, 5, 300)


def test_official_parameter_counts_at_32px():
    counts = [sum(p.numel() for p in net.parameters()) for net in (DCGANGenerator(32), DCGANCritic(32), WeightNet(32))]
    assert counts == [3_804_736, 2_762_432, 374_913]


def test_shapes_and_ranges_at_16_32_64():
    contract_shapes(NAME, TINY)
    for size in (16, 32, 64):
        assert WeightNet(size, 4)(torch.zeros(2, 3, size, size)).shape == (2,)


def test_one_step_changes_parameters_and_keeps_losses_finite():
    history = contract_training_step(NAME, TINY, ("g", "d", "w"))
    assert {"loss_d", "loss_g", "loss_gp", "loss_w", "loss_chi2"} <= set(history)


def test_weights_are_non_negative_with_mean_one():
    for scores in (torch.rand(7) * 5, torch.zeros(5), torch.tensor([0.0, 0.0, 3.0])):
        w = normalised_weights(scores)
        assert (w >= 0).all()
        assert w.mean().item() == pytest.approx(1.0)
    assert chi_square(torch.tensor([0.0, 2.0])).item() == pytest.approx(0.5)


def _weight_updates(rho: float, steps: int = 150):
    """W trained against a fixed critic that scores 16 bright 'outliers' high; returns final weights."""
    with gc.seeded(0):
        net = WeightNet(16, 8)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 16, 16, generator=g) * 0.5 - 0.5
    x[:16] += 1.0
    critic = x.flatten(1).mean(1) * 10
    opt = torch.optim.Adam(net.parameters(), 1e-3, betas=(0.5, 0.9))
    for _ in range(steps):
        opt.zero_grad()
        weight_loss(normalised_weights(net(x)), critic, rho, 100.0).backward()
        opt.step()
    with torch.no_grad():
        return normalised_weights(net(x))


@pytest.mark.parametrize("rho", [0.05, 0.2])
def test_weight_updates_respect_normalisation_and_budget_and_downweight_high_critic_samples(rho):
    w = _weight_updates(rho)
    assert (w >= 0).all() and w.mean().item() == pytest.approx(1.0, abs=1e-5)
    assert chi_square(w).item() <= rho * 1.1  # soft hinge: at most a small overshoot
    assert chi_square(w).item() > 0.5 * min(rho, 1 / 6)  # the budget is actually used
    assert w[:16].max() < w[16:].min()  # outliers (high critic score) get the lowest weights


def test_weight_net_starts_alive_for_every_seed():
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    for seed in range(10):
        with gc.seeded(seed):
            assert (WeightNet(16, 4)(x) > 0).any()


def test_weight_net_frozen_during_warm_up_and_generator_every_n_critic():
    model = build(NAME, {**TINY, "weight_warmup": 3, "weight_update_every": 2, "n_critic": 5, "iterations": 4})
    w0, g0 = flat_params(model, "w"), flat_params(model, "g")
    history = model.fit(*tiny_data(), FitConfig())
    assert torch.equal(w0, flat_params(model, "w"))  # updates need iteration > 3 and even: none in 0..3
    assert not torch.equal(g0, flat_params(model, "g"))  # iteration 0 is a generator step
    assert sum(v is not None for v in history.history["loss_g"]) == 1


def test_weight_scores_are_the_label_free_set_aside_report():
    from bench.cell import set_aside_report

    model = build(NAME, {**TINY, "iterations": 2})
    images, is_outlier = tiny_data()
    result = model.fit(images, is_outlier, FitConfig())
    assert result.set_aside is None and result.outlier_scores is not None and len(result.outlier_scores) == len(images)
    report = set_aside_report(result, is_outlier)
    for key in ("flag_precision", "flag_recall", "flag_auc"):
        assert 0.0 <= report[key] <= 1.0
    # as many flagged as there are true outliers (R-precision): precision equals recall
    assert report["flag_precision"] == pytest.approx(report["flag_recall"])
    clean = set_aside_report(result, torch.zeros_like(is_outlier))
    assert clean["flag_precision"] is None and clean["flag_recall"] is None
    assert "flag_precision" not in result.history  # the model itself never reads the labels


def test_lazy_gradient_penalty_only_on_every_kth_step():
    from bench.models import gan_common as gc

    model = build(NAME, {**TINY, "gp_every": 3, "iterations": 4})
    model.prepare_nets("cpu")
    model.optimizers = model.build_optimizers()
    rng = torch.Generator().manual_seed(0)
    data = gc.RealBatches(tiny_data()[0], rng, clamp=False)
    assert ["gp" in model.train_step(it, data, rng) for it in range(4)] == [True, False, False, True]
