"""Timing helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import time

import torch

from bench.models.optim import adam
from bench.models.vq_common import ImageSource


def timed_vae_epoch(model, images: torch.Tensor | ImageSource, epoch: int = 0) -> float:
    """Seconds for one autoencoder epoch of VQ-VAE / RVQ-VAE, as ``fit`` runs it (prior not included).

    Given a uint8 tensor, the one-off conversion to ``ImageSource`` is inside the timing; given an ``ImageSource``
    it is not. The model's Adam optimiser is created on the first call (learning rate from its config).
    """
    if getattr(model, "_opt", None) is None:
        model._opt = adam(model.autoencoder_parameters(), model.cfg.lr)
    t0 = time.perf_counter()
    data = images if isinstance(images, ImageSource) else ImageSource(images)
    model._train_epoch(data, epoch, 0, torch.zeros(len(data), dtype=torch.bool))
    return time.perf_counter() - t0
