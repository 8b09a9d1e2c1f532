"""Test double as a plug-in file: samples the training mean plus noise (``--plugin tests/plugins/mean_model.py``)."""

import time
from dataclasses import dataclass

import torch

from bench.plugin import FitResult, GenerativeModel, register_model


@dataclass
class MeanCfg:
    noise: float = 10.0
    sleep_s: float = 0.0


@register_model("test_mean", config=MeanCfg, profiles={"paper": {}, "cpu": "paper", "demo": "paper", "smoke": "paper"})
class MeanImageModel(GenerativeModel):
    """Test double: the training mean plus Gaussian noise."""

    def fit(self, train_images, train_is_outlier, cfg, progress=None):
        time.sleep(self.cfg.sleep_s)
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
