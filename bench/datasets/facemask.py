"""FaceMask (paper §4.2): unmasked faces are inliers, masked faces are outliers.

Reads the Face Mask Lite layout: ``<root>/without_mask/`` (inliers) and ``<root>/with_mask/`` (outliers); the
embedded fallback draws synthetic faces with and without surgical masks. Paper values: Tables 1, 3 and 5
(``../shared/spec/rvq-vae-paper.md``, Appendix C and D), keyed by the paper's model names.
"""

from __future__ import annotations

from bench.datasets import synthetic
from bench.datasets.folder import TWO_FOLDER_PROFILES, TwoFolderDataset
from bench.datasets.registry import PaperValues, PoolPair, register_dataset

_R5 = (5, 10, 15, 20, 25, 30)
_R0 = (0, 5, 10, 15, 20, 25, 30)

PAPER = PaperValues(
    pct_inliers={  # Table 1
        "RVQ-VAE": dict(zip(_R5, (98.42, 96.55, 94.67, 93.18, 92.18, 91.81))),
        "VQ-VAE": dict(zip(_R5, (48.68, 14.08, 2.34, 0.98, 0.62, 0.22))),
        "robust OT": dict(zip(_R5, (94.44, 89.55, 84.53, 79.80, 74.41, 69.39))),
        "GAN": dict(zip(_R5, (95.73, 89.83, 84.60, 78.51, 73.75, 69.11))),
        "NR-GAN": dict(zip(_R5, (94.29, 89.64, 86.24, 79.78, 75.52, 71.29))),
    },
    fid={  # Table 3
        "RVQ-VAE": dict(zip(_R0, (42.723, 43.367, 44.680, 42.496, 42.340, 44.552, 42.537))),
        "VQ-VAE": dict(zip(_R0, (42.659, 100.767, 146.244, 234.322, 245.413, 241.596, 242.206))),
        "robust OT": dict(zip(_R0, (30.420, 32.670, 35.593, 36.400, 40.971, 51.398, 58.344))),
        "GAN": dict(zip(_R0, (5.681, 10.578, 15.675, 23.871, 37.029, 40.558, 48.488))),
        "NR-GAN": dict(zip(_R0, (6.381, 13.650, 17.358, 21.060, 32.201, 36.971, 45.143))),
    },
    f1=dict(zip(_R0, (1.000, 1.000, 1.000, 0.995, 0.996, 0.984, 0.979))),  # Table 5
    table_numbers=(1, 3),
)


@register_dataset(
    "facemask", title="FaceMask", profiles=TWO_FOLDER_PROFILES, inlier_name="unmasked faces",
    outlier_name="masked faces", paper=PAPER, default=True,
)  # fmt: skip
class FaceMask(TwoFolderDataset):
    """Face Mask Lite layout: without_mask/ (inliers), with_mask/ (outliers); synthetic faces when no root."""

    inlier_dir, outlier_dir = "without_mask", "with_mask"

    def synthetic_pools(self, seed: int, length: int) -> PoolPair:
        return PoolPair(
            synthetic.SyntheticPool("face", seed, length),
            synthetic.SyntheticPool("masked_face", seed, length),
            "synthetic faces",
        )

    def synthetic_fingerprint(self) -> str:
        return f"{synthetic.VERSION}:faces"
