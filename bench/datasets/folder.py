"""``folder``: any root with an inlier and an outlier image folder (``inliers/`` and ``outliers/``).

The generic dataset for a user's own data: no code needed, e.g. ``--datasets folder --data-root folder=PATH``.
:class:`TwoFolderDataset` is also the base of FaceMask, which only renames the two folders. Images are read with
the same rules everywhere (png/jpg/jpeg/webp, any size or mode -> RGB, centre square crop, Lanczos resize).
"""

from __future__ import annotations

from pathlib import Path

from bench.datasets.pools import FolderPool
from bench.datasets.registry import Dataset, DatasetCounts, PoolPair, register_dataset
from bench.errors import BenchError

# Sized like the paper's FaceMask protocol (§4.2), so FaceMask laid out as inliers/ + outliers/ gives the same split.
# cpu: 3,000+900+500+1,400 = 5,800 of the FaceMask stand-ins' 5,932 unmasked faces and at most 1,286+900+500 =
# 2,686 masked ones at r = 30 %. demo: 600 synthetic training faces at 16 px (docs/demo-profile.md).
TWO_FOLDER_PROFILES = {
    "smoke": DatasetCounts(120, 60, 40, 60),
    "demo": DatasetCounts(600, 300, 200, 300),
    "cpu": DatasetCounts(3_000, 900, 500, 1_400),
    "paper": DatasetCounts(10_000, 2_000, 1_000, 5_000),
}


class TwoFolderDataset(Dataset):
    """Inliers and outliers each in their own image folder under the root."""

    inlier_dir = "inliers"
    outlier_dir = "outliers"

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        for name in (self.inlier_dir, self.outlier_dir):
            if not (root / name).is_dir():
                raise BenchError(
                    f"data root {root} for '{self.name}' has no {name}/ folder: expected {self.inlier_dir}/ (inliers) "
                    f"and {self.outlier_dir}/ (outliers) holding png/jpg/jpeg/webp images"
                )

    def _folders(self, root: Path) -> tuple[FolderPool, FolderPool]:
        self.check_root(root)
        pools = []
        for name in (self.inlier_dir, self.outlier_dir):
            pool = FolderPool(root / name, root)
            if len(pool) == 0:
                raise BenchError(f"no images in {root / name}: expected png/jpg/jpeg/webp files")
            pools.append(pool)
        return pools[0], pools[1]

    def pools(self, root: Path, seed: int) -> PoolPair:
        inliers, outliers = self._folders(root)
        return PoolPair(inliers, outliers, str(root))

    def root_fingerprint(self, root: Path) -> str:
        inliers, outliers = self._folders(root)
        return f"{inliers.content_fingerprint()}:{outliers.content_fingerprint()}"


@register_dataset(
    "folder", title="Image folders", profiles=TWO_FOLDER_PROFILES, inlier_name="inliers/", outlier_name="outliers/",
    description="your data: a root with inliers/ and outliers/ image folders (--data-root folder=PATH)",
)  # fmt: skip
class Folder(TwoFolderDataset):
    """A root with inliers/ and outliers/ image folders."""
