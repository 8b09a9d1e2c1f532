"""One cell, start to end: split -> (filter) -> fit -> sample -> evaluate -> store.

A :class:`CellJob` is plain data (it crosses process boundaries to loky and Dask workers): the worker loads the
plug-ins it names before anything else, then rebuilds the profile. The cell writes only inside its own folder
(``cells/<dataset>/<model>/r<ratio>/s<seed>/<digest>/``); ``done.json`` is written last, so a killed cell is simply
not finished, and an interrupted ``fit`` resumes from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import atomic, filtering, loading, plugins, provenance, registry, robustness
from bench.config import Profile
from bench.datasets import Split, build_split
from bench.detectors import flag_metrics
from bench.evaluator import Evaluator
from bench.grids import save_grid
from bench.identity import CellIdentity
from bench.models.base import Checkpointer, FitConfig, FitResult
from bench.progress import LineProgress, Progress, note
from bench.store import Cell, done_row


@dataclass
class CellJob:
    cell: Cell
    identity: CellIdentity
    out: str
    profile: dict[str, Any]  # Profile.to_dict()
    data_root: str | None = None
    filter: dict[str, Any] | None = None  # FilterSpec.to_dict()
    plugins: list[str] = field(default_factory=list)
    jobs: int = 1
    command: str = ""

    @property
    def folder(self) -> Path:
        return self.cell.folder(Path(self.out), self.identity.config_digest)


def set_threads(threads: int, jobs: int) -> int:
    n = threads or max(1, (os.cpu_count() or 1) // max(1, jobs))
    torch.set_num_threads(n)
    return n


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def open_split(profile: Profile, dataset: str, ratio: float, seed: int, out: Path, data_root: str | None,
               progress: Progress) -> Split:  # fmt: skip
    return build_split(dataset, profile.data, ratio, seed, Path(out) / "cache", data_root, progress)


def evaluator_for(profile: Profile, split: Split, seed: int, out: Path, progress: Progress) -> Evaluator:
    return Evaluator.for_split(split, profile.eval, seed, Path(out) / "cache", progress)


def refusal(evaluator: Evaluator, model: Any, split: Split) -> dict[str, float]:
    """Does the model's inlier part refuse outliers? Training outliers reconstructed through it: the share the held-out
    classifier still calls outliers, next to the share of the originals it calls so (RVQ-VAE's C_in, eq. 8)."""
    outliers = split.train_images[split.train_is_outlier]
    if len(outliers) == 0:
        return {}
    with torch.inference_mode():
        recon = model.inlier_only_reconstruction(outliers)
    if recon is None:
        return {}
    return {"outlier_recon_called_outlier_pct": evaluator.called_outlier_pct(recon),
            "outlier_orig_called_outlier_pct": evaluator.called_outlier_pct(outliers)}  # fmt: skip


def set_aside_report(result: FitResult, is_outlier: torch.Tensor) -> dict[str, Any]:
    """Precision / recall / AUC of what the model set aside, against the labels (reporting only). With scores but no
    hard set, as many images as there are true outliers count as set aside (R-precision)."""
    scores, flagged = result.outlier_scores, result.set_aside
    if scores is None and flagged is None:
        return {}
    is_outlier = is_outlier.bool().cpu()
    if flagged is None:
        k = int(is_outlier.sum())
        flagged = torch.zeros_like(is_outlier)
        flagged[torch.argsort(scores.double().cpu(), descending=True, stable=True)[:k]] = True
    m = flag_metrics(is_outlier, 0.0, scores=None if scores is None else scores.cpu(), flagged=flagged.bool().cpu())
    return {"flag_precision": m["precision"], "flag_recall": m["recall"], "flag_auc": m["auc"],
            "flag_rule": result.set_aside_rule}  # fmt: skip


def anchors(evaluator: Evaluator, split: Split, n: int, seed: int) -> dict[str, float]:
    """% inliers of the two reference generators on this split, seed and sample count (bench/robustness.py)."""
    inliers = split.train_images[~split.train_is_outlier.bool()]
    return {
        "pct_replay": evaluator.pct_inliers(robustness.replay_samples(split.train_images, n, seed)),
        "pct_replay_inliers": evaluator.pct_inliers(robustness.replay_samples(inliers, n, seed)),
    }


def run_cell(job: CellJob, progress: Progress | None = None) -> dict[str, Any]:
    """Run one cell to completion (or return its stored row when already finished)."""
    loading.load_all(job.plugins)
    folder = job.folder
    finished = done_row(folder)
    if finished is not None:
        return finished
    cell, out = job.cell, Path(job.out)
    progress = progress or LineProgress(f"{cell.key}: ", every_s=15.0)
    profile = Profile.from_dict(job.profile)
    set_threads(profile.run.threads, job.jobs)
    t_cell = time.perf_counter()
    split = open_split(profile, cell.dataset, cell.ratio, cell.seed, out, job.data_root, progress)
    evaluator = evaluator_for(profile, split, cell.seed, out, progress)
    spec = registry.get(cell.model)
    model = spec.build(profile.name, profile.data.size, profile.models.get(cell.model))
    filter_spec = filtering.FilterSpec.from_dict(job.filter)
    train = filtering.training_set(split, filter_spec, cell.seed, out / "cache", progress)
    atomic.write_json(folder / "config.json", {
        "cell": dataclasses.asdict(cell), "config_digest": job.identity.config_digest,
        "settings_digest": job.identity.settings_digest, "variant": job.identity.variant,
        "settings": job.identity.settings, "profile": job.profile, "model_config": dataclasses.asdict(model.cfg),
        "filter": job.filter, "split": split.meta, "data_root": job.data_root,
        "provenance": {**provenance.environment(profile.run.device), "command": job.command},
        "plugins": plugins.provenance(),
    })  # fmt: skip
    checkpoint = Checkpointer(folder / "checkpoint.pt", profile.run.checkpoint_every_s)
    torch.manual_seed(cell.seed)
    note(progress, f"fit on {len(train.images)} training images ({int(train.is_outlier.sum())} outliers)")
    t0 = time.perf_counter()
    fit_cfg = FitConfig(seed=cell.seed, checkpoint=checkpoint, device=profile.run.device)
    result = FitResult.coerce(model.fit(train.images, train.is_outlier, fit_cfg, progress), len(train.images))
    train_s = time.perf_counter() - t0
    model.save(folder / "model.pt")

    n_samples = min(split.n_inliers, profile.eval.max_generated)  # paper §4.3: as many as training inliers
    note(progress, f"sampling {n_samples} images")
    t0 = time.perf_counter()
    samples = model.sample(n_samples, seed=cell.seed)
    sample_s = time.perf_counter() - t0
    with atomic.atomic_path(folder / "samples.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, samples=samples.numpy())
    save_grid(folder / "samples.png", samples[: profile.run.grid_samples], nrow=10)

    note(progress, f"evaluating {n_samples} samples")
    t0 = time.perf_counter()
    metrics = evaluator.score(samples).to_dict()
    metrics.update(refusal(evaluator, model, split))
    metrics.update(anchors(evaluator, split, n_samples, cell.seed))
    metrics["robustness"] = robustness.robustness_index(
        metrics["pct_inliers"], metrics["pct_replay"], metrics["pct_replay_inliers"]
    )
    flags = set_aside_report(result, train.is_outlier)
    eval_s = time.perf_counter() - t0
    row = {
        **dataclasses.asdict(cell),
        "variant": job.identity.variant,
        "profile": profile.name,
        "size": profile.data.size,
        "n_inliers": split.n_inliers,
        "n_outliers": split.n_outliers,
        "n_samples": n_samples,
        **{k: metrics.get(k) for k in ("pct_inliers", "robustness", "pct_replay", "pct_replay_inliers", "fid",
                                       "fid_kind", "fd_classifier", "kid", "precision", "recall")},  # fmt: skip
        **{k: flags.get(k) for k in ("flag_precision", "flag_recall", "flag_auc")},
        **{k: train.report.get(k) for k in ("filter_precision", "filter_recall", "filter_auc", "n_train_kept")},
        "kind": spec.kind,
        "train_s": round(train_s, 2),
        "sample_s": round(sample_s, 2),
        "eval_s": round(eval_s, 2),
        "img_per_s": round(result.images_seen / train_s, 2) if train_s > 0 and result.images_seen else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "commit": provenance.LOADED_COMMIT,
        "config_digest": job.identity.config_digest,
        "settings_digest": job.identity.settings_digest,
    }
    atomic.write_json(folder / "metrics.json", {"metrics": metrics, "set_aside": flags, "filter": train.report,
                                                "history": result.history, "row": row})  # fmt: skip
    atomic.write_json(folder / "done.json", {"row": row})
    checkpoint.clear()
    note(progress, f"done in {time.perf_counter() - t_cell:.0f} s: {metrics['pct_inliers']:.1f} % inliers", phase=None)
    return row
