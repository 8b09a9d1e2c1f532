"""Detector-filtered training, a stage any model can be put behind: "detect, drop, then train".

``--filter DETECTOR:FRACTION[:key=value,...]`` (e.g. ``pca:0.3``, ``iforest:0.25:n_estimators=200``) fits a
registered label-free detector (``bench/detectors.py``) on the contaminated training set, drops the ``FRACTION`` of
training images it scores as most outlying, and trains the model on the rest. The filter is part of the cell's
settings (its own config digest and variant, e.g. "GAN (filter=pca:0.3)"). The outlier labels are used only to
report how well the dropped set matches them (precision, recall, AUC, the outlier share left). Detector scores are
cached per (split, detector settings, seed), so every model behind the same filter reuses them.

``--filter DETECTOR:auto`` drops the share of outliers estimated from the detector's own scores
(``bench/outlier_share.py``), so the user need not know r; the estimate and its interval are in the cell's report.

``--filter self-trim:FRACTION[:rounds=K]`` (or ``self-trim:auto``) is trimmed likelihood with the model's own score
instead of a detector's: fit the model on every training image, score each by the model's ``training_scores`` (the
VQ models: the PixelCNN prior's negative log-likelihood of its code grid), drop the ``FRACTION`` it finds least likely,
refit on the rest; K rounds, then the cell's model trains on the last kept set. Only models with a score take it.

``--filter outliers-only`` is the capacity control, not a filter: the model trains on the split's training outliers
alone (it reads the labels by design, as the oracle reference does). Its samples should be called outliers; a model
whose control samples are called inliers cannot draw the contamination, so its robustness index says little. It is
planned for ratios above 0 and is never applied to reference generators.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import atomic
from bench.detectors import flag_metrics, top_fraction
from bench.errors import BenchError
from bench.outlier_share import estimate_share
from bench.progress import Progress, note, null_progress

CAPACITY_CONTROL = "outliers-only"
SELF_TRIM = "self-trim"


AUTO = "auto"


@dataclass(frozen=True)
class SelfTrimParams:
    rounds: int = 1  # fit, score, drop rounds before the cell's own fit (1: the model is trained twice)

    def __post_init__(self) -> None:
        from bench import fields

        fields.require_positive(self, ["rounds"])


@dataclass(frozen=True)
class FilterSpec:
    detector: str
    fraction: float | None  # None: "auto", the outlier share estimated from the scores (bench/outlier_share.py)
    params: dict[str, Any]  # the detector's full parameters
    overrides: dict[str, Any]  # what the user changed (for the label)

    @property
    def capacity_control(self) -> bool:
        return self.detector == CAPACITY_CONTROL

    @property
    def self_trim(self) -> bool:
        """Trimmed likelihood with the model's own score (the model is fitted in the filter's rounds)."""
        return self.detector == SELF_TRIM

    @property
    def label(self) -> str:
        if self.capacity_control:
            return CAPACITY_CONTROL
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.overrides.items()))
        fraction = AUTO if self.fraction is None else f"{self.fraction:g}"
        return f"{self.detector}:{fraction}" + (f":{extra}" if extra else "")

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.detector, "fraction": self.fraction, "params": dict(self.params), "label": self.label}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> FilterSpec | None:
        if d is None:
            return None
        return parse(d["label"])


def parse(text: str) -> FilterSpec | None:
    """``none`` -> None; ``DETECTOR:FRACTION[:key=value,...]`` -> FilterSpec (one-line BenchError otherwise)."""
    from bench import detectors
    from bench.config import parse_value
    from bench.models import registry

    registry.names()  # model modules register their own detectors (RVQ-VAE's flagged set)
    text = text.strip()
    if text in ("", "none"):
        return None
    if text == CAPACITY_CONTROL:
        return FilterSpec(CAPACITY_CONTROL, 1.0, {}, {})
    parts = text.split(":", 2)
    usage = (
        f"use DETECTOR:FRACTION[:key=value,...], e.g. --filter pca:0.3, or {CAPACITY_CONTROL} (the capacity control)"
    )
    if len(parts) < 2:
        raise BenchError(f"bad --filter '{text}': {usage} (detectors: {', '.join(detectors.names())})")
    name, frac_text = parts[0].strip(), parts[1].strip()
    if name != SELF_TRIM:
        detectors.get(name)
    fraction: float | None = None
    if frac_text != AUTO:
        try:
            fraction = float(frac_text)
        except ValueError:
            raise BenchError(
                f"bad --filter '{text}': fraction '{frac_text}' is not a number or 'auto'; {usage}"
            ) from None
        if not 0 < fraction < 1:
            raise BenchError(f"bad --filter '{text}': the fraction to drop must be in (0, 1), got {fraction:g}")
    overrides: dict[str, Any] = {}
    if len(parts) == 3 and parts[2].strip():
        for item in parts[2].split(","):
            key, eq, raw = item.partition("=")
            if not eq or not key.strip():
                raise BenchError(f"bad --filter '{text}': parameter '{item}' is not key=value; {usage}")
            overrides[key.strip()] = parse_value(raw.strip())
    if name == SELF_TRIM:
        from bench import fields

        params: Any = fields.build(SelfTrimParams, overrides, SELF_TRIM)
    else:
        params = detectors.make_params(name, overrides)
    return FilterSpec(name, fraction, dataclasses.asdict(params), overrides)


@dataclass
class TrainingSet:
    """The images a model trains on, and (reporting only) how the filter's dropped set matches the labels."""

    images: torch.Tensor
    is_outlier: torch.Tensor  # reporting only
    report: dict[str, Any]


@dataclass(frozen=True)
class DetectorScores:
    """A detector's scores of one split's training images, and the seconds its fit and scoring took (when it ran:
    the cache keeps them)."""

    scores: torch.Tensor
    seconds: float | None
    cached: bool


def _cached_scores(path: Path | None, key: str, compute: Callable[[], Any], n: int, what: str) -> DetectorScores:
    """Scores read from ``path`` when cached there under ``key``, else ``compute()``-d, checked (``n`` finite ones;
    ``what`` names the source in the one-line error), timed and cached (``path`` None: never cached)."""
    blob = None if path is None else atomic.load_keyed(path, key)
    if blob is not None:
        return DetectorScores(blob["scores"], blob.get("seconds"), True)
    t0 = time.perf_counter()
    scores = torch.as_tensor(compute()).detach().double().flatten()
    seconds = round(time.perf_counter() - t0, 2)
    if scores.numel() != n or not torch.isfinite(scores).all():
        raise BenchError(f"{what} returned {scores.numel()} scores (need {n} finite ones)")
    if path is not None:
        atomic.torch_save(path, {"key": key, "scores": scores, "seconds": seconds})
    return DetectorScores(scores, seconds, False)


def detector_scores(spec: FilterSpec, images: torch.Tensor, split_hash: str, seed: int, cache_dir: Path,
                    progress: Progress = null_progress) -> DetectorScores:  # fmt: skip
    """The filter's detector scores of ``images``, read from ``cache_dir/detectors`` when this split, detector
    setting and seed were scored before (by a cell or a benchmark), else computed and cached."""
    from bench import detectors

    key = hashlib.sha256(
        json.dumps([split_hash, spec.detector, spec.params, seed], sort_keys=True).encode()
    ).hexdigest()

    def compute() -> torch.Tensor:
        params = detectors.make_params(spec.detector, spec.params)
        desc = f"filter: fitting detector {spec.detector} on {len(images)} training images"
        with progress(total=1, desc=desc) as bar:
            scores = detectors.get(spec.detector).score(images, params, seed)
            bar.update(1)
        return scores

    path = Path(cache_dir) / "detectors" / f"{spec.detector}-{key[:24]}.pt"
    return _cached_scores(path, key, compute, len(images), f"detector {spec.detector}")


def training_set(split: Any, spec: FilterSpec | None, seed: int, cache_dir: Path,
                 progress: Progress = null_progress) -> TrainingSet:  # fmt: skip
    """The split's training set, minus what the filter drops (everything when ``spec`` is None)."""
    images, labels = split.train_images, split.train_is_outlier.bool()
    if spec is None:
        return TrainingSet(images, labels, {})
    if spec.capacity_control:
        if not labels.any():
            raise BenchError(f"--filter {CAPACITY_CONTROL} needs training outliers: the split at r = {split.ratio:g} % "
                             f"has none (run the control at a ratio above 0)")  # fmt: skip
        return TrainingSet(images[labels], labels[labels], {"filter": spec.label, "n_train_kept": int(labels.sum())})
    if spec.self_trim:
        raise BenchError(f"--filter {spec.label} needs the model: use trimmed_training_set")
    scored = detector_scores(spec, images, split.split_hash, seed, cache_dir, progress)
    return _drop_top(spec, images, labels, scored.scores, seed, {"filter_fit_s": scored.seconds})[0]


def _drop_top(spec: FilterSpec, images: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, seed: int,
              extra: dict[str, Any] | None = None) -> tuple[TrainingSet, torch.Tensor]:  # fmt: skip
    """The images minus the filter's fraction (or its estimated share) of the highest ``scores``, with the report,
    and the mask of the images kept."""
    estimate = None if spec.fraction is not None else estimate_share(scores, seed)
    fraction = spec.fraction if estimate is None else estimate.share
    dropped = top_fraction(scores, fraction)
    keep = ~dropped
    m = flag_metrics(labels, fraction, scores=scores, flagged=dropped)
    n_kept = int(keep.sum())
    report = {
        "filter": spec.label,
        "filter_fraction": fraction,
        **({} if estimate is None else {"share_estimate_low": estimate.low, "share_estimate_high": estimate.high}),
        "filter_precision": m["precision"],
        "filter_recall": m["recall"],
        "filter_auc": m["auc"],
        "n_train_kept": n_kept,
        "kept_outlier_share": float(labels[keep].float().mean()) if n_kept else None,
        **(extra or {}),
    }
    return TrainingSet(images[keep], labels[keep], report), keep


FitAndScore = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def trimmed_training_set(split: Any, spec: FilterSpec, seed: int, fit_and_score: FitAndScore,
                         progress: Progress = null_progress, cache_dir: Path | None = None,
                         model_key: str = "") -> TrainingSet:  # fmt: skip
    """Trimmed likelihood with the model's own score (``--filter self-trim``): ``rounds`` times, fit a fresh model on
    the kept images and score every training image with it, then keep all but the fraction it finds least likely
    (the first round fits on everything). ``fit_and_score(kept_images, kept_is_outlier, round) -> scores`` is the
    runner's: the labels go to ``fit`` for its reports only, as in any cell. The report's precision / recall / AUC are
    those of the last round's scores; ``rounds_recall`` lists every round's recall.

    With ``cache_dir``, each round's scores are cached under ``model_key`` (the model and everything its fit depends
    on), the split, the seed and the exact kept set: ``self-trim:0.3`` and ``self-trim:auto`` share their first fit,
    and a killed cell does not redo a finished round."""
    images, labels = split.train_images, split.train_is_outlier.bool()
    rounds = int(spec.params["rounds"])
    kept = TrainingSet(images, labels, {})
    kept_index = torch.arange(len(images))
    recalls, seconds = [], 0.0
    for k in range(rounds):
        note(progress, f"filter {spec.label}: round {k + 1}/{rounds}, fitting the model on {len(kept.images)} images")

        def compute(kept: TrainingSet = kept, k: int = k) -> Any:
            given = fit_and_score(kept.images, kept.is_outlier, k)
            if given is None:
                raise BenchError(f"--filter {spec.label}: the model's training_scores returned None (it has no "
                                 f"score: put it behind a detector, e.g. --filter mcd:auto)")  # fmt: skip
            return given

        key = hashlib.sha256(json.dumps([split.split_hash, model_key, seed]).encode()
                             + kept_index.numpy().tobytes()).hexdigest()  # fmt: skip
        path = None if cache_dir is None else Path(cache_dir) / SELF_TRIM / f"{key[:24]}.pt"
        scored = _cached_scores(path, key, compute, len(images), f"--filter {spec.label}: the model's training_scores")
        kept, keep = _drop_top(spec, images, labels, scored.scores, seed)
        kept_index = keep.nonzero().flatten()
        recalls.append(kept.report["filter_recall"])
        seconds += scored.seconds or 0.0
    kept.report["rounds_recall"] = recalls
    kept.report["filter_fit_s"] = round(seconds, 2)  # the rounds' fits and scoring, cached rounds at their first cost
    return kept
