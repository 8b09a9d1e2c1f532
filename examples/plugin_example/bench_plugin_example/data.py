"""A dataset and a corruption as a plug-in: bedrooms (or any image folder) whose outliers carry diagonal stripes."""

from dataclasses import dataclass

import numpy as np

from bench.plugin import CorruptedDataset, CorruptedSettings, register_corruption, register_dataset


@dataclass
class StripesParams:
    period: float = 8.0  # px at 64x64
    strength: float = 0.6  # 0 = invisible, 1 = solid

    def __post_init__(self):
        if not (self.period >= 2 and 0 < self.strength <= 1):
            raise ValueError(f"need period >= 2 and strength in (0, 1], got {self.period}, {self.strength}")


@register_corruption("stripes", params=StripesParams)
def stripes(image, rng, p):
    """Dark diagonal stripes at a random phase."""
    size = image.shape[0]
    period = max(2, round(p.period * size / 64))
    yy, xx = np.mgrid[0:size, 0:size]
    on = ((xx + yy + int(rng.integers(period))) % period) < period // 2
    out = image.astype(np.float32)
    out[on] *= 1 - p.strength
    return out.round().astype(np.uint8)


def _settings(*counts):
    return CorruptedSettings(*counts, corruption="stripes")


@register_dataset(
    "stripedrooms",
    title="Striped rooms (plug-in)",
    settings=CorruptedSettings,
    inlier_name="rooms",
    outlier_name="rooms with stripes",
    profiles={
        "smoke": _settings(120, 60, 40, 60, 300),
        "demo": "smoke",
        "cpu": _settings(1200, 400, 250, 600, 2500),
        "paper": "cpu",
    },
)
class StripedRooms(CorruptedDataset):
    """Any image folder (synthetic rooms without one); its outlier half carries diagonal stripes."""
