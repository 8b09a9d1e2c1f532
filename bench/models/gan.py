"""Plain GAN baseline as in the NR-GAN code (Kaneko & Harada 2020, model ``gan``; spec baselines.md Parts A, B).

ResNet G and D without normalisation, non-saturating logistic loss, R1 = 10 * mean ||grad D(x_real)||^2 (no 1/2),
Adam 2e-4, betas (0, 0.99), D batch 64, G batch 128, n_critic 1 (iteration 0 is a D step only), samples from an
EMA (0.999) copy of G. Sizes: 32 px is the official layout; 64 px adds one up stage to G (4x4 start, 4 blocks)
and one down block to D; 16 px removes one of each (see ``gan_common.stages``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench import fields
from bench import precision as P
from bench.models import gan_common as gc
from bench.models.optim import adam
from bench.models.registry import register_model


@dataclass
class GANConfig:
    """Defaults are the official NR-GAN hyper-parameters (the ``paper`` profile)."""

    latent_dim: int = 128
    channels: int = 128
    residual_factor: float = 0.1
    iterations: int = 200_000
    d_batch_size: int = 64
    g_batch_size: int = 128  # official --g_bs_multiple 2
    lr: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.99
    lambda_r1: float = 10.0
    # Lazy R1 (StyleGAN2's lazy regularisation): the penalty enters every r1_every-th D step only, weighted
    # lambda_r1 * r1_every, so its average weight is unchanged. 1 = every step (official).
    r1_every: int = 1
    ema_beta: float = 0.999
    model_seed: int = 0
    sample_batch: int = 250

    def __post_init__(self) -> None:
        fields.require_positive(
            self,
            (
                "latent_dim",
                "channels",
                "residual_factor",
                "iterations",
                "d_batch_size",
                "g_batch_size",
                "lr",
                "sample_batch",
                "r1_every",
            ),
        )
        fields.require_non_negative(self, ("lambda_r1",))
        for name in ("beta1", "beta2", "ema_beta"):
            fields.require(0 <= getattr(self, name) < 1, f"{name} must be in [0, 1), got {getattr(self, name)}")


# Short runs: an EMA with beta 0.999 would still hold 0.999^iterations of the random init (33% after 1,100
# iterations), so the smoke/cpu profiles average over a shorter window. 128 channels and batches 64/128 cost
# ~6 s per iteration on one core, so cpu shrinks channels and batches 4x. With the official residual factor 0.1
# and no normalisation, G is at first almost linear (Linear -> nearest x2 -> 1x1 shortcut convs): after a few
# hundred iterations it draws 4x4-block mosaics. The cpu profile uses residual factor 1.0 (the usual ResNet-GAN
# block), which gave recognisable faces after ~1,000 iterations; see docs/baselines-notes.md for the measurements.
# Lazy R1 every 4th D step (weight x4): 1.24x (gan) / 1.17x (sdnrgan3) training iterations per second, and at 0 % and
# 30 % FaceMask % inliers, FD, KID, precision and recall within one seed's noise of every-step R1
# (docs/performance.md).
GAN_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"iterations": 30, "channels": 16, "d_batch_size": 16, "g_batch_size": 32, "ema_beta": 0.9},
    # demo (16 px, ~18 s CPU per cell): 400 iterations at 16 ch need lr 2e-3 (at 2e-4 G still drew colour noise) and
    # R1 weight 1 (smoother faces than 10 at the same cost); batches 16/16. See docs/demo-profile.md.
    "demo": {
        "iterations": 400,
        "channels": 16,
        "d_batch_size": 16,
        "g_batch_size": 16,
        "lr": 2e-3,
        "ema_beta": 0.99,
        "residual_factor": 1.0,
        "lambda_r1": 1.0,
    },
    # Issue 18 measured a cut to 1,000 iterations with R1 every 16th step (with sdnrgan3/robustot/VQ cuts: the grid
    # in 57 min instead of 68): recall -0.08 and precision +0.04 on average over the 7 ratios, outside one seed's
    # noise, so it was reverted (docs/performance.md, "The budget cut").
    "cpu": {
        "iterations": 1100,
        "channels": 32,
        "d_batch_size": 16,
        "g_batch_size": 32,
        "ema_beta": 0.995,
        "residual_factor": 1.0,
        "r1_every": 4,
    },
    "paper": {},
}


@register_model("gan", config=GANConfig, profiles=GAN_PROFILES, title="GAN", paper_name="GAN", paper_rank=3)
class GAN(gc.AdversarialModel):
    """Plain GAN (NR-GAN code): ResNet G/D, non-saturating loss + R1, EMA generator."""

    cfg: GANConfig

    def build_nets(self) -> dict[str, nn.Module]:
        c = self.cfg
        g = gc.ResNetGenerator(self.image_size, c.latent_dim, c.channels, c.residual_factor)
        d = gc.ResNetDiscriminator(self.image_size, c.channels, c.residual_factor)
        return {"g": g, "d": d, "g_ema": gc.ema_copy(g)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.cfg
        return {
            "g": adam(self.generator_params(), c.lr, (c.beta1, c.beta2)),
            "d": adam(self.nets["d"].parameters(), c.lr, (c.beta1, c.beta2)),
        }

    def num_iterations(self, n_train: int) -> int:
        return self.cfg.iterations

    def sampling_net(self) -> nn.Module:
        return self.nets["g_ema"]

    # --- hooks SD-NR-GAN-III overrides
    def generator_params(self) -> list[nn.Parameter]:
        return list(self.nets["g"].parameters())

    def fakes(self, n: int, rng: torch.Generator, generator_step: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What D sees as fake, and an extra generator loss (None here). Called under ``self.autocast()``: the
        images come back in fp32 (the generator's bf16 output cast; in fp32 the cast is a no-op)."""
        return P.widen(self.nets["g"](self.latent(n, self.cfg.latent_dim, rng))), None

    def update_ema(self) -> None:
        gc.ema_update(self.nets["g_ema"], self.nets["g"], self.cfg.ema_beta)

    # --- training
    def latent(self, n: int, dim: int, rng: torch.Generator) -> torch.Tensor:
        return torch.randn(n, dim, generator=rng).to(self.device)

    def train_step(self, iteration: int, data: gc.RealBatches, rng: torch.Generator) -> dict[str, float]:
        losses: dict[str, float] = {}
        if iteration > 0:  # official: iteration 0 updates D only
            losses.update(self.generator_step(rng))
        losses.update(self.discriminator_step(data, rng, iteration))
        return losses

    def generator_step(self, rng: torch.Generator) -> dict[str, float]:
        opt, d = self.optimizers["g"], self.nets["d"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            fake, extra = self.fakes(self.cfg.g_batch_size, rng, generator_step=True)
            with gc.frozen(d):
                d_fake = P.widen(d(fake))
        adv = F.softplus(-d_fake).mean()  # BCE(D(fake), 1), in fp32
        loss = adv if extra is None else adv + extra
        loss.backward()
        opt.step()
        self.update_ema()
        out = {"g": adv.item()}
        if extra is not None:
            out["g_extra"] = extra.item()
        return out

    def discriminator_step(self, data: gc.RealBatches, rng: torch.Generator, iteration: int = 0) -> dict[str, float]:
        c, opt, d = self.cfg, self.optimizers["d"], self.nets["d"]
        opt.zero_grad(set_to_none=True)
        real = data.next(c.d_batch_size)
        with torch.no_grad(), self.autocast():
            fake, _ = self.fakes(c.d_batch_size, rng, generator_step=False)
        if iteration % c.r1_every == 0:
            real.requires_grad_(True)
            with self.autocast():
                d_real = P.widen(d(real))
            r1 = gc.r1_penalty(d_real, real)  # outside autocast (its double backward runs D's bf16 ops in bf16)
            adv_real = F.softplus(-d_real).mean()
            with self.autocast():  # after R1, as before precision existed: the same graph order, the same fp32 bits
                d_fake = P.widen(d(fake))
            adv = adv_real + F.softplus(d_fake).mean()
            (adv + c.lambda_r1 * c.r1_every * r1).backward()
            opt.step()
            return {"d": adv.item(), "r1": r1.item()}
        # No R1 on this step: nothing needs the input gradient, so real and fake go through D in one pass (D has no
        # batch statistics: each sample's score is what two passes give).
        with self.autocast():
            scores = P.widen(d(torch.cat([real, fake])))
        d_real, d_fake = scores[: len(real)], scores[len(real) :]
        adv = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        adv.backward()
        opt.step()
        return {"d": adv.item()}
