"""A deliberately broken plug-in for `bench check-model`: its fit reads the outlier labels (trains on inliers only)."""

from dataclasses import dataclass

import torch

from bench.plugin import FitResult, GenerativeModel, register_model


@dataclass
class Cfg:
    pass


@register_model("label_reader", config=Cfg, profiles={"paper": {}, "cpu": "paper", "demo": "paper", "smoke": "paper"})
class LabelReader(GenerativeModel):
    """Broken on purpose: the mean of the training *inliers* (it reads train_is_outlier)."""

    def fit(self, train_images, train_is_outlier, cfg, progress=None):
        self.mean = train_images[~train_is_outlier].float().mean(0)
        return FitResult(images_seen=len(train_images))

    def sample(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        return (self.mean + 5 * torch.randn((n, *self.mean.shape), generator=g)).round().clamp(0, 255).to(torch.uint8)

    def state_dict(self):
        return {"mean": self.mean}

    def load_state_dict(self, state):
        self.mean = state["mean"]
