"""The results store: the one owner of every path under ``--out`` and the only writer of cells and of runs.csv.

Layout (nothing else under ``--out`` is written by the harness)::

    runs.csv                                          one line per finished cell (an index of the cells)
    cells/<dataset>/<model>/r<ratio>/s<seed>/<digest[:12]>/
        config.json  checkpoint.pt  model.pt  samples.npz  samples.png  metrics.json  done.json (written last)
    cache/                                            content-keyed splits, classifiers, features (handed to them)
    f1/<dataset>_s<seed>_<heldout hash>.csv           Table 5 of one held-out protocol
    validity/<dataset>_s<seed>_<heldout hash>.csv     the classifier's validity check (bench/validity.py)
    detectors/<dataset>_r<ratio>_s<seed>_<hash>.csv   the label-free detectors' table of one split
    report/                                           `bench report`'s tables and figures
    previews/                                         `bench data build`'s preview grids
    .runs.csv.lock                                    taken while runs.csv is rewritten (two drivers take turns)

Invariants:

- A cell is finished when its ``done.json`` holds a valid :class:`~bench.record.CellRecord` that agrees with its
  folder (dataset, model, ratio, seed and digest are the folder's), with ``metrics.json`` and with ``config.json``.
  Anything else is named in a note (:class:`CellProblem`) and never read as a number; the grid recomputes it.
- runs.csv is rebuilt from the cells, but never so that it loses a row: a folder whose runs.csv lists rows with no
  cell folder (an exported results folder, like ``docs/results-standin/*``) is read from runs.csv and refused as a
  place to write cells. A file at runs.csv that is not a results index is never overwritten.
- Every write is atomic (``bench/atomic.py``); only the process driving a grid writes runs.csv, and only when a row
  changes, so a killed run loses nothing that had finished and a rerun with nothing new writes nothing.
- Cells written before config digests (``done.json`` directly in ``s<seed>/``) are read, never reused.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import atomic
from bench.errors import BenchError
from bench.record import COLUMNS, LEGACY_DIGEST, NUMERIC, Cell, CellRecord, RecordError

__all__ = ["ResultsStore", "Cell", "CellRecord", "CellProblem", "Loaded", "frame", "read_frame", "COLUMNS", "NUMERIC",
           "LEGACY_DIGEST"]  # fmt: skip

INDEX_KEYS = ("dataset", "model", "ratio", "seed")  # the columns that make a CSV a results index


@dataclass(frozen=True)
class CellProblem:
    """A cell folder whose records cannot be trusted: never read as a number."""

    folder: Path
    why: str

    def line(self, out: Path) -> str:
        try:
            where = self.folder.relative_to(out)
        except ValueError:
            where = self.folder
        return f"note: cell {where} left out: {self.why} (delete the folder to recompute it)"


@dataclass
class Loaded:
    records: list[CellRecord]
    notes: list[str]  # one line each: a rebuilt index, a cell left out, rows read from runs.csv alone
    from_cells: bool  # False: an exported folder, read from runs.csv alone


class NotAnIndex(BenchError):
    """The file at runs.csv is not a results index (or not a file): never overwritten."""


class IndexDamaged(BenchError):
    """runs.csv has the index's header but a line that does not parse."""


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _csv_line(record: CellRecord) -> dict[str, str]:
    row = record.to_row()
    return {c: _fmt(row[c]) for c in COLUMNS}


def _csv_text(lines: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
    return buf.getvalue()


def _identity(row: dict[str, Any]) -> tuple:
    """What makes two index lines the same cell: the config digest, or for legacy rows the cell and profile."""
    digest = row.get("config_digest") or LEGACY_DIGEST
    if digest != LEGACY_DIGEST:
        return (str(digest),)
    return (LEGACY_DIGEST, row.get("dataset"), row.get("model"), _fmt(_num(row.get("ratio"))),
            _fmt(_num(row.get("seed"))), row.get("profile"))  # fmt: skip


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


class ResultsStore:
    """One results folder (``--out``)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)

    # ---------------------------------------------------------------------------------------------- paths

    @property
    def runs_csv(self) -> Path:
        return self.out / "runs.csv"

    @property
    def cells_dir(self) -> Path:
        return self.out / "cells"

    @property
    def cache_dir(self) -> Path:
        """Content-keyed derived data (splits, classifiers, features, detector scores), named by their makers."""
        return self.out / "cache"

    @property
    def report_dir(self) -> Path:
        return self.out / "report"

    @property
    def f1_dir(self) -> Path:
        return self.out / "f1"

    @property
    def detectors_dir(self) -> Path:
        return self.out / "detectors"

    def cell_base(self, cell: Cell) -> Path:
        """The folder holding every variant of ``cell`` (one sub-folder per config digest)."""
        return self.cells_dir / cell.dataset / cell.model / f"r{cell.ratio:g}" / f"s{cell.seed}"

    def cell_folder(self, cell: Cell, config_digest: str) -> Path:
        if config_digest == LEGACY_DIGEST:
            return self.cell_base(cell)
        return self.cell_base(cell) / config_digest[:12]

    def f1_table(self, split: Any) -> Path:
        return self.f1_dir / f"{split.dataset}_s{split.seed}_{split.heldout_hash[:10]}.csv"

    @property
    def validity_dir(self) -> Path:
        return self.out / "validity"

    def validity_table(self, split: Any) -> Path:
        return self.validity_dir / f"{split.dataset}_s{split.seed}_{split.heldout_hash[:10]}.csv"

    def detector_table(self, split: Any) -> Path:
        return self.detectors_dir / f"{split.dataset}_r{split.ratio:g}_s{split.seed}_{split.split_hash[:10]}.csv"

    def preview(self, split: Any) -> Path:
        """`bench data build`'s preview grid of a split."""
        return self.out / "previews" / f"{split.dataset}_r{split.ratio:g}_s{split.seed}_{split.size}px.png"

    @classmethod
    def of_cell_folder(cls, folder: Path) -> ResultsStore:
        """The store a cell folder belongs to (``OUT/cells/<dataset>/<model>/r<ratio>/s<seed>/<digest>``)."""
        folder = Path(folder).resolve()
        parents = folder.parents
        return cls(parents[5] if len(parents) > 5 else folder)

    # ---------------------------------------------------------------------------------------------- reading cells

    def read_cell(self, folder: Path) -> CellRecord | CellProblem | None:
        """A finished cell's record, a :class:`CellProblem` when its records do not agree, or None (not finished)."""
        folder = Path(folder)
        done = folder / "done.json"
        if not done.exists():
            return None
        try:
            record = CellRecord.from_row(read_json(done).get("row"))
        except (RecordError, JsonUnreadable) as e:
            return CellProblem(folder, f"done.json: {e}")
        expected = self.cell_folder(record.cell, record.config_digest)
        if expected.resolve() != folder.resolve():
            return CellProblem(folder, f"done.json describes {record.cell.key} with digest {record.config_digest[:12]},"
                                       f" not this folder (copied or moved?)")  # fmt: skip
        if record.config_digest == LEGACY_DIGEST:
            return record
        try:
            metrics_row = CellRecord.from_row(read_json(folder / "metrics.json").get("row"))
        except (RecordError, JsonUnreadable) as e:
            return CellProblem(folder, f"metrics.json: {e}")
        if metrics_row != record:
            differ = [k for k, v in record.to_row().items() if metrics_row.to_row().get(k) != v]
            return CellProblem(folder, f"done.json and metrics.json disagree on {', '.join(differ[:3])} (edited?)")
        try:
            config_digest = read_json(folder / "config.json").get("config_digest")
        except JsonUnreadable as e:
            return CellProblem(folder, f"config.json: {e}")
        if config_digest != record.config_digest:
            return CellProblem(folder, "config.json and done.json name different config digests")
        return record

    def read_config(self, record: CellRecord) -> dict[str, Any]:
        """A finished cell's config.json (provenance, split, settings); {} when unreadable."""
        try:
            return read_json(self.cell_folder(record.cell, record.config_digest) / "config.json")
        except JsonUnreadable:
            return {}

    def finished(self, folder: Path) -> CellRecord | None:
        """The record of a finished, consistent cell at ``folder``, else None."""
        found = self.read_cell(folder)
        return found if isinstance(found, CellRecord) else None

    def finished_variants(self, cell: Cell) -> dict[str, CellRecord]:
        """config_digest -> record of every finished variant of ``cell`` (the legacy cell under ``legacy``)."""
        base = self.cell_base(cell)
        found: dict[str, CellRecord] = {}
        if not base.is_dir():
            return found
        for folder in [base] + sorted(p for p in base.iterdir() if p.is_dir()):
            record = self.finished(folder)
            if record is not None:
                found[record.config_digest] = record
        return found

    def _cell_folders(self) -> Iterator[Path]:
        for done in sorted(self.cells_dir.glob("*/*/*/*/done.json")) + sorted(
            self.cells_dir.glob("*/*/*/*/*/done.json")
        ):
            yield done.parent

    def scan(self) -> tuple[list[CellRecord], list[CellProblem]]:
        """Every finished cell's record, and every cell folder whose records cannot be trusted."""
        records, problems = [], []
        for folder in self._cell_folders():
            found = self.read_cell(folder)
            if isinstance(found, CellRecord):
                records.append(found)
            elif isinstance(found, CellProblem):
                problems.append(found)
        return records, problems

    # ---------------------------------------------------------------------------------------------- the index

    def read_index(self) -> list[dict[str, str]] | None:
        """runs.csv's lines as strings; None when absent. NotAnIndex / IndexDamaged say why it cannot be read."""
        path = self.runs_csv
        if not path.exists() and not path.is_symlink():
            return None
        if not path.is_file():
            raise NotAnIndex(f"{path} is not a file: move it away (the results index is written there)")
        try:
            text = path.read_text(encoding="utf-8")
            reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
            header = reader.fieldnames or []
        except (UnicodeDecodeError, csv.Error, OSError) as e:
            raise NotAnIndex(
                f"{path} is not a readable CSV ({type(e).__name__}): move it away or pass another --out"
            ) from None
        missing = [c for c in INDEX_KEYS if c not in header]
        if missing:
            raise NotAnIndex(f"{path} is not a results index (no {', '.join(missing)} column): move it away or pass "
                             f"another --out")  # fmt: skip
        try:
            rows = list(reader)
        except csv.Error as e:
            raise IndexDamaged(f"{path} is damaged ({e})") from None
        for i, r in enumerate(rows, start=2):
            if None in r or any(v is None for v in r.values()):
                raise IndexDamaged(f"{path} line {i} has a different number of fields than the header")
            for c in NUMERIC & set(header):
                if r[c] != "":
                    try:
                        float(r[c])
                    except ValueError:
                        raise IndexDamaged(f"{path} line {i}: {c} = {r[c]!r} is not a number") from None
        return rows

    def _index_records(self, rows: list[dict[str, str]]) -> list[CellRecord]:
        records = []
        for i, row in enumerate(rows, start=2):
            try:
                records.append(CellRecord.from_row(row))
            except RecordError as e:
                raise BenchError(f"{self.runs_csv} line {i}: {e}: fix or remove that line") from None
        return records

    def _orphans(self, index: list[dict[str, str]], cells: list[CellRecord]) -> list[dict[str, str]]:
        """Index lines whose cell is not among ``cells`` and whose folder is gone: the only record of a result."""
        have = {_identity(r.to_row()) for r in cells}
        orphans = []
        for row in index:
            if _identity(row) in have:
                continue
            try:
                record = CellRecord.from_row(row)
            except RecordError:
                orphans.append(row)
                continue
            if not self.cell_folder(record.cell, record.config_digest).is_dir():
                orphans.append(row)
        return orphans

    def write_index(self, records: list[CellRecord]) -> bool:
        """Write runs.csv with ``records`` unless it already holds exactly those lines (in any order)."""
        lines = [_csv_line(r) for r in records]
        try:
            current = self.read_index()
        except IndexDamaged:
            current = None
        if current is not None:
            have = sorted(tuple(r.get(c, "") for c in COLUMNS) for r in current)
            if have == sorted(tuple(line[c] for c in COLUMNS) for line in lines):
                return False
        atomic.write_text(self.runs_csv, _csv_text(lines))
        return True

    def load(self, repair: bool = True) -> Loaded:
        """Every finished cell's record. The cells are the truth: runs.csv is checked against them and rebuilt (when
        ``repair``) if it is missing, damaged or differs, unless that would drop a line with no cell folder. Without
        cell folders, runs.csv is the record (checked like a done.json)."""
        cells, problems = self.scan()
        notes = [p.line(self.out) for p in problems]
        try:
            index, damaged = self.read_index(), None
        except IndexDamaged as e:
            index, damaged = None, str(e)
        if not cells:
            if damaged and not self.cells_dir.is_dir():
                raise BenchError(f"{damaged}, and {self.out} holds no cell folders to rebuild it from")
            if index and not self.cells_dir.is_dir():
                notes.append("note: no cell folders here: rows are read from runs.csv as recorded")
                return Loaded(self._index_records(index), notes, False)
        orphans = self._orphans(index or [], cells)
        if orphans:
            notes.append(f"note: runs.csv lists {len(orphans)} row(s) with no cell folder; left as it is (those rows "
                         f"are not in this report; remove them from runs.csv to let it be rebuilt)")  # fmt: skip
        elif repair and cells and not problems and self.write_index(cells):
            why = f"damaged ({damaged})" if damaged else "missing" if index is None else "out of date (edited or cut?)"
            notes.insert(0, f"note: runs.csv was {why}; rebuilt it from the {len(cells)} cell records")
        return Loaded(cells, notes, True)

    # ---------------------------------------------------------------------------------------------- writing

    def check_writable(self) -> None:
        """Cells may be written here: the folder can be created and written, runs.csv (if any) is this store's
        index, and it lists no row that has no cell folder. Checked before any work."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / ".bench-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except (OSError, ValueError) as e:
            raise BenchError(f"cannot write results to --out {self.out}: {getattr(e, 'strerror', None) or e} "
                             f"(pass a writable folder)") from None  # fmt: skip
        try:
            index = self.read_index()
        except IndexDamaged:
            return  # rebuilt from the cells when the first cell finishes
        if not index:
            return
        cells, _ = self.scan()
        orphans = self._orphans(index, cells)
        if orphans:
            what = "an exported results folder" if not self.cells_dir.is_dir() else "cells deleted by hand?"
            raise BenchError(
                f"{self.runs_csv} lists {len(orphans)} row(s) with no cell folder ({what}); writing "
                f"cells here could lose them: pass another --out, or remove those rows from runs.csv"
            )

    def begin_cell(self, folder: Path, config: dict[str, Any]) -> None:
        """Start (or resume) a cell: a done.json that is not this cell's record goes, then config.json is written."""
        stale = folder / "done.json"
        if stale.exists() and self.finished(folder) is None:
            stale.unlink()
        atomic.write_json(folder / "config.json", config)

    def write_samples(self, folder: Path, samples: Any, grid_samples: int) -> None:
        from bench.image_grid import save_grid

        with atomic.atomic_path(folder / "samples.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, samples=samples.numpy())
        save_grid(folder / "samples.png", samples[:grid_samples], nrow=10)

    def finish_cell(self, folder: Path, record: CellRecord, details: dict[str, Any]) -> None:
        """metrics.json (``details`` + the record), then done.json: from here on the cell is finished."""
        row = record.to_row()
        atomic.write_json(folder / "metrics.json", {**details, "row": row})
        atomic.write_json(folder / "done.json", {"row": row})

    def write_table(self, path: Path, table: Any) -> None:
        """A derived table (Table 5, a detector table) at one of this store's paths, as CSV."""
        if self.out.resolve() not in Path(path).resolve().parents:
            raise ValueError(f"{path} is not inside {self.out}")
        atomic.write_text(path, table.to_csv(index=False))

    def remove_cell(self, folder: Path) -> None:
        """Delete a cell folder (a replaced external sample set) and its index line."""
        record = self.finished(folder)
        shutil.rmtree(folder)
        if record is not None:
            self._drop_from_index(record)

    def add_to_index(self, *records: CellRecord) -> None:
        """Add (or replace, same cell) cells' lines; runs.csv is rewritten atomically, and only if it changes. Two
        processes driving grids on one folder take turns (a lock file), so neither loses the other's line."""
        if records:
            self._update_index(records, drop=())

    def _drop_from_index(self, record: CellRecord) -> None:
        self._update_index((), drop=(record,))

    def _update_index(self, add: tuple[CellRecord, ...], drop: tuple[CellRecord, ...]) -> None:
        with self._index_lock():
            try:
                current = [CellRecord.from_row(r) for r in self.read_index() or []]
            except (IndexDamaged, RecordError):
                current, _ = self.scan()  # a damaged index: rebuilt from the cells
            gone = {_identity(r.to_row()) for r in (*add, *drop)}
            self.write_index([r for r in current if _identity(r.to_row()) not in gone] + list(add))

    @contextlib.contextmanager
    def _index_lock(self) -> Iterator[None]:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / ".runs.csv.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @staticmethod
    def claim_file(folder: Path) -> Path:
        """The claim a running cell holds on its folder (``bench/claims.py``), so two runs never compute it twice."""
        return Path(folder) / "claim.json"


class JsonUnreadable(Exception):
    """A record file that is missing, not JSON, or not a JSON object (the message says which)."""


def read_json(path: Path) -> dict[str, Any]:
    """A cell's JSON record file as a dict, or JsonUnreadable("missing" / "not readable JSON" / "not a JSON object")."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JsonUnreadable("missing") from None
    except (OSError, ValueError):
        raise JsonUnreadable("not readable JSON") from None
    if not isinstance(data, dict):
        raise JsonUnreadable("not a JSON object")
    return data


def read_frame(out: str | Path):
    """The finished cells of ``out`` as a DataFrame (read only: runs.csv is checked, never rewritten)."""
    return frame(ResultsStore(out).load(repair=False).records)


def frame(records: list[CellRecord]):
    """Records as a pandas DataFrame, one column per runs.csv column, numeric columns typed."""
    import pandas as pd

    df = pd.DataFrame([r.to_row() for r in records], columns=list(COLUMNS))
    for c in NUMERIC:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    for c in ("variant", "kind", "profile", "fid_kind", "commit", "config_digest", "settings_digest"):
        df[c] = df[c].fillna("").astype(str)
    df.loc[df.kind == "", "kind"] = "model"
    return df
