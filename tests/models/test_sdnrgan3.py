"""SD-NR-GAN-III: noise generator wiring (latent sharing, color inversion, DS regulariser), clean-only sampling."""

from __future__ import annotations

import pytest
import torch

from bench.models import gan_common as gc
from bench.models import registry
from bench.models.base import FitConfig
from bench.models.sdnrgan3 import color_inversion, diversity_ratio
from tests.models.test_gan_common import (
    build,
    contract_shapes,
    contract_training_step,
    tiny_data,
)

NAME = "sdnrgan3"
TINY = {"channels": 8, "d_batch_size": 4, "g_batch_size": 8}


def test_registered_with_official_noise_settings():
    cfg = registry.get(NAME).make_config("paper")
    assert (cfg.latent_dim, cfg.noise_latent_dim, cfg.lambda_ds, cfg.lr, cfg.beta2) == (128, 256, 0.02, 2e-4, 0.99)


def test_noise_generator_is_a_full_generator_with_official_size():
    with gc.seeded(0):
        gn = gc.ResNetGenerator(32, latent_dim=256)
    assert sum(p.numel() for p in gn.parameters()) == 1_464_835


def test_shapes_and_ranges_at_16_32_64():
    contract_shapes(NAME, TINY)


def test_one_step_changes_all_generators_and_keeps_losses_finite():
    history = contract_training_step(NAME, TINY, ("g", "gn", "d", "g_ema", "gn_ema"))
    assert "loss_g_extra" in history  # the diversity-sensitive term


def test_samples_come_from_the_clean_generator_only():
    model = build(NAME, {**TINY, "iterations": 2})
    model.fit(*tiny_data(), FitConfig())
    before = model.sample(6, seed=1)
    with torch.no_grad():
        for key in ("gn", "gn_ema"):
            for p in model.nets[key].parameters():
                p.normal_()
    assert torch.equal(before, model.sample(6, seed=1))


def test_noise_generator_shares_the_image_latent_and_discriminator_sees_clamped_composite():
    model = build(NAME, TINY)
    seen = {}
    model.nets["g"].register_forward_hook(lambda m, i, o: seen.update(z=i[0], clean=o))
    model.nets["gn"].register_forward_hook(lambda m, i, o: seen.update(zn=i[0], noise=o))
    noisy, extra = model.fakes(10, torch.Generator().manual_seed(0), generator_step=True)
    assert seen["zn"].shape == (10, 256)
    assert torch.equal(seen["zn"][:, :128], seen["z"])
    assert not torch.equal(seen["zn"][:, 128:], seen["z"])
    # each (sample, channel) of the composite is clamp(clean +- noise)
    plus = (seen["clean"] + seen["noise"]).clamp(-1, 1)
    minus = (seen["clean"] - seen["noise"]).clamp(-1, 1)
    match_plus = torch.isclose(noisy, plus).flatten(2).all(2)
    match_minus = torch.isclose(noisy, minus).flatten(2).all(2)
    assert (match_plus | match_minus).all()
    assert noisy.min() >= -1 and noisy.max() <= 1
    assert extra is not None and extra.item() < 0
    _, no_extra = model.fakes(4, torch.Generator().manual_seed(0), generator_step=False)
    assert no_extra is None


def test_color_inversion_flips_each_sample_channel_independently():
    noise = torch.rand(400, 3, 2, 2) + 0.5  # strictly positive, so the sign shows the flip
    out = color_inversion(noise, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.abs(), noise)
    signs = out[:, :, 0, 0].sign()
    assert (out.sign() == signs[:, :, None, None]).all()  # one sign per (sample, channel)
    frac = (signs < 0).float().mean().item()
    assert 0.4 < frac < 0.6
    assert ((signs[:, 0] != signs[:, 1]).float().mean()) > 0.3  # channels not flipped together


def test_diversity_ratio_hand_case():
    noise = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.0], [1.0, 3.0]])  # pairs (0,2), (1,3)
    latent = torch.tensor([[0.0], [0.0], [2.0], [1.0]])
    # pair 1: mean|n| = 0.25, mean|z| = 2 -> 0.125; pair 2: (0 + 2)/2 = 1, |z| = 1 -> 1
    assert diversity_ratio(noise, latent).item() == pytest.approx((0.125 + 1.0) / 2)
