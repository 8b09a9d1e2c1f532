"""Contaminated split assembly and its on-disk cache.

Ratio r (percent) is the fraction of outliers among *all* training images: n_out = round(r/(1-r) * n_in).
Besides the training set, every split carries sets held out from it and from each other:
- a balanced classifier train set and classifier test pools (inliers / outliers) for the evaluator;
- a reference set of real inliers for FID.
They are drawn first, from the same seeded order, so they are identical for every ratio of a dataset and seed
(the classifier and reference statistics are computed once per grid). Training outliers are a prefix of one
seeded order, so the outliers at 10 % are a subset of those at 30 %.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench import atomic
from bench.datasets.pools import Pool
from bench.errors import BenchError
from bench.progress import Progress, null_progress

SPLIT_FORMAT = 1
_ARRAYS = (
    "train_images", "train_is_outlier", "clf_train_images", "clf_train_is_outlier",
    "clf_test_inliers", "clf_test_outliers", "reference_images",
)  # fmt: skip


def n_outliers_for(ratio_percent: float, n_inliers: int) -> int:
    """Number of outliers so they make ``ratio_percent`` % of all training images (paper §4.2)."""
    if not 0 <= ratio_percent < 100:
        raise BenchError(f"bad outlier ratio {ratio_percent}: must be in [0, 100) percent, e.g. --ratios 0,5,10")
    r = ratio_percent / 100.0
    return int(round(r / (1.0 - r) * n_inliers))


@dataclass
class Counts:
    train_inliers: int
    train_outliers: int
    clf_train_per_class: int
    clf_test_per_class: int
    reference: int

    @property
    def inliers_needed(self) -> int:
        return self.clf_train_per_class + self.clf_test_per_class + self.reference + self.train_inliers

    @property
    def outliers_needed(self) -> int:
        return self.clf_train_per_class + self.clf_test_per_class + self.train_outliers


@dataclass
class Split:
    dataset: str
    ratio: float  # percent
    seed: int
    size: int
    train_images: torch.Tensor  # uint8 N x 3 x H x W
    train_is_outlier: torch.Tensor  # bool N
    clf_train_images: torch.Tensor
    clf_train_is_outlier: torch.Tensor
    clf_test_inliers: torch.Tensor
    clf_test_outliers: torch.Tensor
    reference_images: torch.Tensor
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def n_inliers(self) -> int:
        return int((~self.train_is_outlier).sum())

    @property
    def n_outliers(self) -> int:
        return int(self.train_is_outlier.sum())

    @property
    def split_hash(self) -> str:
        return self.meta["split_hash"]

    @property
    def heldout_hash(self) -> str:
        return self.meta["heldout_hash"]


def _take(
    pool: Pool, order: np.ndarray, need: int, size: int, what: str, fix: str, progress: Progress = null_progress
) -> tuple[np.ndarray, int]:
    """Decode images in ``order`` until ``need`` readable ones are collected; count the unreadable."""
    out, skipped = [], 0
    with progress(total=need, desc=f"reading {what}") as bar:
        for i in order:
            if len(out) == need:
                break
            img = pool.get(int(i), size)
            if img is None:
                skipped += 1
                continue
            out.append(img)
            bar.update(1)
    if len(out) < need:
        raise BenchError(
            f"not enough {what}: need {need}, found {len(out)} readable ({skipped} unreadable skipped); {fix}"
        )
    arr = np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2)), skipped


def _digest(arrays: dict[str, np.ndarray], names) -> str:
    h = hashlib.sha256()
    for n in names:
        a = arrays[n]
        h.update(f"{n}:{a.dtype}:{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def assemble(
    dataset: str,
    inlier_pool: Pool,
    outlier_pool: Pool,
    counts: Counts,
    *,
    ratio: float,
    seed: int,
    size: int,
    fix_hint: str,
    progress: Progress = null_progress,
) -> tuple[dict[str, np.ndarray], dict]:
    """Draw the disjoint sets from the two pools in one seeded order each."""
    rng = np.random.default_rng([seed, 0x5EED])
    in_order = rng.permutation(len(inlier_pool))
    out_order = rng.permutation(len(outlier_pool))
    inl, skip_in = _take(inlier_pool, in_order, counts.inliers_needed, size, f"{dataset} inlier images", fix_hint,
                         progress)  # fmt: skip
    outl, skip_out = _take(outlier_pool, out_order, counts.outliers_needed, size, f"{dataset} outlier images",
                           fix_hint, progress)  # fmt: skip
    reasons = Counter(getattr(inlier_pool, "skipped", Counter())) + Counter(getattr(outlier_pool, "skipped", Counter()))
    c = counts
    a, b = c.clf_train_per_class, c.clf_train_per_class + c.clf_test_per_class
    ref_end = b + c.reference
    clf_images = np.concatenate([inl[:a], outl[:a]])
    clf_labels = np.concatenate([np.zeros(a, bool), np.ones(a, bool)])
    train = np.concatenate([inl[ref_end:], outl[b:]])
    labels = np.concatenate([np.zeros(c.train_inliers, bool), np.ones(c.train_outliers, bool)])
    perm = np.random.default_rng([seed, 0x7A1]).permutation(len(train))  # mix classes for the loaders
    arrays = {
        "train_images": train[perm],
        "train_is_outlier": labels[perm],
        "clf_train_images": clf_images,
        "clf_train_is_outlier": clf_labels,
        "clf_test_inliers": inl[a:b],
        "clf_test_outliers": outl[a:b],
        "reference_images": inl[b:ref_end],
    }
    meta = {
        "dataset": dataset,
        "ratio": ratio,
        "seed": seed,
        "size": size,
        "n_inliers": c.train_inliers,
        "n_outliers": c.train_outliers,
        "unreadable_skipped": skip_in + skip_out,
        "skipped_reasons": dict(reasons),
        "split_hash": _digest(arrays, _ARRAYS),
        "heldout_hash": _digest(arrays, _ARRAYS[2:]),
        "format": SPLIT_FORMAT,
    }
    return arrays, meta


def save_npz(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Compressed, byte-deterministic .npz (fixed zip timestamps, fixed member order), written atomically."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        members = {**arrays, "meta": np.array(json.dumps(meta, sort_keys=True))}
        for name in sorted(members):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, members[name], allow_pickle=False)
    atomic.write_bytes(path, buf.getvalue())


def load_npz(path: Path) -> Split:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        tensors = {n: torch.from_numpy(z[n].copy()) for n in _ARRAYS}
    return Split(
        dataset=meta["dataset"], ratio=meta["ratio"], seed=meta["seed"], size=meta["size"],
        meta=meta, path=path, **tensors,
    )  # fmt: skip


def cache_key(parts: dict) -> str:
    return hashlib.sha256(json.dumps({**parts, "format": SPLIT_FORMAT}, sort_keys=True).encode()).hexdigest()
