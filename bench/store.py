"""Results store: per-cell folders (the truth) and ``<out>/runs.csv`` (an index of them).

A finished cell is a folder ``cells/<dataset>/<model>/r<ratio>/s<seed>/<config_digest[:12]>/`` holding ``done.json``
(its row), ``metrics.json``, ``config.json``, samples and model. ``runs.csv`` has one row per finished cell; only the
process driving a grid writes it, atomically and only when a row changes, so a killed run leaves it as it was after
the last finished cell and a rerun with nothing new writes nothing. ``load_rows`` checks it against the cells and
rebuilds it when it is missing, truncated, corrupt or out of date. Results folders exported without cells (e.g.
``docs/results-standin/``) are read from runs.csv alone; cells written before config digests (``done.json``
directly in ``s<seed>/``) are read too, and never reused.
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
from bench.errors import BenchError

COLUMNS = (
    "dataset", "model", "variant", "ratio", "seed", "profile", "size", "n_inliers", "n_outliers", "n_samples",
    "pct_inliers", "robustness", "pct_replay", "pct_replay_inliers", "fid", "fid_kind", "fd_classifier", "kid",
    "precision", "recall", "flag_precision", "flag_recall", "flag_auc", "filter_precision", "filter_recall",
    "filter_auc", "n_train_kept", "kind", "train_s", "sample_s", "eval_s", "img_per_s", "peak_rss_mb", "commit",
    "config_digest", "settings_digest",
)  # fmt: skip
NUMERIC = {
    "ratio", "seed", "size", "n_inliers", "n_outliers", "n_samples", "pct_inliers", "robustness", "pct_replay",
    "pct_replay_inliers", "fid", "fd_classifier", "kid", "precision", "recall", "flag_precision", "flag_recall",
    "flag_auc", "filter_precision", "filter_recall", "filter_auc", "n_train_kept", "train_s", "sample_s", "eval_s",
    "img_per_s", "peak_rss_mb",
}  # fmt: skip
LEGACY_DIGEST = "legacy"  # rows of cells written before config digests


@dataclass(frozen=True)
class Cell:
    dataset: str
    model: str
    ratio: float  # percent
    seed: int

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.model}/r{self.ratio:g}/s{self.seed}"

    def base(self, out: Path) -> Path:
        """The folder holding every variant of this cell (one sub-folder per config digest)."""
        return Path(out) / "cells" / self.dataset / self.model / f"r{self.ratio:g}" / f"s{self.seed}"

    def folder(self, out: Path, config_digest: str) -> Path:
        return self.base(out) / config_digest[:12]


def runs_csv(out: Path) -> Path:
    return Path(out) / "runs.csv"


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def done_row(cell_dir: Path) -> dict[str, Any] | None:
    """A finished cell's row, or None (not finished, or its done.json is unreadable)."""
    path = Path(cell_dir) / "done.json"
    try:
        row = json.loads(path.read_text(encoding="utf-8"))["row"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return row if isinstance(row, dict) else None


def _with_defaults(row: dict[str, Any]) -> dict[str, Any]:
    """Rows of older versions lack the newer columns: legacy digest, empty variant, kind "model"."""
    out = dict(row)
    out.setdefault("config_digest", LEGACY_DIGEST)
    out.setdefault("settings_digest", LEGACY_DIGEST)
    out.setdefault("variant", "")
    out.setdefault("kind", "model")
    return out


def finished_variants(out: Path, cell: Cell) -> dict[str, dict[str, Any]]:
    """config_digest -> row of every finished variant of ``cell`` (legacy cells under ``legacy``)."""
    base = cell.base(out)
    found = {}
    if not base.is_dir():
        return found
    legacy = done_row(base)
    if legacy is not None:
        found[LEGACY_DIGEST] = _with_defaults(legacy)
    for sub in sorted(p for p in base.iterdir() if p.is_dir()):
        row = done_row(sub)
        if row is not None:
            row = _with_defaults(row)
            found[row["config_digest"]] = row
    return found


def cell_rows(out: Path) -> list[dict[str, Any]]:
    """Every finished cell's own row (the truth), legacy layout included."""
    cells = Path(out) / "cells"
    rows = []
    for path in sorted(cells.glob("*/*/*/*/done.json")) + sorted(cells.glob("*/*/*/*/*/done.json")):
        row = done_row(path.parent)
        if row is not None:
            rows.append(_with_defaults(row))
    return rows


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: _fmt(r.get(c)) for c in COLUMNS} for r in rows)
    return buf.getvalue()


class IndexUnreadable(BenchError):
    """runs.csv cannot be parsed."""


def read_index(out: Path) -> list[dict[str, str]] | None:
    """runs.csv's rows as strings; None when absent; IndexUnreadable when it is not a readable index."""
    path = runs_csv(out)
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        rows = list(reader)
        header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error, OSError) as e:
        raise IndexUnreadable(f"{path} is not a readable CSV ({type(e).__name__})") from None
    missing = [c for c in ("dataset", "model", "ratio", "seed") if c not in header]
    if missing:
        raise IndexUnreadable(f"{path} lacks the column(s) {', '.join(missing)}")
    for i, r in enumerate(rows, start=2):
        if None in r or any(v is None for v in r.values()):
            raise IndexUnreadable(f"{path} line {i} has a different number of fields than the header")
        for c in NUMERIC & set(header):
            if r[c] != "":
                try:
                    float(r[c])
                except ValueError:
                    raise IndexUnreadable(f"{path} line {i}: {c} = {r[c]!r} is not a number") from None
    return rows


def _row_identity(row: dict[str, Any]) -> tuple:
    digest = row.get("config_digest") or LEGACY_DIGEST
    if digest == LEGACY_DIGEST:
        return (LEGACY_DIGEST, row.get("dataset"), row.get("model"), _fmt(_num(row.get("ratio"))),
                _fmt(_num(row.get("seed"))), row.get("profile"))  # fmt: skip
    return (str(digest),)


def _num(v: Any) -> Any:
    if isinstance(v, str):
        try:
            f = float(v)
            return int(f) if f.is_integer() else f
        except ValueError:
            return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def write_index(out: Path, rows: list[dict[str, Any]]) -> bool:
    """Write runs.csv with ``rows`` unless it already holds exactly those rows (in any order); True if written."""
    path = runs_csv(out)
    if path.exists():
        try:
            current = read_index(out) or []
            have = sorted(tuple(r.get(c, "") for c in COLUMNS) for r in current)
            if have == sorted(tuple(_fmt(r.get(c)) for c in COLUMNS) for r in rows):
                return False
        except IndexUnreadable:
            pass
    atomic.write_text(path, _csv_text(rows))
    return True


def append_row(out: Path, row: dict[str, Any]) -> None:
    """Add (or replace, same cell) one cell's row; runs.csv is rewritten atomically, and only if it changes."""
    try:
        current = read_index(out) or []
    except IndexUnreadable:
        current = [_with_defaults(r) for r in cell_rows(out)]  # a damaged index: rebuild it from the cells
    rows = [r for r in current if _row_identity(r) != _row_identity(row)]
    write_index(out, rows + [{c: _fmt(row.get(c)) for c in COLUMNS}])


@dataclass
class LoadedRows:
    rows: list[dict[str, Any]]
    note: str | None  # one line when runs.csv had to be rebuilt
    from_cells: bool  # False: read from runs.csv alone (no cell folders)


def load_rows(out: Path, repair: bool = True) -> LoadedRows:
    """The rows of every finished cell. The cells' own records are the truth: runs.csv is checked against them and
    rebuilt (when ``repair``) if it is missing, corrupt or differs. Without cell folders, runs.csv is the record."""
    out = Path(out)
    cells = cell_rows(out)
    try:
        index = read_index(out)
        problem = None
    except IndexUnreadable as e:
        index, problem = None, str(e)
    if not cells:
        if (out / "cells").is_dir() or index is None:
            if problem:
                raise BenchError(f"{problem}, and {out} holds no cell folders to rebuild it from")
            return LoadedRows([], None, True)
        return LoadedRows([_with_defaults(r) for r in index], None, False)
    note = None
    if repair and write_index(out, cells):
        why = f"unreadable ({problem})" if problem else "missing" if index is None else "out of date (edited or cut?)"
        note = f"note: runs.csv was {why}; rebuilt it from the {len(cells)} cell records"
    return LoadedRows(cells, note, True)


def read_frame(out: Path):
    """The finished rows as a pandas DataFrame with numeric columns typed (checked against the cells)."""
    return frame(load_rows(out, repair=False).rows)


def frame(rows: list[dict[str, Any]]):
    import pandas as pd

    df = pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows], columns=list(COLUMNS))
    for c in NUMERIC:
        df[c] = pd.to_numeric(df[c].replace("", None), errors="coerce")
    for c in ("variant", "kind", "profile", "fid_kind", "commit", "config_digest", "settings_digest"):
        df[c] = df[c].fillna("").astype(str)
    df.loc[df.kind == "", "kind"] = "model"
    return df
