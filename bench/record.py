"""The cell record: what one finished cell says about itself, typed, in one place.

A :class:`CellRecord` is written once by the store (``done.json``'s ``row``, ``metrics.json``'s ``row`` and a line
of ``runs.csv``) and read back by everything else (reports, the end-of-run table, ``load_results``). Its fields,
flattened in declaration order, *are* the runs.csv columns: the scores come from :class:`bench.scoring.Score`, so a
new metric is a field and its computation in ``bench/scoring.py`` and nothing else.

``CellRecord.from_row`` is the only way back from a row (a done.json, or a runs.csv line of an exported folder): it
checks every value's type and every name it may later build a path from, so a damaged or hand-edited record is
named and refused instead of printed as a number.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from bench.scoring import Score

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")  # a model, dataset or external sample set name
DIGEST_PATTERN = re.compile(r"^[0-9a-f]{64}$")
LEGACY_DIGEST = "legacy"  # rows of cells written before config digests (and the default of rows that predate them)


class RecordError(ValueError):
    """A row that is not a valid cell record (the message names the field)."""


@dataclass(frozen=True)
class Cell:
    """Which cell: a dataset, a model, a training outlier ratio (percent) and a seed."""

    dataset: str
    model: str
    ratio: float  # percent
    seed: int

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.model}/r{self.ratio:g}/s{self.seed}"


@dataclass(frozen=True)
class SetAside:
    """What a robust model set aside while training, against the outlier labels (reporting only)."""

    flag_precision: float | None = None
    flag_recall: float | None = None
    flag_auc: float | None = None


@dataclass(frozen=True)
class FilterReport:
    """What a detector filter dropped before training, against the outlier labels (reporting only)."""

    filter_precision: float | None = None
    filter_recall: float | None = None
    filter_auc: float | None = None
    n_train_kept: int | None = None
    filter_fraction: float | None = None  # the fraction dropped (estimated for DETECTOR:auto)
    filter_fit_s: float | None = None  # seconds the detector's fit (or self-trim's rounds) took, once per split


@dataclass(frozen=True)
class Timing:
    train_s: float | None = None
    sample_s: float | None = None
    eval_s: float | None = None
    img_per_s: float | None = None
    peak_rss_mb: float | None = None


@dataclass(frozen=True)
class CellRecord:
    """One finished cell. Nested parts are flattened into columns in declaration order (see ``COLUMNS``)."""

    dataset: str
    model: str
    variant: str
    ratio: float
    seed: int
    profile: str
    size: int | None
    n_inliers: int | None
    n_outliers: int | None
    n_samples: int | None
    score: Score
    set_aside: SetAside = field(default_factory=SetAside)
    filter: FilterReport = field(default_factory=FilterReport)
    kind: str = "model"  # "model", "reference" or "external"
    timing: Timing = field(default_factory=Timing)
    commit: str = ""
    protocol_digest: str = ""  # what makes rows comparable (bench/identity.py); "" in rows written before it
    config_digest: str = LEGACY_DIGEST
    settings_digest: str = LEGACY_DIGEST

    @property
    def cell(self) -> Cell:
        return Cell(self.dataset, self.model, self.ratio, self.seed)

    def to_row(self) -> dict[str, Any]:
        """The flat row: one key per runs.csv column."""
        row: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                row.update({k: getattr(value, k) for k in _columns_of(type(value))})
            else:
                row[f.name] = value
        return row

    @classmethod
    def from_row(cls, row: Any) -> CellRecord:
        """A record from a flat row (done.json or a runs.csv line: numbers may be strings, "" is empty). Rows of
        older versions lack the newer columns: legacy digest, empty variant, kind "model". RecordError names the
        first bad field."""
        if not isinstance(row, dict):
            raise RecordError(f"the row is a {type(row).__name__}, not a JSON object")
        row = {"variant": "", **row}  # rows written before variants
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            part = _PARTS.get(f.name)
            if part is not None:
                values[f.name] = part(**{g.name: _value(g.name, row.get(g.name), t, g.default)
                                         for g, t in _column_fields(part)})  # fmt: skip
            else:
                values[f.name] = _value(f.name, row.get(f.name), _HINTS[f.name], f.default)
        record = cls(**values)
        record.check()
        return record

    def check(self) -> None:
        """Names a path is built from, ranges and digests; RecordError on the first that is wrong."""
        for name in ("dataset", "model"):
            if not NAME_PATTERN.match(getattr(self, name)):
                raise RecordError(f"{name} {getattr(self, name)!r} is not a valid name")
        if not 0 <= self.ratio < 100:
            raise RecordError(f"ratio {self.ratio:g} is outside [0, 100)")
        if self.seed < 0:
            raise RecordError(f"seed {self.seed} is negative")
        for name in ("config_digest", "settings_digest"):
            value = getattr(self, name)
            if value != LEGACY_DIGEST and not DIGEST_PATTERN.match(value):
                raise RecordError(f"{name} {value!r} is not a sha256 digest")
        if self.protocol_digest and not DIGEST_PATTERN.match(self.protocol_digest):
            raise RecordError(f"protocol_digest {self.protocol_digest!r} is not a sha256 digest")


def _columns_of(part: type) -> list[str]:
    return [f.name for f in dataclasses.fields(part) if f.metadata.get("column", True)]


def _column_fields(part: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(part)
    return [(f, hints[f.name]) for f in dataclasses.fields(part) if f.metadata.get("column", True)]


_HINTS = typing.get_type_hints(CellRecord)
_PARTS = {name: t for name, t in _HINTS.items() if dataclasses.is_dataclass(t)}


def _base_type(hint: Any) -> tuple[type, bool]:
    """``float | None`` -> (float, True); ``str`` -> (str, False)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def _value(name: str, raw: Any, hint: Any, default: Any = dataclasses.MISSING) -> Any:
    """``raw`` as the field's type; a missing value is None where the field is optional, else its default."""
    kind, optional = _base_type(hint)
    if raw is None or (raw == "" and kind is not str):
        if optional:
            return None
        if default is not dataclasses.MISSING:
            return default
        raise RecordError(f"{name} is missing")
    if kind is str:
        if not isinstance(raw, str):
            raise RecordError(f"{name} = {raw!r} is not text")
        return raw
    if isinstance(raw, bool):
        raise RecordError(f"{name} = {raw!r} is not a number")
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raise RecordError(f"{name} = {raw!r} is not a number") from None
    if not isinstance(raw, (int, float)):
        raise RecordError(f"{name} = {raw!r} is not a number")
    if isinstance(raw, float) and not math.isfinite(raw):
        if optional and math.isnan(raw):
            return None
        raise RecordError(f"{name} = {raw!r} is not a finite number")
    if kind is int:
        if float(raw) != int(raw):
            raise RecordError(f"{name} = {raw!r} is not a whole number")
        return int(raw)
    return float(raw)


def _flat_columns() -> tuple[str, ...]:
    cols: list[str] = []
    for f in dataclasses.fields(CellRecord):
        part = _PARTS.get(f.name)
        cols += _columns_of(part) if part is not None else [f.name]
    return tuple(cols)


def _numeric_columns() -> frozenset[str]:
    out = set()
    for f in dataclasses.fields(CellRecord):
        part = _PARTS.get(f.name)
        typed = _column_fields(part) if part is not None else [(f, _HINTS[f.name])]
        out |= {g.name for g, t in typed if _base_type(t)[0] in (int, float)}
    return frozenset(out)


COLUMNS = _flat_columns()  # the runs.csv header, in order
NUMERIC = _numeric_columns()
