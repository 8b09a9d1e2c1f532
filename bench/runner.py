"""The grid: cells (dataset x model x ratio x seed) -> split -> fit -> sample -> evaluate -> one row each.

A cell is finished when its ``done.json`` exists; finished cells are skipped on rerun, and an interrupted cell
resumes from its last checkpoint. Workers only write inside their own cell folder; the driving process alone
builds the shared caches (splits, classifier, reference features) before dispatch and appends to runs.csv.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from bench import atomic, registry, store
from bench.config import Profile
from bench.datasets import Split, build_split
from bench.grids import save_grid
from bench.models.base import Checkpointer, FitConfig
from bench.progress import Progress, null_progress
from bench.store import Cell


@dataclass
class GridSpec:
    profile: Profile
    out: Path
    data_roots: dict[str, str | None] = field(default_factory=dict)
    jobs: int = 1

    @property
    def cache_dir(self) -> Path:
        return self.out / "cache"


def expand(datasets: Iterable[str], models: Iterable[str], ratios: Iterable[float], seeds: Iterable[int]) -> list[Cell]:
    return [Cell(d, m, float(r), int(s)) for d in datasets for r in ratios for s in seeds for m in models]


def git_commit() -> str:
    """Short commit of the code that ran, with "+dirty" when tracked files differ from it ("" outside git)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=5, check=True).stdout

    try:
        commit = git("rev-parse", "--short=12", "HEAD").strip()
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no").strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""


# Read once, when the process loads this code: a commit made while a grid runs must not be credited to workers
# that are still running the older code (the row's commit is otherwise read when each cell ends).
LOADED_COMMIT = git_commit()


def set_threads(threads: int, jobs: int) -> int:
    n = threads or max(1, (os.cpu_count() or 1) // max(1, jobs))
    torch.set_num_threads(n)
    return n


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def split_for(spec: GridSpec, dataset: str, ratio: float, seed: int) -> Split:
    return build_split(dataset, spec.profile.data, ratio, seed, spec.cache_dir, spec.data_roots.get(dataset))


def _evaluate(spec: GridSpec, split: Split, samples: torch.Tensor, seed: int) -> dict[str, Any]:
    from bench import evaluator

    return evaluator.evaluate_samples(
        samples,
        clf_train_images=split.clf_train_images,
        clf_train_is_outlier=split.clf_train_is_outlier,
        reference_images=split.reference_images,
        cfg=spec.profile.eval,
        seed=seed,
        cache_dir=spec.cache_dir,
    )


def _classifier(spec: GridSpec, split: Split, seed: int):
    from bench.classifiers.inlier_cnn import load_or_train_classifier

    return load_or_train_classifier(
        split.clf_train_images, split.clf_train_is_outlier, spec.profile.eval, seed, spec.cache_dir
    )


def inlier_codebook_refusal(spec: GridSpec, split: Split, model: Any, seed: int) -> dict[str, float]:
    """Does the inlier codebook refuse outliers? Training outliers encoded with C_in only (eq. 8) and decoded:
    the share the held-out classifier still calls outliers, next to the share of the originals it calls so."""
    from bench.classifiers.inlier_cnn import is_outlier_prediction, predict_outlier_prob

    outliers = split.train_images[split.train_is_outlier]
    if not hasattr(model, "reconstruct_inlier_only") or len(outliers) == 0:
        return {}
    clf = _classifier(spec, split, seed)
    with torch.inference_mode():
        recon = model.reconstruct_inlier_only(outliers)
    called = lambda imgs: 100.0 * float(is_outlier_prediction(predict_outlier_prob(clf, imgs)).float().mean())
    return {"outlier_recon_called_outlier_pct": called(recon), "outlier_orig_called_outlier_pct": called(outliers)}


def run_cell(spec: GridSpec, cell: Cell, progress: Progress = null_progress) -> dict[str, Any]:
    """Run one cell to completion (or return its stored row when already finished)."""
    folder = cell.folder(spec.out)
    finished = store.done_row(folder)
    if finished is not None:
        return finished
    set_threads(spec.profile.run.threads, spec.jobs)
    profile = spec.profile
    split = split_for(spec, cell.dataset, cell.ratio, cell.seed)
    model_spec = registry.get(cell.model)
    model = model_spec.build(profile.name, profile.data.size, profile.models.get(cell.model))
    atomic.write_json(
        folder / "config.json",
        {"cell": dataclasses.asdict(cell), "profile": profile.to_dict(), "model_config": dataclasses.asdict(model.cfg),
         "split": split.meta, "data_root": spec.data_roots.get(cell.dataset)},
    )  # fmt: skip
    checkpoint = Checkpointer(folder / "checkpoint.pt", profile.run.checkpoint_every_s)
    torch.manual_seed(cell.seed)
    t0 = time.perf_counter()
    fit_cfg = FitConfig(seed=cell.seed, checkpoint=checkpoint, device=profile.run.device)
    history = model.fit(split.train_images, split.train_is_outlier, fit_cfg, progress)
    train_s = time.perf_counter() - t0
    model.save(folder / "model.pt")

    n_samples = min(split.n_inliers, profile.eval.max_generated)  # paper §4.3: as many as training inliers
    t0 = time.perf_counter()
    samples = model.sample(n_samples, seed=cell.seed)
    sample_s = time.perf_counter() - t0
    with atomic.atomic_path(folder / "samples.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, samples=samples.numpy())
    save_grid(folder / "samples.png", samples[: profile.run.grid_samples], nrow=10)

    t0 = time.perf_counter()
    metrics = _evaluate(spec, split, samples, cell.seed)
    metrics.update(inlier_codebook_refusal(spec, split, model, cell.seed))
    eval_s = time.perf_counter() - t0

    # Training images processed by the model's main training (epochs x N, or iterations x real batch), over the
    # whole fit time (prior included).
    images_seen = history.get("images_seen", split.train_images.shape[0])
    row = {
        **dataclasses.asdict(cell),
        "profile": profile.name,
        "size": profile.data.size,
        "n_inliers": split.n_inliers,
        "n_outliers": split.n_outliers,
        **{k: metrics.get(k) for k in store.COLUMNS if k in metrics},
        "flag_precision": history.get("flag_precision"),
        "flag_recall": history.get("flag_recall"),
        "train_s": round(train_s, 2),
        "sample_s": round(sample_s, 2),
        "eval_s": round(eval_s, 2),
        "img_per_s": round(images_seen / train_s, 2) if train_s > 0 else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "commit": LOADED_COMMIT,
    }
    atomic.write_json(folder / "metrics.json", {"metrics": metrics, "history": history, "row": row})
    atomic.write_json(folder / "done.json", {"row": row})
    checkpoint.clear()
    return row


def reevaluate_cell(folder: Path, inception_weights: str | None = None) -> dict[str, Any]:
    """Recompute a finished cell's metrics from its stored samples (no retraining); returns the new row."""
    import json

    from bench.config import profile_from_dict
    from bench.errors import BenchError
    from bench.models.base import GenerativeModel

    folder = Path(folder)
    row = store.done_row(folder)
    if row is None or not (folder / "samples.npz").exists():
        raise BenchError(f"{folder} is not a finished cell (needs done.json and samples.npz; run 'bench run' first)")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    profile = profile_from_dict(config["profile"])
    if inception_weights is not None:
        profile.eval.inception_weights = inception_weights
    cell = Cell(**config["cell"])
    out = folder.parents[4]
    spec = GridSpec(profile, out, {cell.dataset: config.get("data_root")})
    split = split_for(spec, cell.dataset, cell.ratio, cell.seed)
    with np.load(folder / "samples.npz") as z:
        samples = torch.from_numpy(z["samples"])
    t0 = time.perf_counter()
    metrics = _evaluate(spec, split, samples, cell.seed)
    if (folder / "model.pt").exists():
        metrics.update(inlier_codebook_refusal(spec, split, GenerativeModel.load(folder / "model.pt"), cell.seed))
    row = {**row, **{k: metrics.get(k) for k in store.COLUMNS if k in metrics}, "eval_s": round(time.perf_counter() - t0, 2)}
    old = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    atomic.write_json(folder / "metrics.json", {**old, "metrics": metrics, "row": row})
    atomic.write_json(folder / "done.json", {"row": row})
    store.append_row(out, row)
    return row


def f1_path(out: Path, dataset: str, seed: int) -> Path:
    return out / "f1" / f"{dataset}_s{seed}.csv"


def write_f1_table(spec: GridSpec, split: Split, seed: int) -> None:
    """Table 5 for this dataset and seed (held-out sets are the same for every ratio, so once per pair)."""
    import pandas as pd

    from bench import evaluator

    path = f1_path(spec.out, split.dataset, seed)
    if path.exists():
        return
    rows = evaluator.classifier_f1_table(
        clf_train_images=split.clf_train_images, clf_train_is_outlier=split.clf_train_is_outlier,
        clf_test_inliers=split.clf_test_inliers, clf_test_outliers=split.clf_test_outliers,
        cfg=spec.profile.eval, seed=seed, cache_dir=spec.cache_dir,
    )  # fmt: skip
    frame = pd.DataFrame(rows).assign(dataset=split.dataset, seed=seed, profile=spec.profile.name)
    atomic.write_text(path, frame.to_csv(index=False))


def warm_caches(spec: GridSpec, split: Split, seed: int) -> None:
    """Train the classifier and compute reference features here, so parallel workers only read them."""
    from bench.classifiers import features

    clf = _classifier(spec, split, seed)
    features.reference_features(features.classifier_space(clf, spec.profile.eval), split.reference_images, spec.cache_dir)
    inception = features.inception_space(spec.profile.eval)
    if inception is not None:
        features.reference_features(inception, split.reference_images, spec.cache_dir)


def prepare(spec: GridSpec, cells: list[Cell]) -> None:
    """Build every split, the classifier, reference features and Table 5 once, before any worker starts."""
    seen, heldout = set(), set()
    for c in cells:
        if (c.dataset, c.ratio, c.seed) in seen or store.done_row(c.folder(spec.out)) is not None:
            continue
        seen.add((c.dataset, c.ratio, c.seed))
        split = split_for(spec, c.dataset, c.ratio, c.seed)
        if (c.dataset, c.seed) not in heldout:
            heldout.add((c.dataset, c.seed))
            warm_caches(spec, split, c.seed)
            write_f1_table(spec, split, c.seed)


def run_grid(
    spec: GridSpec,
    cells: list[Cell],
    on_row: Callable[[dict[str, Any]], None] = lambda row: None,
    progress: Progress = null_progress,
    backend: str = "loky",
    scheduler: str | None = None,
) -> list[dict[str, Any]]:
    """Run all cells (skipping finished ones); each finished row is appended to runs.csv as it arrives."""
    prepare(spec, cells)
    rows = []
    for row in _dispatch(spec, cells, progress, backend, scheduler):
        store.append_row(spec.out, row)
        rows.append(row)
        on_row(row)
    return rows


def _dispatch(spec: GridSpec, cells: list[Cell], progress: Progress, backend: str, scheduler: str | None) -> Iterator[dict]:
    if spec.jobs <= 1 and backend == "loky":
        for cell in cells:
            yield run_cell(spec, cell, progress)
        return
    if backend == "dask":
        from distributed import Client, as_completed

        # Without a scheduler: a local cluster of worker *processes*, one thread each (cells seed torch's global
        # RNG, so two cells must never share a process at the same time).
        client = Client(scheduler) if scheduler else Client(processes=True, n_workers=spec.jobs, threads_per_worker=1)
        try:
            futures = [client.submit(run_cell, spec, c, null_progress, pure=False) for c in cells]
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.close()
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=spec.jobs, backend=backend, return_as="generator_unordered")
    yield from parallel(delayed(run_cell)(spec, c) for c in cells)
