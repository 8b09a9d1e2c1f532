"""A small generative model as a plug-in: a Gaussian in the top-k principal components of the training images."""

from dataclasses import dataclass

import torch

from bench.plugin import FitResult, GenerativeModel, register_model


@dataclass
class PCAGaussConfig:
    components: int = 32

    def __post_init__(self):
        if self.components < 1:
            raise ValueError(f"components must be positive, got {self.components}")


@register_model("pcagauss", config=PCAGaussConfig, title="PCA-Gauss (plug-in)",
                profiles={"paper": {}, "cpu": "paper", "demo": {"components": 16}, "smoke": {"components": 8}})
class PCAGauss(GenerativeModel):
    """Samples mean + sum_i z_i sigma_i v_i over the top-k principal directions v_i (no training loop)."""

    def fit(self, train_images, train_is_outlier, cfg, progress=None):  # the labels are never read
        x = train_images.reshape(len(train_images), -1).double() / 255.0
        self.mean = x.mean(0)
        k = min(self.cfg.components, len(x) - 1)
        _, s, vh = torch.linalg.svd(x - self.mean, full_matrices=False)
        self.basis, self.scale = vh[:k], s[:k] / (len(x) - 1) ** 0.5
        return FitResult(history={"explained": float((s[:k] ** 2).sum() / (s**2).sum())}, images_seen=len(x))

    def sample(self, n, seed):
        z = torch.randn(n, len(self.scale), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        x = self.mean + (z * self.scale) @ self.basis
        return (x * 255).round().clamp(0, 255).to(torch.uint8).reshape(n, 3, self.image_size, self.image_size)

    def state_dict(self):
        return {"mean": self.mean, "basis": self.basis, "scale": self.scale}

    def load_state_dict(self, state):
        self.mean, self.basis, self.scale = state["mean"], state["basis"], state["scale"]
