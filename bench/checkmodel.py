"""``bench check-model NAME``: the model contract, checked in seconds on tiny synthetic data (16 px embedded faces,
24 inliers + 8 outliers, the model's ``smoke`` settings).

Checked: every profile's settings resolve; ``fit`` returns a FitResult; samples are uint8 N x 3 x H x W; the same
seed gives the same samples (sampling twice, and refitting from scratch); a save/load round trip gives identical
samples; ``fit`` does not read the outlier labels (permuted labels give identical samples; oracles are exempt by
declaration); a fit interrupted after its first checkpoint and resumed equals an uninterrupted one (when the model
checkpoints at all).
"""

from __future__ import annotations

import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from bench.models import registry
from bench.config import PROFILE_NAMES
from bench.models.base import Checkpointer, FitConfig, FitResult, GenerativeModel
from bench.progress import Progress, null_progress

SIZE, N_INLIERS, N_OUTLIERS, N_SAMPLES, SEED = 16, 24, 8, 8, 3


@dataclass
class Item:
    name: str
    status: str  # "ok", "FAIL", "skip"
    detail: str = ""


@dataclass
class CheckReport:
    model: str
    origin: str
    items: list[Item] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if i.status == "FAIL"]

    def lines(self) -> list[str]:
        out = [f"check-model {self.model} ({self.origin})"]
        out += [f"  [{i.status:4s}] {i.name}" + (f": {i.detail}" if i.detail else "") for i in self.items]
        passed = sum(i.status == "ok" for i in self.items)
        verdict = "all checks passed" if not self.failed else f"{len(self.failed)} check(s) FAILED"
        out.append(f"{verdict} ({passed} ok, {sum(i.status == 'skip' for i in self.items)} skipped, "
                   f"{self.seconds:.1f} s)")  # fmt: skip
        return out


class _Interrupted(Exception):
    pass


class _InterruptingCheckpointer(Checkpointer):
    """Saves every time it is asked, and stops the fit right after the first save (a simulated kill)."""

    def __init__(self, path: Path, interrupt: bool):
        super().__init__(path, every_s=0.0)
        self.interrupt, self.saves = interrupt, 0

    def due(self) -> bool:
        return True

    def save(self, state: dict[str, Any]) -> None:
        super().save(state)
        self.saves += 1
        if self.interrupt:
            raise _Interrupted


def tiny_data() -> tuple[torch.Tensor, torch.Tensor]:
    from bench.datasets.synthetic import SyntheticPool

    faces = SyntheticPool("face", SEED, N_INLIERS)
    masked = SyntheticPool("masked_face", SEED, N_OUTLIERS)
    images = [faces.get(i, SIZE) for i in range(N_INLIERS)] + [masked.get(i, SIZE) for i in range(N_OUTLIERS)]
    order = np.random.default_rng(SEED).permutation(len(images))
    x = torch.from_numpy(np.stack(images)[order].transpose(0, 3, 1, 2).copy())
    labels = torch.tensor([False] * N_INLIERS + [True] * N_OUTLIERS)[torch.from_numpy(order)]
    return x, labels


def check(name: str, progress: Progress = null_progress) -> CheckReport:
    from bench import plugins

    t0 = time.perf_counter()
    spec = registry.get(name)
    report = CheckReport(name, f"{plugins.origin(spec.module)}, {spec.module}")
    items = report.items
    images, labels = tiny_data()
    tmp = Path(tempfile.mkdtemp(prefix="bench-check-"))

    def attempt(what: str, fn: Callable[[], str | None]) -> bool:
        try:
            detail = fn()
        except _Failed as e:
            items.append(Item(what, "FAIL", str(e)))
            return False
        except Exception as e:
            tb = traceback.extract_tb(e.__traceback__)
            where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
            items.append(Item(what, "FAIL", f"{type(e).__name__}: {e}{where}".replace("\n", " ")))
            return False
        items.append(Item(what, "ok", detail or ""))
        return True

    def profiles() -> str:
        for p in PROFILE_NAMES:
            spec.make_config(p)
        return ", ".join(PROFILE_NAMES)

    attempt("every profile's settings resolve", profiles)
    state: dict[str, Any] = {}

    def fitted(seed_labels: torch.Tensor, checkpoint: Checkpointer | None = None) -> GenerativeModel:
        torch.manual_seed(SEED)
        model = spec.build("smoke", SIZE)
        result = model.fit(images.clone(), seed_labels.clone(), FitConfig(seed=SEED, checkpoint=checkpoint), progress)
        state.setdefault("result", result)
        return model

    def fit_once() -> str:
        state["model"] = fitted(labels)
        result = state["result"]
        if not isinstance(result, FitResult):
            raise _Failed(f"fit returned {type(result).__name__}; return a bench.api.FitResult")
        return f"images_seen={result.images_seen}"

    if not attempt("fit returns a FitResult", fit_once):
        return _finish(report, t0)
    model: GenerativeModel = state["model"]

    def samples_ok() -> str:
        s = model.sample(N_SAMPLES, seed=1)
        if not isinstance(s, torch.Tensor) or s.dtype != torch.uint8 or tuple(s.shape) != (N_SAMPLES, 3, SIZE, SIZE):
            raise _Failed(f"sample(8) gave {getattr(s, 'dtype', type(s))} {tuple(getattr(s, 'shape', ()))}; "
                          f"need uint8 {(N_SAMPLES, 3, SIZE, SIZE)}")  # fmt: skip
        state["samples"] = s
        return f"uint8 {N_SAMPLES} x 3 x {SIZE} x {SIZE}"

    if not attempt("samples are uint8 N x 3 x H x W", samples_ok):
        return _finish(report, t0)
    reference = state["samples"]

    def same(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
        if not torch.equal(a, b):
            diff = (a.int() - b.int()).abs()
            raise _Failed(f"{what}: {int((diff > 0).sum())} of {diff.numel()} values differ (max {int(diff.max())})")

    def same_seed() -> str:
        same(model.sample(N_SAMPLES, seed=1), reference, "sampling twice with seed 1")
        same(fitted(labels).sample(N_SAMPLES, seed=1), reference, "refitting from scratch with the same seed")
        return "sampling twice, and refitting from scratch"

    attempt("same seed -> same samples", same_seed)

    def round_trip() -> str:
        model.save(tmp / "model.pt")
        same(GenerativeModel.load(tmp / "model.pt").sample(N_SAMPLES, seed=1), reference, "loaded model")
        return "save -> GenerativeModel.load -> identical samples"

    attempt("save/load round trip", round_trip)

    def labels_unused() -> str:
        permuted = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(7))]
        flipped = ~labels
        for what, fake in (("permuted", permuted), ("inverted", flipped)):
            same(fitted(fake).sample(N_SAMPLES, seed=1), reference, f"fit with {what} labels")
        return "permuted and inverted labels give identical samples"

    if spec.oracle:
        items.append(Item("fit does not read the outlier labels", "skip", "an oracle: reads them by design"))
    else:
        attempt("fit does not read the outlier labels", labels_unused)

    def resume() -> str:
        ckpt_path = tmp / "checkpoint.pt"
        first = _InterruptingCheckpointer(ckpt_path, interrupt=True)
        try:
            fitted(labels, first)
        except _Interrupted:
            pass
        if first.saves == 0:
            state["no_checkpoints"] = True
            return ""
        resumed = fitted(labels, _InterruptingCheckpointer(ckpt_path, interrupt=False))
        same(resumed.sample(N_SAMPLES, seed=1), reference, "resumed after the first checkpoint")
        return "interrupted after the first checkpoint, resumed: identical samples"

    ok = attempt("resume from a checkpoint equals an uninterrupted run", resume)
    if ok and state.get("no_checkpoints"):
        items[-1] = Item("resume from a checkpoint equals an uninterrupted run", "skip",
                         "the model never saves a checkpoint (FitConfig.checkpoint unused)")  # fmt: skip
    return _finish(report, t0)


class _Failed(Exception):
    pass


# Every item, in the order they run; an item after a failure that stops the run is listed as not checked.
ITEMS = ("every profile's settings resolve", "fit returns a FitResult", "samples are uint8 N x 3 x H x W",
         "same seed -> same samples", "save/load round trip", "fit does not read the outlier labels",
         "resume from a checkpoint equals an uninterrupted run")  # fmt: skip


def _finish(report: CheckReport, t0: float) -> CheckReport:
    seen = {i.name for i in report.items}
    report.items += [Item(name, "skip", "not checked: needs the failed item above") for name in ITEMS if name not in seen]
    report.seconds = time.perf_counter() - t0
    return report
