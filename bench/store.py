"""Results store: ``<out>/runs.csv`` (one row per finished cell) and the per-cell folders.

Only the process driving the grid appends to runs.csv, atomically (rewrite to a temp file, rename), so a
killed run leaves the file as it was after the last finished cell. Each cell's own ``done.json`` holds its row
too, so runs.csv can always be rebuilt from the cell folders.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import atomic

COLUMNS = (
    "dataset", "model", "ratio", "seed", "profile", "size", "n_inliers", "n_outliers",
    "pct_inliers", "fid", "fid_kind", "fd_classifier", "kid", "precision", "recall",
    "flag_precision", "flag_recall", "train_s", "sample_s", "eval_s", "img_per_s", "peak_rss_mb", "commit",
)  # fmt: skip
KEY = ("dataset", "model", "ratio", "seed", "profile")


@dataclass(frozen=True)
class Cell:
    dataset: str
    model: str
    ratio: float  # percent
    seed: int

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.model}/r{self.ratio:g}/s{self.seed}"

    def folder(self, out: Path) -> Path:
        return out / "cells" / self.dataset / self.model / f"r{self.ratio:g}" / f"s{self.seed}"


def runs_csv(out: Path) -> Path:
    return out / "runs.csv"


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _row_key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(_fmt(_num(row.get(k))) for k in KEY)


def _num(v: Any) -> Any:
    """Ratios/seeds may come back from CSV as strings; normalise so keys compare equal."""
    if isinstance(v, str):
        try:
            f = float(v)
            return int(f) if f.is_integer() else f
        except ValueError:
            return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def read_rows(out: Path) -> list[dict[str, str]]:
    path = runs_csv(out)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def append_row(out: Path, row: dict[str, Any]) -> None:
    """Add (or replace, same key) one cell's row; the file is rewritten atomically."""
    rows = [r for r in read_rows(out) if _row_key(r) != _row_key(row)]
    rows.append({c: _fmt(row.get(c)) for c in COLUMNS})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(runs_csv(out), buf.getvalue())


def read_frame(out: Path):
    """runs.csv as a pandas DataFrame (empty frame with the fixed columns when absent)."""
    import pandas as pd

    path = runs_csv(out)
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.read_csv(path)


def done_row(cell_dir: Path) -> dict[str, Any] | None:
    path = cell_dir / "done.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))["row"]
    except (json.JSONDecodeError, KeyError):
        return None
