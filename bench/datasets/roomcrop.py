"""RoomCrop (paper §4.2): LSUN bedrooms are inliers; bedrooms with 1-3 black rectangles are outliers.

The ``corrupted`` dataset with the ``rectangles`` corruption (``bench/datasets/corruptions.py`` says how the paper's
"area between 15 and 25" is read) on a bedroom folder or LSUN LMDB; without a root, synthetic bedrooms. Paper
values: Tables 2, 4 and 5, keyed by the paper's model names.
"""

from __future__ import annotations

from bench.datasets.corrupted import CORRUPTED_PROFILES, CorruptedDataset, CorruptedSettings
from bench.datasets.registry import PaperValues, register_dataset

_R5 = (5, 10, 15, 20, 25, 30)
_R0 = (0, 5, 10, 15, 20, 25, 30)

PAPER = PaperValues(
    pct_inliers={  # Table 2
        "RVQ-VAE": dict(zip(_R5, (97.56, 95.72, 91.98, 86.64, 80.96, 77.44))),
        "VQ-VAE": dict(zip(_R5, (66.71, 53.85, 39.75, 25.93, 22.15, 16.29))),
        "robust OT": dict(zip(_R5, (96.19, 92.94, 88.95, 82.85, 72.71, 67.80))),
        "GAN": dict(zip(_R5, (92.78, 88.91, 84.63, 82.00, 74.23, 70.15))),
        "NR-GAN": dict(zip(_R5, (97.43, 88.91, 82.69, 78.65, 72.64, 70.36))),
    },
    fid={  # Table 4
        "RVQ-VAE": dict(zip(_R0, (92.987, 92.831, 93.574, 94.891, 95.026, 94.578, 97.213))),
        "VQ-VAE": dict(zip(_R0, (92.816, 104.214, 107.996, 111.145, 113.437, 116.230, 117.203))),
        "robust OT": dict(zip(_R0, (24.062, 31.880, 38.935, 49.554, 54.691, 85.075, 108.884))),
        "GAN": dict(zip(_R0, (23.301, 30.595, 33.507, 42.098, 50.377, 54.553, 57.381))),
        "NR-GAN": dict(zip(_R0, (25.137, 30.184, 38.976, 41.260, 43.630, 46.796, 53.351))),
    },
    f1=dict(zip(_R0, (0.997, 0.989, 0.968, 0.970, 0.966, 0.959, 0.934))),  # Table 5
    table_numbers=(2, 4),
)

ROOMCROP_PROFILES: dict[str, CorruptedSettings] = dict(CORRUPTED_PROFILES)  # the same counts, rectangles


@register_dataset(
    "roomcrop", title="RoomCrop", settings=CorruptedSettings, profiles=ROOMCROP_PROFILES, inlier_name="bedrooms",
    outlier_name="bedrooms with black rectangles", paper=PAPER, default=("smoke", "cpu", "paper"),
)  # fmt: skip
class RoomCrop(CorruptedDataset):
    """LSUN bedrooms (LMDB or image folder) with black-rectangle outliers; synthetic rooms when no root."""
