"""Plain GAN (NR-GAN code): interface contract at 16/32/64 px, schedule details, R1 in the loss."""

from __future__ import annotations

import pytest
import torch

from bench.models import registry
from bench.models.base import FitConfig
from tests.models.test_gan_common import (
    build,
    contract_shapes,
    contract_training_step,
    flat_params,
    tiny_data,
)

NAME = "gan"
TINY = {"channels": 8, "d_batch_size": 4, "g_batch_size": 8}


def test_registered_for_every_profile_with_official_defaults():
    spec = registry.get(NAME)
    assert set(spec.profile_defaults) == {"smoke", "demo", "cpu", "paper"}
    cfg = spec.make_config("paper")
    assert (cfg.lr, cfg.beta1, cfg.beta2, cfg.lambda_r1, cfg.ema_beta) == (2e-4, 0.0, 0.99, 10.0, 0.999)
    assert (cfg.d_batch_size, cfg.g_batch_size, cfg.iterations, cfg.channels) == (64, 128, 200_000, 128)


def test_shapes_and_ranges_at_16_32_64():
    contract_shapes(NAME, TINY)


def test_one_step_changes_parameters_and_keeps_losses_finite():
    history = contract_training_step(NAME, TINY, ("g", "d", "g_ema"))
    assert {"loss_d", "loss_g", "loss_r1"} <= set(history)


def test_iteration_zero_updates_discriminator_only():
    model = build(NAME, {**TINY, "iterations": 1})
    g0, d0 = flat_params(model, "g"), flat_params(model, "d")
    model.fit(*tiny_data(), FitConfig())
    assert torch.equal(g0, flat_params(model, "g"))
    assert not torch.equal(d0, flat_params(model, "d"))


def test_sampling_uses_the_ema_generator():
    model = build(NAME, {**TINY, "iterations": 3})
    model.fit(*tiny_data(), FitConfig())
    before = model.sample(4, seed=0)
    with torch.no_grad():
        for p in model.nets["g"].parameters():
            p.add_(1.0)
    assert torch.equal(before, model.sample(4, seed=0))
    with torch.no_grad():
        for p in model.nets["g_ema"].parameters():
            p.mul_(0.5)
    assert not torch.equal(before, model.sample(4, seed=0))


def test_r1_weight_enters_the_discriminator_loss():
    images, is_outlier = tiny_data()
    a, b = build(NAME, {**TINY, "iterations": 1}), build(NAME, {**TINY, "iterations": 1, "lambda_r1": 0.0})
    a.fit(images, is_outlier, FitConfig())
    b.fit(images, is_outlier, FitConfig())
    assert not torch.equal(flat_params(a, "d"), flat_params(b, "d"))


def test_lazy_r1_only_on_every_kth_step_with_k_times_the_weight():
    """r1_every = k: R1 enters D steps 0, k, 2k, ... weighted k * lambda_r1; on the other steps real and fake share one
    D pass, which equals two passes (float64)."""
    from bench.models import gan_common as gc

    images = tiny_data()[0]
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        runs = {}
        for k in (1, 3):
            model = build(NAME, {**TINY, "r1_every": k})
            model.nets.double().train()
            model.optimizers = model.build_optimizers()
            rng = torch.Generator().manual_seed(0)
            data = gc.RealBatches(images, rng)
            data.next = lambda n, _next=data.next: _next(n).double()
            runs[k] = [model.train_step(it, data, rng) for it in range(4)]
    finally:
        torch.set_default_dtype(default)
    assert all("r1" in losses for losses in runs[1])
    assert ["r1" in losses for losses in runs[3]] == [True, False, False, True]
    # Same data and draws: step 0 (R1 on both) gives the same D loss; later steps differ only through the weights.
    assert runs[1][0]["d"] == pytest.approx(runs[3][0]["d"], rel=1e-12)


def test_shared_real_fake_pass_equals_separate_passes():
    from bench.models import gan_common as gc

    torch.manual_seed(0)
    d = gc.ResNetDiscriminator(16, channels=8, residual_factor=1.0).double()
    real, fake = torch.randn(4, 3, 16, 16, dtype=torch.float64), torch.randn(4, 3, 16, 16, dtype=torch.float64)
    both = d(torch.cat([real, fake]))
    torch.testing.assert_close(both[:4], d(real), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(both[4:], d(fake), rtol=1e-12, atol=1e-12)
