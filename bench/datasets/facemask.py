"""FaceMask (paper §4.2): unmasked faces are inliers, masked faces are outliers.

Reads the Face Mask Lite layout: ``<root>/without_mask/`` (inliers) and ``<root>/with_mask/`` (outliers).
"""

from __future__ import annotations

from pathlib import Path

from bench.datasets.pools import FolderPool
from bench.errors import BenchError

INLIER_DIR, OUTLIER_DIR = "without_mask", "with_mask"


def open_facemask(root: Path) -> tuple[FolderPool, FolderPool]:
    if not root.exists():
        raise BenchError(f"FaceMask data root not found: {root} (pass the folder holding without_mask/ and with_mask/)")
    if not root.is_dir():
        raise BenchError(f"FaceMask data root is not a folder: {root}")
    for name in (INLIER_DIR, OUTLIER_DIR):
        if not (root / name).is_dir():
            raise BenchError(
                f"FaceMask data root {root} has no {name}/ folder: expected the Face Mask Lite layout "
                f"({INLIER_DIR}/ and {OUTLIER_DIR}/)"
            )
    pools = []
    for name in (INLIER_DIR, OUTLIER_DIR):
        folder = root / name
        pool = FolderPool(folder, root)
        if len(pool) == 0:
            raise BenchError(f"no images in {folder}: expected png/jpg/jpeg/webp files")
        pools.append(pool)
    return pools[0], pools[1]
