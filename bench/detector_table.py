"""How well each label-free detector finds the outliers of a split: the report's detector table, next to the
generation results. Computed once per (dataset, ratio, seed) split while the grid is prepared, for every cheap
registered detector (those that need no model training). The labels only score the detectors.

For each detector: AUC, and precision / recall / the outlier share left in the kept set when dropping the top
``f`` of its scores, at f = r (the oracle fraction, unknown to a user) and at fixed fractions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench import atomic
from bench.detectors import flag_metrics, top_fraction

FRACTIONS = (0.1, 0.2, 0.3, 0.4)


def table_path(out: Path, split: Any) -> Path:
    return Path(out) / "detectors" / f"{split.dataset}_r{split.ratio:g}_s{split.seed}_{split.split_hash[:10]}.csv"


def detector_rows(split: Any, seed: int) -> list[dict[str, Any]]:
    from bench import detectors, registry

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


def write_table(out: Path, split: Any, seed: int) -> Path:
    import pandas as pd

    path = table_path(out, split)
    if not path.exists():
        atomic.write_text(path, pd.DataFrame(detector_rows(split, seed)).to_csv(index=False))
    return path
