"""Image degradations: blur, resolution loss, noise and compression, as generated samples show them.

Two uses, one set of operations:

- the classifier's **validity check** (``bench/validity.py``) scores the held-out real inliers and outliers after each
  of :data:`VALIDITY_SET` and asks whether a degraded outlier is still called an outlier and a degraded inlier still an
  inlier (a metric that blur turns outliers into "inliers" rewards blurry models);
- the classifier's **training augmentation** (:func:`augment`): both classes degraded at random strengths, so that
  the decision rests on the content (a mask, a rectangle) and not on the sharpness or the noise of the image.

Every operation takes and returns uint8 N x C x H x W (values rounded as an image file would hold them). A blur's
sigma and a down-sampling factor are given at 32 x 32 and scale with the image size, as the corruptions' lengths do
(blur 2 px at 32 px is 1 px at 16 px and 4 px at 64 px; down-up 4x at 32 px leaves 8 x 8 pixels of detail at every
size); a noise sigma (a fraction of the full range: 0.1 = 25.5 grey levels) and a JPEG quality (PIL's 1-95) are the
same at every size.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with standard deviation ``sigma`` px (kernel 2 * ceil(3 sigma) + 1, reflected borders)."""
    if sigma <= 0:
        return images.clone()
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, images.shape[-1] - 1)  # reflection needs the pad to be smaller than the image
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    c = images.shape[1]
    out = F.pad(images.float(), (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    out = F.conv2d(out, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def down_up(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Down-sample by ``factor`` (antialiased bilinear) and back up to the original size (bilinear)."""
    size = images.shape[-1]
    small = max(2, round(size / factor))
    if factor <= 1 or small >= size:
        return images.clone()
    x = F.interpolate(images.float(), size=(small, small), mode="bilinear", antialias=True, align_corners=False)
    x = F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def noise(images: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Additive Gaussian noise of standard deviation ``sigma`` (fraction of the full range), clipped."""
    if sigma <= 0:
        return images.clone()
    n = torch.randn(images.shape, generator=generator) * (sigma * 255.0)
    return (images.float() + n).round_().clamp_(0, 255).to(torch.uint8)


def jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Each image encoded as a JPEG of ``quality`` (PIL, 4:2:0 chroma) and decoded again."""
    out = np.empty(tuple(images.shape), dtype=np.uint8)
    for i, img in enumerate(images.permute(0, 2, 3, 1).numpy()):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
        out[i] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).transpose(2, 0, 1)
    return torch.from_numpy(out)


REFERENCE_SIZE = 32  # the image size blur and down-up strengths are given at


@dataclass(frozen=True)
class Degradation:
    """One operation at one strength. ``gated``: within the strengths the classifier must withstand
    (``bench/validity.py``); the others are reported beside them."""

    kind: str  # "none", "blur", "downup", "noise" or "jpeg"
    strength: float = 0.0
    gated: bool = True

    @property
    def name(self) -> str:
        return self.kind if self.kind == "none" else f"{self.kind}:{self.strength:g}"

    @property
    def words(self) -> str:
        return {
            "none": "none",
            "blur": f"Gaussian blur sigma {self.strength:g} px at 32 px",
            "downup": f"down- then up-sampling {self.strength:g}x at 32 px",
            "noise": f"Gaussian noise sigma {self.strength:g}",
            "jpeg": f"JPEG quality {self.strength:g}",
        }[self.kind]

    def apply(self, images: torch.Tensor, seed: int = 0) -> torch.Tensor:
        if self.kind == "none":
            return images.clone()
        if self.kind == "blur":
            return blur(images, self.strength * images.shape[-1] / REFERENCE_SIZE)
        if self.kind == "downup":
            return down_up(images, self.strength * images.shape[-1] / REFERENCE_SIZE)
        if self.kind == "noise":
            return noise(images, self.strength, torch.Generator().manual_seed(int(seed) * 1_000_003 + 17))
        if self.kind == "jpeg":
            return jpeg(images, int(self.strength))
        raise ValueError(f"unknown degradation kind {self.kind!r}")


# The validity check's set: strengths spanning what the models' samples show (blur of the VQ decoders, the GAN
# family's noise); the gated ones are those a classifier must withstand to be valid.
VALIDITY_SET: tuple[Degradation, ...] = (
    Degradation("none"),
    Degradation("blur", 1.0), Degradation("blur", 1.5), Degradation("blur", 2.0), Degradation("blur", 3.0, gated=False),
    Degradation("downup", 2.0), Degradation("downup", 4.0),
    Degradation("noise", 0.05), Degradation("noise", 0.1), Degradation("noise", 0.2, gated=False),
    Degradation("jpeg", 50), Degradation("jpeg", 20, gated=False),
)  # fmt: skip

# The training augmentation: the share of each batch left clean, and the strength range of each operation (drawn once
# per batch and operation, uniformly). It spans the gated strengths with a margin; down-up-sampling, the hardest
# (RoomCrop's 4x failed two of three seeds with 5x as the top), reaches 6x.
AUGMENT_CLEAN_SHARE = 0.3
AUGMENT_RANGES: dict[str, tuple[float, float]] = {
    "blur": (0.5, 3.0),
    "downup": (1.5, 6.0),
    "noise": (0.02, 0.2),
    "jpeg": (15.0, 90.0),
}


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A copy of the uint8 batch with ``1 - AUGMENT_CLEAN_SHARE`` of its images degraded: each of those by one
    operation of :data:`AUGMENT_RANGES` (chosen uniformly), at one strength per operation and batch."""
    out = images.clone()
    n = len(images)
    kinds = list(AUGMENT_RANGES)
    degraded = torch.rand(n, generator=generator) >= AUGMENT_CLEAN_SHARE
    which = torch.randint(len(kinds), (n,), generator=generator)
    for k, kind in enumerate(kinds):
        idx = torch.nonzero(degraded & (which == k)).flatten()
        if len(idx) == 0:
            continue
        lo, hi = AUGMENT_RANGES[kind]
        strength = lo + (hi - lo) * float(torch.rand(1, generator=generator))
        if kind == "noise":
            out[idx] = noise(images[idx], strength, generator)
        else:
            out[idx] = Degradation(kind, round(strength) if kind == "jpeg" else strength).apply(images[idx])
    return out
