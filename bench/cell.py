"""One cell, start to end: split -> (filter) -> fit -> sample -> score -> store.

A :class:`CellJob` is plain data (it crosses process boundaries to loky and Dask workers): the worker loads the
plug-ins it names before anything else, then rebuilds the profile. The cell writes only through the store, inside
its own folder; ``done.json`` is written last, so a killed cell is simply not finished, and an interrupted ``fit``
resumes from its checkpoint. What a plug-in model returns is checked before it is scored, and a plug-in that fails
in ``fit`` or ``sample`` stops the cell with one line naming the model and the phase.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench import filtering, loading, plugins, provenance
from bench.config import Profile
from bench.datasets import Split, build_split
from bench.detectors import flag_metrics
from bench.errors import BenchError
from bench.evaluator import Evaluator
from bench.identity import CellIdentity
from bench.models import registry
from bench.models.base import Checkpointer, FitConfig, FitResult
from bench.progress import LineProgress, Progress, note
from bench.record import Cell, CellRecord, FilterReport, SetAside, Timing
from bench.scoring import score_samples
from bench.store import ResultsStore


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
    def store(self) -> ResultsStore:
        return ResultsStore(self.out)

    @property
    def folder(self) -> Path:
        return self.store.cell_folder(self.cell, self.identity.config_digest)


def set_threads(threads: int, jobs: int) -> int:
    n = threads or max(1, (os.cpu_count() or 1) // max(1, jobs))
    torch.set_num_threads(n)
    return n


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def open_split(profile: Profile, dataset: str, ratio: float, seed: int, store: ResultsStore, data_root: str | None,
               progress: Progress) -> Split:  # fmt: skip
    return build_split(dataset, profile.data, ratio, seed, store.cache_dir, data_root, progress)


def evaluator_for(profile: Profile, split: Split, seed: int, store: ResultsStore, progress: Progress) -> Evaluator:
    return Evaluator.for_split(split, profile.eval, seed, store.cache_dir, progress)


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


def check_samples(samples: Any, n: int, size: int, where: str) -> torch.Tensor:
    """What ``sample(n)`` returned is n uint8 RGB images of the profile's size, or a BenchError saying what it is."""
    expected = f"a uint8 torch tensor of shape ({n}, 3, {size}, {size})"
    if not isinstance(samples, torch.Tensor):
        raise BenchError(f"{where} returned a {type(samples).__name__}, not {expected}: fix the model's sample()")
    if samples.dtype != torch.uint8:
        raise BenchError(f"{where} returned {samples.dtype} images, not {expected} (values 0-255; bench.api.to_uint8 "
                         f"converts [-1, 1] floats)")  # fmt: skip
    if tuple(samples.shape) != (n, 3, size, size):
        raise BenchError(f"{where} returned shape {tuple(samples.shape)}, not {expected}: fix the model's sample()")
    return samples.cpu()


def _guarded(call: Callable[[], Any], where: str, builtin: bool) -> Any:
    """Run a model's ``fit`` / ``sample``; a plug-in's failure becomes one line naming it and the phase."""
    if builtin:
        return call()
    try:
        return call()
    except BenchError as e:
        raise BenchError(f"{where}: {e}") from None
    except (Exception, SystemExit) as e:
        raise BenchError(f"{where} failed: {plugins._why(e)}") from None


def run_cell(job: CellJob, progress: Progress | None = None) -> CellRecord:
    """Run one cell to completion (or return its record when it is already finished)."""
    loading.load_all(job.plugins)
    finished = job.store.finished(job.folder)
    if finished is not None:
        return finished
    progress = progress or LineProgress(f"{job.cell.key}: ", every_s=15.0)
    try:
        return _run(job, progress)
    except BaseException:
        getattr(progress, "end_phase", lambda: None)()  # a failed cell's heartbeat must not outlive it
        raise


def _run(job: CellJob, progress: Progress) -> CellRecord:
    store, folder, cell = job.store, job.folder, job.cell
    profile = Profile.from_dict(job.profile)
    set_threads(profile.run.threads, job.jobs)
    t_cell = time.perf_counter()
    split = open_split(profile, cell.dataset, cell.ratio, cell.seed, store, job.data_root, progress)
    evaluator = evaluator_for(profile, split, cell.seed, store, progress)
    spec = registry.get(cell.model)
    builtin = spec.module.startswith("bench.")
    model_name = f"model '{cell.model}'" + ("" if builtin else f" ({plugins.origin(spec.module)})")
    model = spec.build(profile.name, profile.data.size, profile.models.get(cell.model))
    filter_spec = filtering.FilterSpec.from_dict(job.filter)
    fit_cfg = FitConfig(seed=cell.seed, checkpoint=None, device=profile.run.device,
                        precision=spec.training_precision(profile.run.precision))  # fmt: skip
    if filter_spec is not None and filter_spec.self_trim:

        def fit_and_score(images: torch.Tensor, is_outlier: torch.Tensor, round_: int) -> torch.Tensor:
            """One trimming round: a fresh model, fitted (no checkpoint: a killed cell redoes an unfinished round),
            scores every training image."""
            scorer = spec.build(profile.name, profile.data.size, profile.models.get(cell.model))
            torch.manual_seed(cell.seed)
            _guarded(lambda: scorer.fit(images, is_outlier, fit_cfg, progress), f"{model_name}, in fit", builtin)
            return _guarded(lambda: scorer.training_scores(split.train_images), f"{model_name}, in training_scores",
                            builtin)  # fmt: skip

        model_key = json.dumps([cell.model, dataclasses.asdict(model.cfg), fit_cfg.precision, profile.run.device,
                                profile.run.threads], sort_keys=True, default=str)  # fmt: skip
        train = filtering.trimmed_training_set(split, filter_spec, cell.seed, fit_and_score, progress,
                                               store.cache_dir, model_key)  # fmt: skip
    else:
        train = filtering.training_set(split, filter_spec, cell.seed, store.cache_dir, progress)
    store.begin_cell(folder, {
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
    fit_cfg = dataclasses.replace(fit_cfg, checkpoint=checkpoint)
    result = _guarded(lambda: FitResult.coerce(model.fit(train.images, train.is_outlier, fit_cfg, progress),
                                               len(train.images)), f"{model_name}, in fit", builtin)  # fmt: skip
    train_s = time.perf_counter() - t0
    model.save(folder / "model.pt")

    n_samples = min(split.n_inliers, profile.eval.max_generated)  # paper §4.3: as many as training inliers
    note(progress, f"sampling {n_samples} images")
    t0 = time.perf_counter()
    where = f"{model_name}, in sample({n_samples})"
    samples = check_samples(_guarded(lambda: model.sample(n_samples, seed=cell.seed), where, builtin), n_samples,
                            profile.data.size, where)  # fmt: skip
    sample_s = time.perf_counter() - t0
    store.write_samples(folder, samples, profile.run.grid_samples)

    note(progress, f"evaluating {n_samples} samples")
    t0 = time.perf_counter()
    score = score_samples(evaluator, split, samples, cell.seed, model=model)
    flags = set_aside_report(result, train.is_outlier)
    eval_s = time.perf_counter() - t0
    record = CellRecord(
        **dataclasses.asdict(cell), variant=job.identity.variant, profile=profile.name, size=profile.data.size,
        n_inliers=split.n_inliers, n_outliers=split.n_outliers, n_samples=n_samples, score=score,
        set_aside=SetAside(*(flags.get(k) for k in ("flag_precision", "flag_recall", "flag_auc"))),
        filter=FilterReport(**{f.name: train.report.get(f.name) for f in dataclasses.fields(FilterReport)}),
        kind=spec.kind,
        timing=Timing(round(train_s, 2), round(sample_s, 2), round(eval_s, 2),
                      round(result.images_seen / train_s, 2) if train_s > 0 and result.images_seen else None,
                      round(peak_rss_mb(), 1)),
        commit=provenance.LOADED_COMMIT, protocol_digest=job.identity.protocol_digest,
        config_digest=job.identity.config_digest, settings_digest=job.identity.settings_digest,
    )  # fmt: skip
    store.finish_cell(folder, record, {"metrics": score.to_dict(), "set_aside": flags, "filter": train.report,
                                       "history": result.history})  # fmt: skip
    checkpoint.clear()
    note(progress, f"done in {time.perf_counter() - t_cell:.0f} s: {score.pct_inliers:.1f} % inliers", phase=None)
    return record
