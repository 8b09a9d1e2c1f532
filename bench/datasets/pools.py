"""Image pools: an indexable source of images decoded on demand, with a fingerprint for cache keys.

A pool is anything with ``fingerprint``, ``__len__`` and ``get(i, size) -> uint8 HxWx3 | None`` (None for an
unreadable item, which the split builder skips and counts). The fingerprint keys the split cache, so it must change
whenever the images a pool yields can: a folder's is the hash of its files' names and bytes (memoised per file,
``images.file_sha256``), and the views below derive theirs from their base's when asked, not when built.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from bench.datasets import images


class Pool(Protocol):
    fingerprint: str

    def __len__(self) -> int: ...

    def get(self, i: int, size: int) -> np.ndarray | None: ...


class FolderPool:
    """Image files of one folder; ``skipped`` counts the files it could not decode, by reason."""

    def __init__(self, folder: Path, root: Path | None = None):
        self.folder = folder
        self.root = root or folder.parent
        self.paths = images.list_images(folder)
        self.skipped: Counter = Counter()

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, i: int, size: int) -> np.ndarray | None:
        return images.decode(self.paths[i], size, self.skipped)

    def content_fingerprint(self) -> str:
        """sha256 of the files' relative names and bytes (each file hashed once while it is unchanged)."""
        return images.content_fingerprint(self.paths, self.root)

    @property
    def fingerprint(self) -> str:
        return self.content_fingerprint()


class SubsetPool:
    """A view of ``base`` restricted to ``indices`` (used for RoomCrop's two disjoint halves)."""

    def __init__(self, base: Pool, indices: np.ndarray, tag: str):
        self.base, self.indices, self.tag = base, np.asarray(indices), tag

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.base.fingerprint}:{self.tag}:{len(self.indices)}".encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.indices)

    def get(self, i: int, size: int) -> np.ndarray | None:
        return self.base.get(int(self.indices[i]), size)

    @property
    def skipped(self) -> Counter:
        return getattr(self.base, "skipped", Counter())


@dataclass
class MappedPool:
    """``base`` with a per-item transform ``fn(image, i)`` (e.g. RoomCrop's black rectangles)."""

    base: Pool
    fn: Callable[[np.ndarray, int], np.ndarray]
    tag: str

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.base.fingerprint}:{self.tag}".encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.base)

    def get(self, i: int, size: int) -> np.ndarray | None:
        img = self.base.get(i, size)
        return None if img is None else self.fn(img, i)

    @property
    def skipped(self) -> Counter:
        return getattr(self.base, "skipped", Counter())
