"""How well each label-free detector finds the outliers of a split: the report's detector table, next to the
generation results. Computed once per (dataset, ratio, seed) split while the grid is prepared, for every cheap
registered detector (those that need no model training). The labels only score the detectors.

For each detector: AUC, and precision / recall / the outlier share left in the kept set when dropping the top
``f`` of its scores, at f = r (the oracle fraction, unknown to a user) and at fixed fractions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.detectors import flag_metrics, top_fraction
from bench.store import ResultsStore

FRACTIONS = (0.1, 0.2, 0.3, 0.4)


def detector_rows(split: Any, seed: int) -> list[dict[str, Any]]:
    from bench import detectors
    from bench.models import registry

    registry.names()  # model modules register their own detectors
    labels = split.train_is_outlier.bool()
    r = float(labels.float().mean())
    rows = []
    for name in detectors.names():
        spec = detectors.get(name)
        if not spec.cheap:
            continue
        scores = spec.score(split.train_images, spec.make_params(), seed)
        auc = flag_metrics(labels, 0.0, scores=scores, flagged=torch.zeros_like(labels))["auc"]
        for f in ((r,) if r > 0 else ()) + FRACTIONS:
            dropped = top_fraction(scores, f)
            m = flag_metrics(labels, f, scores=None, flagged=dropped)
            kept = ~dropped
            rows.append({
                "dataset": split.dataset, "ratio": split.ratio, "seed": split.seed, "detector": name,
                "fraction": round(f, 6), "oracle_fraction": f == r, "auc": auc, "precision": m["precision"],
                "recall": m["recall"], "kept_outlier_share": float(labels[kept].float().mean()),
                "inliers_dropped": int((dropped & ~labels).sum()),
            })  # fmt: skip
    return rows


def write_table(store: ResultsStore, split: Any, seed: int) -> Path:
    import pandas as pd

    path = store.detector_table(split)
    if not path.exists():
        store.write_table(path, pd.DataFrame(detector_rows(split, seed)))
    return path


@dataclass
class TableJob:
    """Plain data for a worker: the detector table of one cached split (runs beside the cells, in the same pool)."""

    out: str
    profile: dict[str, Any]
    dataset: str
    ratio: float
    seed: int
    data_root: str | None
    plugins: list[str]
    jobs: int = 1

    @property
    def key(self) -> str:
        return f"detector table {self.dataset}/r{self.ratio:g}/s{self.seed}"


def run_table_job(job: TableJob) -> None:
    from bench import loading
    from bench.cell import open_split, set_threads
    from bench.config import Profile
    from bench.progress import null_progress

    loading.load_all(job.plugins)
    profile = Profile.from_dict(job.profile)
    set_threads(profile.run.threads, job.jobs)
    store = ResultsStore(job.out)
    split = open_split(profile, job.dataset, job.ratio, job.seed, store, job.data_root, null_progress)
    write_table(store, split, job.seed)
