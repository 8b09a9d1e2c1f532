"""RoomCrop (paper §4.2): LSUN bedrooms are inliers; bedrooms with 1-3 black rectangles are outliers.

The paper: "For each rectangle we randomly choose a center and area between 15 and 25 and replace its pixel
values to be black." A literal area of 15-25 px^2 at 64x64 would be a 4x5 speck, invisible to the eye and to a
classifier, while Fig. 3 shows clearly visible blocks; we therefore read "15 and 25" as the rectangle's side
lengths in pixels at 64x64 (``rect_reading = "side"``, default) and keep the literal reading available
(``rect_reading = "area"``). Both scale with the resolution (sides by size/64, areas by (size/64)^2).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.config import DataConfig
from bench.datasets import images
from bench.datasets.pools import FolderPool, Pool
from bench.errors import BenchError


@dataclass(frozen=True)
class Rect:
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int  # exclusive


def draw_rectangles(rng: np.random.Generator, size: int, cfg: DataConfig) -> list[Rect]:
    """1..3 rectangles with uniformly random centres, clipped to the image."""
    scale = size / 64.0
    rects = []
    for _ in range(int(rng.integers(cfg.rects_min, cfg.rects_max + 1))):
        if cfg.rect_reading == "side":
            w = rng.uniform(cfg.rect_min, cfg.rect_max) * scale
            h = rng.uniform(cfg.rect_min, cfg.rect_max) * scale
        else:  # "area": area in [rect_min, rect_max] px^2 at 64x64, aspect ratio log-uniform in [1/2, 2]
            area = rng.uniform(cfg.rect_min, cfg.rect_max) * scale**2
            aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
            w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
        cx, cy = rng.uniform(0, size), rng.uniform(0, size)
        w, h = max(1, round(w)), max(1, round(h))
        x0 = min(max(0, round(cx - w / 2)), size - 1)
        y0 = min(max(0, round(cy - h / 2)), size - 1)
        rects.append(Rect(x0, y0, min(size, x0 + w), min(size, y0 + h)))
    return rects


def blacken(image: np.ndarray, rects: list[Rect]) -> np.ndarray:
    """Copy of an H x W x 3 uint8 image with every rectangle set to black."""
    out = image.copy()
    for r in rects:
        out[r.y0 : r.y1, r.x0 : r.x1, :] = 0
    return out


def corruption(cfg: DataConfig, seed: int):
    """The RoomCrop corruption as a pool transform: item i always gets the same rectangles for a seed."""

    def fn(image: np.ndarray, i: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 0x600C, i])
        return blacken(image, draw_rectangles(rng, image.shape[0], cfg))

    tag = f"roomcrop:{seed}:{cfg.rect_reading}:{cfg.rect_min}:{cfg.rect_max}:{cfg.rects_min}:{cfg.rects_max}"
    return fn, tag


class LmdbPool:
    """An LSUN LMDB export (key -> encoded image bytes); needs the optional ``lmdb`` package."""

    def __init__(self, path: Path):
        try:
            import lmdb
        except ImportError:
            raise BenchError(
                f"{path} is an LMDB database but the 'lmdb' package is missing: pip install 'robust-gen-bench[lmdb]'"
            ) from None
        self.env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=64)
        with self.env.begin(write=False) as txn:
            self.keys = [k for k, _ in txn.cursor()]
        stat = (path / "data.mdb").stat()
        self.fingerprint = hashlib.sha256(f"lmdb:{len(self.keys)}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, i: int, size: int) -> np.ndarray | None:
        with self.env.begin(write=False) as txn:
            data = txn.get(self.keys[i])
        return None if data is None else images.decode(bytes(data), size)


def open_bedrooms(root: Path) -> Pool:
    """A bedroom pool from an LSUN LMDB folder (has data.mdb) or a plain image folder (e.g. LSUN export)."""
    if not root.exists():
        raise BenchError(f"RoomCrop data root not found: {root} (pass an LSUN bedroom LMDB or image folder)")
    if not root.is_dir():
        raise BenchError(f"RoomCrop data root is not a folder: {root}")
    if (root / "data.mdb").exists():
        pool: Pool = LmdbPool(root)
    else:
        pool = FolderPool(root, root)
        if len(pool) == 0:
            sub = root / "images"
            if sub.is_dir() and images.list_images(sub):
                pool = FolderPool(sub, root)
    if len(pool) == 0:
        raise BenchError(
            f"no images in RoomCrop data root {root}: expected png/jpg/jpeg/webp files or an LSUN LMDB (data.mdb)"
        )
    return pool
