"""``corrupted``: any single image folder, shuffled with the seed and cut into two disjoint halves; the second half
becomes outliers through a registered corruption (``bench/datasets/corruptions.py``: rectangles, noise, patch, text).

E.g. ``--datasets corrupted --data-root corrupted=PATH --set data.corrupted.corruption=noise
--set data.corrupted.params.sigma=0.3``. The root may also be an LMDB export (a folder with ``data.mdb``, as LSUN
ships; needs the optional ``lmdb`` package) or hold its images in ``images/``. Without a root, synthetic bedrooms
are used. RoomCrop is this dataset with the rectangles corruption on bedrooms.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import fields
from bench.datasets import corruptions, images, synthetic
from bench.datasets.pools import FolderPool, MappedPool, Pool, SubsetPool
from bench.datasets.registry import Dataset, DatasetCounts, PoolPair, register_dataset
from bench.errors import BenchError


@dataclass
class CorruptedSettings(DatasetCounts):
    """Counts, the size of each half of the shuffled pool, and the corruption with its parameter overrides."""

    pool_per_half: int = 0
    corruption: str = "rectangles"
    params: dict[str, Any] = field(default_factory=dict)  # overrides of the corruption's parameters

    def __post_init__(self) -> None:
        super().__post_init__()
        fields.require_positive(self, ("pool_per_half",))
        fields.require(
            self.inliers + self.classifier_train_per_class + self.classifier_test_per_class + self.reference
            <= self.pool_per_half,
            f"inliers + classifier sets + reference ({self.inliers} + {self.classifier_train_per_class} + "
            f"{self.classifier_test_per_class} + {self.reference}) must fit in pool_per_half = {self.pool_per_half}",
        )
        try:
            self.corruption_params()  # an unknown corruption or parameter fails here, before any work
        except BenchError as e:
            raise ValueError(str(e)) from None

    def corruption_params(self) -> Any:
        """The corruption's full parameter dataclass (defaults + ``params``)."""
        return corruptions.get(self.corruption).make_params(self.params, "params")


class LmdbPool:
    """An LSUN LMDB export (key -> encoded image bytes); needs the optional ``lmdb`` package."""

    def __init__(self, path: Path):
        try:
            import lmdb
        except ImportError:
            raise BenchError(
                f"{path} is an LMDB database but the 'lmdb' package is missing: pip install 'robust-gen-bench[lmdb]'"
            ) from None
        try:
            self.env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=64)
            with self.env.begin(write=False) as txn:
                self.keys = [k for k, _ in txn.cursor()]
        except lmdb.Error as e:
            raise BenchError(f"{path}/data.mdb is not a readable LMDB database ({type(e).__name__}): pass an LSUN "
                             f"LMDB export or a plain image folder") from None  # fmt: skip
        stat = (path / "data.mdb").stat()
        self.fingerprint = hashlib.sha256(
            f"lmdb:{len(self.keys)}:{stat.st_size}:{stat.st_mtime_ns}".encode()
        ).hexdigest()
        self.skipped: Counter = Counter()

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, i: int, size: int) -> np.ndarray | None:
        with self.env.begin(write=False) as txn:
            data = txn.get(self.keys[i])
        if data is None:
            self.skipped[images.SKIP_UNREADABLE] += 1
            return None
        return images.decode(bytes(data), size, self.skipped)


def open_image_source(root: Path, what: str) -> Pool:
    """One pool from an LMDB folder (has data.mdb) or a plain image folder (or its images/ subfolder)."""
    if not root.exists():
        raise BenchError(f"data root for '{what}' not found: {root} (pass an image folder or an LMDB folder)")
    if not root.is_dir():
        raise BenchError(f"data root for '{what}' is not a folder: {root}")
    if (root / "data.mdb").exists():
        return LmdbPool(root)
    pool = FolderPool(root, root)
    if len(pool) == 0 and (root / "images").is_dir():
        pool = FolderPool(root / "images", root)
    if len(pool) == 0:
        raise BenchError(
            f"no images in data root {root} for '{what}': expected png/jpg/jpeg/webp files or an LMDB (data.mdb)"
        )
    return pool


class CorruptedDataset(Dataset):
    """One clean pool, halves: inliers from the first, corrupted outliers from the second."""

    settings: CorruptedSettings
    synthetic_kind = "room"

    def check_root(self, root: Path) -> None:
        open_image_source(root, self.name)

    def base_pool(self, root: Path | None, seed: int) -> tuple[Pool, str]:
        if root is None:
            return synthetic.SyntheticPool(
                self.synthetic_kind, seed, 2 * self.settings.pool_per_half
            ), "synthetic rooms"
        return open_image_source(root, self.name), str(root)

    def split_pools(self, base: Pool, source: str, seed: int) -> PoolPair:
        s = self.settings
        half = min(s.pool_per_half, len(base) // 2)
        order = np.random.default_rng([seed, 0xB0D]).permutation(len(base))
        inliers = SubsetPool(base, order[:half], f"in:{seed}:{half}")
        fn, tag = corruptions.corrupt_item(s.corruption, s.corruption_params(), seed)
        outliers = MappedPool(SubsetPool(base, order[half : 2 * half], f"out:{seed}:{half}"), fn, tag)
        return PoolPair(inliers, outliers, f"{source}, {s.corruption}")

    def pools(self, root: Path, seed: int) -> PoolPair:
        return self.split_pools(*self.base_pool(root, seed), seed)

    def synthetic_pools(self, seed: int, length: int) -> PoolPair:
        return self.split_pools(*self.base_pool(None, seed), seed)

    def synthetic_fingerprint(self) -> str:
        return f"{synthetic.VERSION}:{self.synthetic_kind}"

    def root_fingerprint(self, root: Path) -> str:
        pool = open_image_source(root, self.name)
        return pool.content_fingerprint() if isinstance(pool, FolderPool) else pool.fingerprint


# Sized like RoomCrop (paper §4.2); cpu fits a 5,000-image folder: halves of 2,500, 1,200+400+250+600 = 2,450
# inliers and at most 514+400+250 outliers at r = 30 %.
CORRUPTED_PROFILES = {
    "smoke": CorruptedSettings(120, 60, 40, 60, pool_per_half=300),
    "demo": CorruptedSettings(600, 300, 200, 300, pool_per_half=1_400),
    "cpu": CorruptedSettings(1_200, 400, 250, 600, pool_per_half=2_500),
    "paper": CorruptedSettings(30_000, 2_000, 1_000, 5_000, pool_per_half=38_000),
}


@register_dataset(
    "corrupted", title="Corrupted folder", settings=CorruptedSettings, profiles=CORRUPTED_PROFILES,
    inlier_name="clean images", outlier_name="corrupted images",
    description="your data: one image folder, half of it corrupted (data.corrupted.corruption, .params)",
)  # fmt: skip
class Corrupted(CorruptedDataset):
    """One image folder; its second half corrupted by a registered corruption (synthetic rooms when no root)."""
