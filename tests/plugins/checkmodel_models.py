"""Test doubles for `bench check-model`'s seed and device items (``--plugin tests/plugins/checkmodel_models.py``).

One tiny generator (a linear decoder from 8 latent numbers, fitted by a few Adam steps on noisy images), five ways
of handling ``FitConfig.seed`` and ``FitConfig.device``:

- ``cm_honest``: noise from ``torch.Generator().manual_seed(cfg.seed)``; network and data on ``cfg.device``;
- ``cm_global_rng``: noise from the global RNG, which the harness seeds with the cell's seed before ``fit``: passes;
- ``cm_fixed_seed``: calls ``torch.manual_seed(0)`` in ``fit``, so every seed trains the same network: fails the seed item;
- ``cm_cpu_only``: never looks at ``cfg.device``: fails the device item;
- ``cm_data_only``: moves the data to ``cfg.device`` but leaves the network on the CPU: fails the device item.
"""

from dataclasses import dataclass

import torch
from torch import nn

from bench.plugin import FitResult, GenerativeModel, register_model, to_float, to_uint8

LATENT = 8


@dataclass
class TinyCfg:
    steps: int = 6


class _Tiny(GenerativeModel):
    rng = "generator"  # "generator" | "global" | "fixed"
    device = "all"  # "all" | "none" | "data"

    def fit(self, train_images, train_is_outlier, cfg, progress=None):
        dev_net = cfg.device if self.device == "all" else "cpu"
        dev_data = cfg.device if self.device in ("all", "data") else "cpu"
        if self.rng == "fixed":
            torch.manual_seed(0)  # the bug under test: every cell seed trains the same network
        g = torch.Generator().manual_seed(cfg.seed) if self.rng == "generator" else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)  # the same initial network for every seed: only the training noise varies
            self.net = nn.Linear(LATENT, 3 * self.image_size**2).to(dev_net)
        x = to_float(train_images).flatten(1).to(dev_data)
        opt = torch.optim.Adam(self.net.parameters(), lr=0.05)
        for _ in range(self.cfg.steps):
            z = torch.randn(len(x), LATENT, generator=g).to(dev_data)
            loss = (self.net(z) - x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return FitResult(history={"loss": loss.item()}, images_seen=self.cfg.steps * len(x))

    def sample(self, n, seed):
        z = torch.randn(n, LATENT, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            x = self.net(z.to(self.net.weight.device)).cpu()
        return to_uint8(x.reshape(n, 3, self.image_size, self.image_size))

    def state_dict(self):
        return {"net": self.net.state_dict()}

    def load_state_dict(self, state):
        self.net = nn.Linear(LATENT, 3 * self.image_size**2)
        self.net.load_state_dict(state["net"])


PROFILES = {"paper": {}, "cpu": "paper", "demo": "paper", "smoke": "paper"}


@register_model("cm_honest", config=TinyCfg, profiles=PROFILES)
class Honest(_Tiny):
    """Seeds its noise from cfg.seed; network and data on cfg.device."""


@register_model("cm_global_rng", config=TinyCfg, profiles=PROFILES)
class GlobalRng(_Tiny):
    """Draws its noise from the global RNG, seeded by the harness before fit."""

    rng = "global"


@register_model("cm_fixed_seed", config=TinyCfg, profiles=PROFILES)
class FixedSeed(_Tiny):
    """Broken on purpose: torch.manual_seed(0) in fit."""

    rng = "fixed"


@register_model("cm_cpu_only", config=TinyCfg, profiles=PROFILES)
class CpuOnly(_Tiny):
    """Broken on purpose: ignores cfg.device."""

    device = "none"


@register_model("cm_data_only", config=TinyCfg, profiles=PROFILES)
class DataOnly(_Tiny):
    """Broken on purpose: data on cfg.device, network on the CPU."""

    device = "data"
