"""Dataset builders: FaceMask, RoomCrop (real folders/LMDB or the embedded synthetic default) -> Split.

``build_split`` returns a cached, deterministic :class:`~bench.datasets.split.Split` for one
(dataset, ratio, seed, profile) cell; with ``data_root=None`` the synthetic default is used.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.config import DataConfig
from bench.datasets import facemask, roomcrop
from bench.datasets.pools import MappedPool, Pool, SubsetPool
from bench.datasets.split import Counts, Split, assemble, cache_key, load_npz, n_outliers_for, save_npz
from bench.datasets.synthetic import SyntheticPool
from bench.errors import BenchError

DATASETS = ("facemask", "roomcrop")

__all__ = ["DATASETS", "Split", "build_split", "counts_for", "n_outliers_for", "resolve_datasets"]


def resolve_datasets(text: str) -> list[str]:
    out = [d.strip() for d in text.split(",") if d.strip()]
    if not out:
        raise BenchError("no dataset given: pass --datasets facemask,roomcrop (or one of them)")
    for d in out:
        if d not in DATASETS:
            raise BenchError(f"unknown dataset '{d}': choose from {', '.join(DATASETS)}")
    return out


def counts_for(dataset: str, data: DataConfig, ratio: float) -> Counts:
    c = getattr(data, dataset)
    return Counts(
        train_inliers=c.inliers,
        train_outliers=n_outliers_for(ratio, c.inliers),
        clf_train_per_class=c.classifier_train_per_class,
        clf_test_per_class=c.classifier_test_per_class,
        reference=c.reference,
    )


def _pools(dataset: str, data: DataConfig, counts: Counts, seed: int, root: Path | None) -> tuple[Pool, Pool, str]:
    """(inlier pool, outlier pool, source description) for a dataset."""
    # Synthetic pools are lazy; their length must not depend on the ratio (it seeds the draw order), so
    # it is fixed generously (enough outliers for ratios up to 75 %).
    synthetic_len = 4 * counts.inliers_needed
    if dataset == "facemask":
        if root is None:
            return (
                SyntheticPool("face", seed, synthetic_len),
                SyntheticPool("masked_face", seed, synthetic_len),
                "synthetic faces",
            )
        inl, outl = facemask.open_facemask(root)
        return inl, outl, str(root)
    # RoomCrop: one bedroom pool, shuffled with the seed and cut into two disjoint halves.
    if root is None:
        base: Pool = SyntheticPool("room", seed, 2 * data.roomcrop.pool_per_half)
        source = "synthetic rooms"
    else:
        base, source = roomcrop.open_bedrooms(root), str(root)
    half = min(data.roomcrop.pool_per_half, len(base) // 2)
    order = np.random.default_rng([seed, 0xB0D]).permutation(len(base))
    inliers = SubsetPool(base, order[:half], f"in:{seed}:{half}")
    fn, tag = roomcrop.corruption(data, seed)
    outliers = MappedPool(SubsetPool(base, order[half : 2 * half], f"out:{seed}:{half}"), fn, tag)
    return inliers, outliers, source


def build_split(
    dataset: str,
    data: DataConfig,
    ratio: float,
    seed: int,
    cache_dir: Path,
    data_root: str | Path | None = None,
) -> Split:
    """The contaminated split for one cell, from the cache when the same inputs were built before."""
    if dataset not in DATASETS:
        raise BenchError(f"unknown dataset '{dataset}': choose from {', '.join(DATASETS)}")
    counts = counts_for(dataset, data, ratio)
    root = Path(data_root).expanduser() if data_root is not None else None
    inl, outl, source = _pools(dataset, data, counts, seed, root)
    key = cache_key(
        {
            "dataset": dataset,
            "inliers": inl.fingerprint,
            "outliers": outl.fingerprint,
            "ratio": ratio,
            "seed": seed,
            "size": data.size,
            "counts": vars(counts),
        }
    )
    path = cache_dir / "splits" / f"{dataset}_r{ratio:g}_s{seed}_{data.size}px_{key[:16]}.npz"
    if path.exists():
        return load_npz(path)
    fix = (
        f"source {source} is too small for this profile: use more images, a smaller profile "
        f"(--profile smoke) or lower counts (e.g. --set data.{dataset}.inliers=N)"
        if root is not None
        else "the synthetic pools hold 4x the inliers needed: use an outlier ratio below 75 %"
    )
    arrays, meta = assemble(
        dataset, inl, outl, counts, ratio=ratio, seed=seed, size=data.size, fix_hint=fix
    )
    meta["source"] = source
    save_npz(path, arrays, meta)
    return load_npz(path)


def describe(split: Split) -> dict:
    """The JSON summary `bench data build --json` prints."""
    return {
        "dataset": split.dataset,
        "ratio": split.ratio,
        "seed": split.seed,
        "size": split.size,
        "n_inliers": split.n_inliers,
        "n_outliers": split.n_outliers,
        "outlier_fraction": split.n_outliers / max(1, split.n_inliers + split.n_outliers),
        "n_classifier_train": int(split.clf_train_images.shape[0]),
        "n_classifier_test_inliers": int(split.clf_test_inliers.shape[0]),
        "n_classifier_test_outliers": int(split.clf_test_outliers.shape[0]),
        "n_reference": int(split.reference_images.shape[0]),
        "unreadable_skipped": split.meta.get("unreadable_skipped", 0),
        "source": split.meta.get("source"),
        "split_hash": split.split_hash,
        "path": str(split.path),
    }


def dumps(split: Split) -> str:
    return json.dumps(describe(split), sort_keys=True)
