"""Datasets: the registry (``registry.py``), the built-in datasets (``folder``, ``facemask``, ``corrupted``,
``roomcrop``), corruptions, image pools, and split assembly with its cache.

``build_split`` returns a cached, deterministic :class:`~bench.datasets.split.Split` for one (dataset, ratio, seed,
profile); with ``data_root=None`` the dataset's embedded synthetic fallback is used.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.datasets import images, registry
from bench.datasets.registry import Dataset, DatasetCounts, DatasetSpec, PoolPair, register_dataset
from bench.datasets.split import Counts, Split, assemble, cache_key, load_npz, n_outliers_for, save_npz
from bench.progress import Progress, null_progress

__all__ = [
    "Dataset", "DatasetCounts", "DatasetSpec", "PoolPair", "Split", "build_split", "counts_for", "describe",
    "n_outliers_for", "open_dataset", "register_dataset",
]  # fmt: skip


def counts_for(settings: DatasetCounts, ratio: float) -> Counts:
    return Counts(
        train_inliers=settings.inliers,
        train_outliers=n_outliers_for(ratio, settings.inliers),
        clf_train_per_class=settings.classifier_train_per_class,
        clf_test_per_class=settings.classifier_test_per_class,
        reference=settings.reference,
    )


def open_dataset(name: str, data) -> Dataset:
    """The registered dataset ``name`` with its settings from ``data`` (a ``bench.config.DataConfig``)."""
    return registry.get(name).build(data.dataset(name))


def _root(data_root: str | Path | None) -> Path | None:
    return Path(data_root).expanduser() if data_root is not None else None


def build_split(
    dataset: str,
    data,
    ratio: float,
    seed: int,
    cache_dir: Path,
    data_root: str | Path | None = None,
    progress: Progress = null_progress,
) -> Split:
    """The contaminated split for one cell, from the cache when the same inputs were built before."""
    ds = open_dataset(dataset, data)
    counts = counts_for(ds.settings, ratio)
    root = _root(data_root)
    with images.hash_memo(Path(cache_dir) / "file-hashes.json"):  # the key hashes the bytes, once per file version
        pools = ds.open(root, seed, synthetic_length=4 * counts.inliers_needed)
        key = cache_key(
            {
                "dataset": dataset,
                "inliers": pools.inliers.fingerprint,
                "outliers": pools.outliers.fingerprint,
                "ratio": ratio,
                "seed": seed,
                "size": data.size,
                "counts": vars(counts),
            }
        )
    path = Path(cache_dir) / "splits" / f"{dataset}_r{ratio:g}_s{seed}_{data.size}px_{key[:16]}.npz"
    if path.exists():
        return load_npz(path)
    fix = (
        f"source {pools.source} is too small for this profile: use more images, a smaller profile "
        f"(--profile smoke) or lower counts (e.g. --set data.{dataset}.inliers=N)"
        if root is not None
        else "the synthetic pools hold 4x the inliers needed: use an outlier ratio below 75 %"
    )
    arrays, meta = assemble(
        dataset, pools.inliers, pools.outliers, counts, ratio=ratio, seed=seed, size=data.size, fix_hint=fix,
        progress=progress,
    )  # fmt: skip
    meta["source"] = pools.source
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
        "skipped_reasons": split.meta.get("skipped_reasons", {}),
        "source": split.meta.get("source"),
        "split_hash": split.split_hash,
        "path": str(split.path),
    }


def skipped_line(split: Split) -> str | None:
    """One line saying how many images were skipped and why, or None when none was."""
    n = int(split.meta.get("unreadable_skipped", 0))
    if not n:
        return None
    reasons = split.meta.get("skipped_reasons") or {}
    why = ", ".join(f"{v} {k}" for k, v in sorted(reasons.items())) or "unreadable"
    return f"{split.dataset}: skipped {n} image(s) that could not be read faithfully ({why})"


def dumps(split: Split) -> str:
    return json.dumps(describe(split), sort_keys=True)
