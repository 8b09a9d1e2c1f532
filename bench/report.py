"""``bench report``: the paper's tables (% inliers, FID or its fallback, Table 5), the robustness index, Fig. 4, sample
grids and the self-recognition / filter tables, for every dataset in a results folder, from the cells' own records.

Each table line is one *configuration* (dataset x settings digest: a model with its settings, or one of its
variants, or a reference generator, or an external sample set); a cell is the mean over seeds with a 95 % t-interval
when there are several. Rows of different configurations are never averaged. The paper's values and our difference
appear only where a comparison means something: real (non-synthetic) data under the cpu or paper profile, and only
for datasets that registered paper values. Reference generators are listed after a separator and drawn dashed.

Rows of different *protocols* (``protocol_digest``, bench/identity.py: the data's content fingerprint, the data and
evaluation settings and the profile) never share a table, a figure row or an average: a dataset with several
protocols (``bench run --data-root`` of another folder into the same ``--out``) gets one set of tables per protocol
(``table1_<protocol[:8]>``), each caption naming its data by dataset and content fingerprint (never a path). Rows
without a protocol (written before protocol digests) form one group, as before.

Per section (a dataset under one protocol) the report also reads the robustness index the way bench/headline.py does:
a verdict table (index, recall, coverage, the flags that withhold "robust", the verdict), a capacity table (the
capacity control's and the reconstruction's share, where measured) and the classifier's validity table (OUT/validity,
bench/validity.py), with a loud line atop the section when its classifier failed the check.

Besides the tables, the report writes what it read that is not in runs.csv (:data:`EXPORTED`): ``f1.csv`` (Table 5's
rows), ``detectors.csv`` (the detector tables' rows), ``data.json`` (each protocol's data: dataset, content
fingerprint, synthetic or not) and ``validity.csv`` (the validity tables' rows). A folder holding runs.csv and those
files (in ``report/`` or beside runs.csv), like an exported results folder, regenerates every table byte for byte.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench import atomic, headline, identity, validity
from bench.datasets import registry as dataset_registry
from bench.datasets.registry import PaperValues
from bench.errors import BenchError
from bench.models import registry
from bench.record import LEGACY_DIGEST, Cell, CellRecord
from bench.store import ResultsStore, frame

# two-sided 95 % Student t quantiles, df = 1..30 (beyond: normal 1.96)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip
COMPARABLE_PROFILES = ("cpu", "paper")  # profiles under which a stand-in or real dataset may face the paper's numbers
SMOKE_NOTE = "SMOKE PROFILE: a plumbing check on tiny data and models; these numbers carry no meaning."


def mean_ci(values) -> tuple[float, float, int]:
    """(mean, half-width of the 95 % t-interval, n); half-width is nan for a single value."""
    v = [float(x) for x in values if x == x and x is not None]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    m = sum(v) / n
    if n == 1:
        return m, math.nan, 1
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    return m, t * sd / math.sqrt(n), n


def _fmt(m: float, hw: float, digits: int) -> str:
    if m != m:
        return ""
    return f"{m:.{digits}f}" if hw != hw else f"{m:.{digits}f} ± {hw:.{digits}f}"


class Table:
    """One results table: rows = configurations (plus paper rows), columns = ratios."""

    def __init__(self, name: str, title: str, caption: str, digits: int):
        self.name, self.title, self.caption, self.digits = name, title, caption, digits
        self.rows: list[dict[str, str]] = []

    def add(self, label: str, cells: dict[str, str]) -> None:
        self.rows.append({"": label, **cells})

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows).fillna("")
        if df.empty:
            return pd.DataFrame(columns=[""])
        # Ratio columns ("5%") in numeric order, whatever order the rows introduced them in.
        ratio_cols = sorted((c for c in df.columns if c.endswith("%")), key=lambda c: float(c[:-1]))
        return df[[c for c in df.columns if not c.endswith("%")] + ratio_cols]

    def write(self, folder: Path) -> None:
        df = self.frame()
        atomic.write_text(folder / f"{self.name}.csv", df.to_csv(index=False))
        md = f"**{self.title}.** {self.caption}\n\n" + _markdown(df) + "\n"
        atomic.write_text(folder / f"{self.name}.md", md)
        tex = df.to_latex(index=False, escape=True, caption=f"{self.title}. {self.caption}", label=f"tab:{self.name}")
        atomic.write_text(folder / f"{self.name}.tex", tex)


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ the data

# written beside the tables; read back where cells are absent
EXPORTED = ("f1.csv", "detectors.csv", "data.json", "validity.csv")
DATA_FORMAT = 1


@dataclass(frozen=True)
class Group:
    """One configuration of one dataset: a line in every table and figure."""

    dataset: str
    key: str  # settings digest (or a stand-in for rows written before digests)
    model: str
    label: str
    kind: str  # "model", "reference", "external"


@dataclass(frozen=True)
class Data:
    """The data of one (dataset, protocol): its content fingerprint and whether it is the embedded synthetic data."""

    dataset: str
    protocol: str = ""  # "" = rows written before protocol digests
    source: str = ""  # content fingerprint; "" = not recorded
    synthetic: bool | None = None  # None = not recorded

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol, **identity.data_description(self.dataset, self.source, self.synthetic)}

    @classmethod
    def from_json(cls, d: Any) -> Data | None:
        if not isinstance(d, dict) or not isinstance(d.get("dataset"), str):
            return None
        synthetic = d.get("synthetic")
        return cls(d["dataset"], str(d.get("protocol") or ""), str(d.get("source") or ""),
                   synthetic if isinstance(synthetic, bool) else None)  # fmt: skip


def data_words(data: Data | dict[str, Any]) -> str:
    """A few words naming data: "embedded synthetic data", "FaceMask data 1a2b3c4d" (its content fingerprint)."""
    if isinstance(data, dict):
        data = Data.from_json(data) or Data("?")
    if data.synthetic:
        return "embedded synthetic data"
    if data.source:
        return f"{_title(data.dataset)} data {identity.source_id(data.source)}"
    return "data source not recorded"


def _data_note(data: Data) -> str:
    """The data sentence of a caption: the data by dataset and content fingerprint (never a path), and the protocol."""
    if data.synthetic:
        note = "embedded synthetic data (NOT the paper's dataset; not comparable with the paper)"
    elif data.source:
        note = (f"{_title(data.dataset)} images with content fingerprint {identity.source_id(data.source)} (stand-in "
                f"unless this is the paper's dataset; say so when comparing)")  # fmt: skip
    elif data.synthetic is False:
        note = (
            "images from a data folder, content fingerprint not recorded (stand-in unless this is the paper's dataset)"
        )
    else:
        note = "data source not recorded"
    return note + (f"; protocol {data.protocol[:8]}" if data.protocol else "")


def _combine(dataset: str, protocol: str, found: list[tuple[str, bool | None]]) -> Data:
    sources = {s for s, _ in found if s}
    flags = [f for _, f in found]
    synthetic = True if flags and all(f is True for f in flags) else False if any(f is False for f in flags) else None
    return Data(dataset, protocol, next(iter(sources)) if len(sources) == 1 else "", synthetic)


@dataclass
class Section:
    """The rows of one dataset under one protocol: one set of tables, one Fig. 4 row."""

    data: Data
    df: pd.DataFrame
    groups: list[Group]
    several: bool  # the dataset has other sections: names and titles say which protocol this is

    @property
    def dataset(self) -> str:
        return self.data.dataset

    @property
    def suffix(self) -> str:
        return f"_{self.data.protocol[:8] or 'unrecorded'}" if self.several else ""

    @property
    def tag(self) -> str:
        return _tag(self.data) if self.several else ""

    def part(self, group: Group) -> pd.DataFrame:
        return self.df[self.df.group == group.key]


def _tag(data: Data) -> str:
    return f" [{data_words(data)}, protocol {data.protocol[:8] or 'not recorded'}]"


@dataclass
class Context:
    store: ResultsStore
    df: pd.DataFrame
    sections: list[Section]  # per dataset (first-seen order), per protocol (_section_order)
    data: dict[tuple[str, str], Data]  # (dataset, protocol) -> its data, for every protocol any table names
    f1: pd.DataFrame  # Table 5's rows (with a protocol column)
    detectors: pd.DataFrame  # the detector tables' rows (with a protocol column)
    derived: dict[str, str]  # config digest -> protocol, for rows whose record predates protocol digests
    notes: list[str]
    from_cells: bool = True  # False: read from runs.csv and the exported files alone
    validity: pd.DataFrame = field(default_factory=pd.DataFrame)  # the classifiers' validity rows (with a protocol)

    @property
    def groups(self) -> dict[str, list[Group]]:
        """dataset -> the groups of all its sections (in section order)."""
        out: dict[str, list[Group]] = {}
        for sec in self.sections:
            out.setdefault(sec.dataset, []).extend(sec.groups)
        return out

    def data_for(self, ds: str, protocol: str) -> Data:
        """The data of (ds, protocol); for rows without a protocol, what all of the dataset's data have in common."""
        if (ds, protocol) in self.data:
            return self.data[(ds, protocol)]
        if protocol:
            return Data(ds, protocol)
        known = [d for (d_ds, _), d in self.data.items() if d_ds == ds]
        return _combine(ds, "", [(d.source, d.synthetic) for d in known]) if known else Data(ds)


def _group_key(r: pd.Series) -> str:
    digest = r.settings_digest
    if digest and digest != LEGACY_DIGEST:
        return digest
    return f"legacy:{r.model}:{r.profile}:{r.variant}"


def _variant_items(variant: str) -> list[str]:
    return [v for v in variant.split(", ") if v] if variant and variant != "external" else []


def shared_settings(df: pd.DataFrame, ds: str) -> list[str]:
    """Non-default settings every configuration of ``ds`` shares (e.g. a changed data count): said once, in captions,
    instead of in every row's label."""
    part = df[(df.dataset == ds) & (df.kind != "external")]
    sets = [set(_variant_items(v)) for v in dict.fromkeys(part.variant)]
    return sorted(set.intersection(*sets)) if sets else []


def _groups(df: pd.DataFrame) -> dict[str, list[Group]]:
    """dataset -> its configurations, in report order (rows of one protocol: a section's rows)."""
    out: dict[str, list[Group]] = {}
    for ds in dict.fromkeys(df.dataset):
        part = df[df.dataset == ds]
        profiles = set(part.profile)
        shared = set(shared_settings(df, ds))
        groups = []
        for model in registry.ordered(set(part.model)):
            for key, g in part[part.model == model].groupby("group", sort=False):
                first = g.iloc[0]
                own = [v for v in _variant_items(first.variant) if v not in shared]
                label = registry.title(model) + (f" ({', '.join(own)})" if own else "")
                if first.kind == "external":
                    label += " (external)"
                if len(profiles) > 1:
                    label += f" [{first.profile}]"
                groups.append(Group(ds, key, model, label, first.kind or "model"))
        seen: dict[str, int] = {}
        for g in groups:
            seen[g.label] = seen.get(g.label, 0) + 1
        groups = [Group(g.dataset, g.key, g.model, f"{g.label} [{g.key[:6]}]" if seen[g.label] > 1 else g.label, g.kind)
                  for g in groups]  # fmt: skip
        order = {"model": 0, "external": 1, "reference": 2}
        out[ds] = sorted(groups, key=lambda g: order.get(g.kind, 0))
    return out


def _cell_data(config: dict[str, Any], record: CellRecord) -> tuple[str, str, bool | None]:
    """(protocol digest, content fingerprint, synthetic) of a finished cell, from its record and config.json. A cell
    written before protocol digests gets the digest its recorded settings give (identity.protocol_of)."""
    protocol = record.protocol_digest
    split = config.get("split") if isinstance(config.get("split"), dict) else {}
    synthetic = str(split["source"]).startswith("synthetic") if "source" in split else None
    own = config.get("protocol")
    if isinstance(own, dict) and isinstance(own.get("data"), dict):  # an external sample set (bench score)
        flag = own["data"].get("synthetic")
        return (protocol or str(own.get("digest") or ""), str(own["data"].get("source") or ""),
                flag if isinstance(flag, bool) else synthetic)  # fmt: skip
    settings = config.get("settings")
    if isinstance(settings, dict) and "source" in settings and not config.get("external"):
        profile = config.get("profile") if isinstance(config.get("profile"), dict) else {}
        derived = identity.digest(identity.protocol_of(settings, str(profile.get("name", record.profile))))
        return protocol or derived, str(settings["source"]), synthetic
    return protocol, "", synthetic


def protocols_of(store: ResultsStore, records: list[CellRecord]) -> dict[str, tuple[dict[str, Any], str]]:
    """protocol digest -> (its data description, profile) of the cells among ``records`` whose protocol is known."""
    found: dict[str, list[tuple[str, bool | None]]] = {}
    owner: dict[str, CellRecord] = {}
    for record in records:
        protocol, source, synthetic = _cell_data(store.read_config(record), record)
        if protocol:
            found.setdefault(protocol, []).append((source, synthetic))
            owner.setdefault(protocol, record)
    return {p: (_combine(owner[p].dataset, p, f).to_json(), owner[p].profile) for p, f in found.items()}


def refuse_incomparable(store: ResultsStore, dataset: str, protocol: str, data: dict[str, Any], profile: str) -> None:
    """``bench score --append-to``: refuse a sample set whose protocol (the data and classifier that score it) is none
    of the protocols of ``dataset``'s cells already in the folder, in one line saying why and what to do. Its row
    could only have gone into tables of its own; a folder is one comparison. Cells whose protocol is unknown do not
    count."""
    records, _ = store.scan()
    known = protocols_of(store, [r for r in records if r.dataset == dataset])
    if not known or protocol in known:
        return
    theirs = "; ".join(f"{data_words(d)} (protocol {p[:8]}, {prof} profile)" for p, (d, prof) in sorted(known.items()))
    raise BenchError(f"the {dataset} cells in {store.out} were scored on {theirs}, this sample set would be scored on "
                     f"{data_words(data)} (protocol {protocol[:8]}, {profile} profile): different data or classifier, "
                     f"so its row could not be compared with theirs; pass the --data-root, --profile and --set those "
                     f"cells used, or append to another folder (--append-to)")  # fmt: skip


def _exported(store: ResultsStore, name: str) -> Path | None:
    """An exported report file: in report/ (as written), else beside runs.csv (a flattened export)."""
    for path in (store.report_dir / name, store.out / name):
        if path.is_file():
            return path
    return None


# pandas < 3 parses floats with a fast parser that may miss the last bit; 3 reads them exactly (and deprecates the flag)
EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def _read_csv(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path, dtype={"protocol": str}, **EXACT_FLOATS)
    except (OSError, ValueError, pd.errors.ParserError):
        return None


def _with_protocol(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["protocol"] = frame["protocol"].fillna("").astype(str) if "protocol" in frame else ""
    return frame


def _f1_frame(store: ResultsStore) -> pd.DataFrame:
    """Table 5's rows: every f1/*.csv, or, without f1/ (an exported folder), the report's own f1.csv."""
    cols = ["dataset", "seed", "ratio", "f1", "profile", "protocol"]
    if store.f1_dir.is_dir():
        paths = sorted(store.f1_dir.glob("*.csv"))
    else:  # the report's own export, else f1 files copied beside runs.csv (older exports: f1_<dataset>_s<seed>.csv)
        own = _exported(store, "f1.csv")
        paths = [own] if own is not None else sorted(store.out.glob("f1_*.csv"))
    frames = []
    for p in paths:
        frame = _read_csv(p)
        if frame is None:
            continue  # a damaged Table 5 input: left out (it is rebuilt by the next `bench run` of its dataset)
        if set(cols[:4]) <= set(frame.columns):
            frame = _with_protocol(frame)
            frame = frame[pd.to_numeric(frame["ratio"], errors="coerce").notna()]
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


VALIDITY_COLS = ["degradation", "gated", "inliers_called_inliers", "outliers_called_inliers", "passed", "dataset",
                 "seed", "profile", "protocol"]  # fmt: skip


def _validity_frame(store: ResultsStore) -> pd.DataFrame:
    """The classifiers' validity rows (bench/validity.py): every validity/*.csv, or, without validity/ (an exported
    folder), the report's own validity.csv. Damaged files are left out (rebuilt by the next `bench run`)."""
    if store.validity_dir.is_dir():
        paths = sorted(store.validity_dir.glob("*.csv"))
    else:
        own = _exported(store, "validity.csv")
        paths = [own] if own is not None else []
    frames = []
    for p in paths:
        frame = _read_csv(p)
        if frame is not None and len(frame) and set(VALIDITY_COLS[:4] + ["dataset", "seed"]) <= set(frame.columns):
            frames.append(_with_protocol(frame))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=VALIDITY_COLS)


def _detector_frame(store: ResultsStore, split_protocols: dict[str, list[str]]) -> pd.DataFrame:
    """The detector tables' rows, each tagged with the protocols of the cells trained on its split (by the split
    hash in its file name; "" when none is known); without detectors/, the report's own detectors.csv."""
    if not store.detectors_dir.is_dir():
        path = _exported(store, "detectors.csv")
        frame = None if path is None else _read_csv(path)
        return pd.DataFrame() if frame is None else _with_protocol(frame)
    frames = []
    for p in sorted(store.detectors_dir.glob("*.csv")):
        frame = _read_csv(p)
        if frame is None or frame.empty:
            continue
        for protocol in split_protocols.get(p.stem.rsplit("_", 1)[-1], [""]):
            frames.append(frame.drop(columns=["protocol"], errors="ignore").assign(protocol=protocol))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _as_recorded(record: CellRecord) -> CellRecord:
    """The record as runs.csv holds it (floats to 6 significant digits), so that an exported folder's runs.csv gives
    the same tables as the cells."""
    row = {k: float(f"{v:.6g}") if isinstance(v, float) and math.isfinite(v) else v for k, v in record.to_row().items()}
    return CellRecord.from_row(row)


def build_context(store: ResultsStore, records: list[CellRecord], from_cells: bool = True,
                  notes: list[str] | None = None) -> Context:  # fmt: skip
    """The report's view of ``records``: their protocols and data, sections, Table 5 and detector rows."""
    records = [_as_recorded(r) for r in records]
    df = frame(records)
    df["group"] = [_group_key(r) for _, r in df.iterrows()] if len(df) else []
    found: dict[tuple[str, str], list[tuple[str, bool | None]]] = {}
    protocols, derived, split_protocols = [], {}, {}
    exported = _exported_data(store) if not from_cells else ({}, {})
    for record in records:
        if from_cells:
            config = store.read_config(record)
            protocol, source, synthetic = _cell_data(config, record)
            split_hash = (
                (config.get("split") or {}).get("split_hash") if isinstance(config.get("split"), dict) else None
            )
            if isinstance(split_hash, str) and protocol not in split_protocols.setdefault(split_hash[:10], []):
                split_protocols[split_hash[:10]].append(protocol)
        else:
            protocol = record.protocol_digest or exported[1].get(record.config_digest, "")
            known = exported[0].get((record.dataset, protocol))
            source, synthetic = (known.source, known.synthetic) if known else ("", None)
        if protocol and not record.protocol_digest:
            derived[record.config_digest] = protocol
        protocols.append(protocol)
        found.setdefault((record.dataset, protocol), []).append((source, synthetic))
    df["protocol"] = protocols
    data = {key: _combine(*key, f) for key, f in found.items()}
    sections = []
    for ds in dict.fromkeys(df.dataset):
        keys = sorted(dict.fromkeys(df[df.dataset == ds].protocol), key=lambda p: _section_order(data[(ds, p)]))
        for protocol in keys:
            part = df[(df.dataset == ds) & (df.protocol == protocol)]
            sections.append(Section(data[(ds, protocol)], part, _groups(part).get(ds, []), len(keys) > 1))
    ctx = Context(store, df, sections, data, _f1_frame(store), _detector_frame(store, split_protocols), derived,
                  list(notes or []), from_cells, _validity_frame(store))  # fmt: skip
    for table in (ctx.f1, ctx.detectors):  # protocols named only by Table 5 or a detector table: their data too
        if "dataset" in table and "protocol" in table:
            for ds, protocol in dict.fromkeys(zip(table.dataset.astype(str), table.protocol)):
                if (ds, protocol) not in ctx.data:
                    known = exported[0].get((ds, protocol)) if not from_cells else None
                    ctx.data[(ds, protocol)] = known or ctx.data_for(ds, protocol)
    return ctx


def _section_order(data: Data) -> tuple:
    """The embedded synthetic data first, then recorded folders by fingerprint, then rows of unknown data."""
    return (0 if data.synthetic else 1 if data.source else 2, data.source, not data.protocol, data.protocol)


def _exported_data(store: ResultsStore) -> tuple[dict[tuple[str, str], Data], dict[str, str]]:
    """data.json: (dataset, protocol) -> Data, and config digest -> protocol for rows recorded without one."""
    path = _exported(store, "data.json")
    try:
        blob = json.loads(path.read_text(encoding="utf-8")) if path is not None else {}
    except (OSError, ValueError):
        blob = {}
    if not isinstance(blob, dict):
        blob = {}
    data = {}
    for item in blob.get("protocols", []) if isinstance(blob.get("protocols"), list) else []:
        d = Data.from_json(item)
        if d is not None:
            data[(d.dataset, d.protocol)] = d
    cells = blob.get("cells") if isinstance(blob.get("cells"), dict) else {}
    return data, {str(k): str(v) for k, v in cells.items() if isinstance(v, str)}


def _write_exported(ctx: Context, folder: Path) -> list[str]:
    """What the tables need beyond runs.csv, beside them (see the module docstring)."""
    atomic.write_text(folder / "f1.csv", ctx.f1.to_csv(index=False))
    atomic.write_text(folder / "detectors.csv", ctx.detectors.to_csv(index=False))
    atomic.write_text(folder / "validity.csv", ctx.validity.to_csv(index=False))
    blob = {"format": DATA_FORMAT,
            "protocols": [ctx.data[k].to_json() for k in sorted(ctx.data)],
            "cells": dict(sorted(ctx.derived.items()))}  # fmt: skip
    atomic.write_text(folder / "data.json", json.dumps(blob, indent=1, sort_keys=True) + "\n")
    return list(EXPORTED)


def _title(ds: str) -> str:
    return dataset_registry.get(ds).title if ds in dataset_registry.names() else ds


def _paper(sec: Section) -> PaperValues | None:
    """The paper's values for a section when a comparison means something (not synthetic, cpu or paper profile)."""
    ds = sec.dataset
    if ds not in dataset_registry.names():
        return None
    paper = dataset_registry.get(ds).paper
    if paper is None or sec.data.synthetic or not set(sec.df.profile) <= set(COMPARABLE_PROFILES):
        return None
    return paper


def _profile_note(df: pd.DataFrame) -> str:
    return f" {SMOKE_NOTE}" if "smoke" in set(df.profile) else ""


def _paper_name(model: str) -> str | None:
    return registry.get(model).paper_name if model in registry.names() else None


# ------------------------------------------------------------------------------------------------ tables


def _metric_table(sec: Section, metric: str, paper: dict | None, name: str, title: str, caption: str,
                  digits: int, extra: Callable[[pd.DataFrame, float], str] | None = None) -> Table:  # fmt: skip
    t = Table(name, title, caption, digits)
    ratios = sorted(set(sec.df.ratio))
    in_references = False
    for g in sec.groups:
        if g.kind == "reference" and not in_references:
            t.add("— reference generators (not methods) —", {})
            in_references = True
        part = sec.part(g)
        cells, theirs, diff = {}, {}, {}
        pname = _paper_name(g.model)
        pvals = (paper or {}).get(pname, {}) if pname and not part.variant.iloc[0] else {}
        for r in ratios:
            sel = part[part.ratio == r]
            m, hw, _ = mean_ci(sel[metric])
            cells[f"{r:g}%"] = _fmt(m, hw, digits) + (extra(sel, r) if extra is not None and m == m else "")
            p = pvals.get(r)
            theirs[f"{r:g}%"] = "" if p is None else f"{p:.{digits}f}"
            diff[f"{r:g}%"] = "" if p is None or m != m else f"{m - p:+.{digits}f}"
        t.add(g.label, cells)
        if pvals:
            t.add(f"{pname} (paper)", theirs)
            t.add("difference", diff)
    return t


def _recall_note(sel: pd.DataFrame, r: float) -> str:
    m, _, _ = mean_ci(sel.recall)
    return f" (recall {m:.2f})" if m == m else ""


def _dataset_tables(sec: Section, fid_metric: str, ctx: Context | None = None) -> list[Table]:
    ds, suffix, tag = sec.dataset, sec.suffix, sec.tag
    spec = dataset_registry.get(ds) if ds in dataset_registry.names() else None
    paper = _paper(sec)
    numbers = spec.paper.table_numbers if spec is not None and spec.paper is not None else None
    note = _data_note(sec.data) + "." + _profile_note(sec.df)
    shared = shared_settings(sec.df, ds)
    if shared:
        note += f" Settings changed from the profile's defaults in every row: {', '.join(shared)}."
    if spec is None:
        note += f" Dataset '{ds}' is not registered here (load its plug-in with --plugin): shown without paper values."
    if paper is None and spec is not None and spec.paper is not None:
        note += " No paper rows: synthetic data, or a profile whose budget makes a comparison meaningless."
    n_note = _samples_note(sec)
    t_in = (f"table{numbers[0]}" if numbers else f"table_{ds}_inliers") + suffix
    t_fd = (f"table{numbers[1]}" if numbers else f"table_{ds}_fd") + suffix
    label_in = f"Table {numbers[0]}. " if numbers else ""
    label_fd = f"Table {numbers[1]}. " if numbers else ""
    has_fid = fid_metric == "fid"
    fid_note = (
        "Inception FID (torch-fidelity, local InceptionV3 weights) against held-out real inliers."
        if has_fid
        else "NOT FID: InceptionV3 weights were absent, so this is fd_classifier, the Fréchet distance in a locally "
        "trained classifier's feature space; paper FID values are shown for orientation only (no difference taken)."
    )
    tables = [_metric_table(
        sec, "pct_inliers", None if paper is None else paper.pct_inliers, t_in,
        f"{label_in}Percentage of generated inliers for {_title(ds)}{tag}",
        f"Classified by the held-out inlier classifier; {n_note} {note}", 2,
    )]  # fmt: skip
    fd = _metric_table(
        sec, fid_metric, None if paper is None or not has_fid else paper.fid, t_fd,
        f"{label_fd}{'FID' if has_fid else 'Fréchet distance (fallback, not FID)'} of generated images for "
        f"{_title(ds)}{tag}", f"{fid_note} {note}", 3,
    )  # fmt: skip
    if paper is not None and not has_fid:
        ratios = set(sec.df.ratio)
        for pname, values in paper.fid.items():
            fd.add(
                f"{pname} (paper FID, other metric)", {f"{r:g}%": f"{v:.3f}" for r, v in values.items() if r in ratios}
            )
    tables.append(fd)
    tables.append(_headline_table(sec, fid_metric))
    tables.append(_metric_table(
        sec, "robustness", None, f"table_{ds}_robustness{suffix}", f"Robustness index for {_title(ds)}{tag}",
        "(% inliers - replay) / (replay inliers - replay) on the same split, seed and sample count: 0 = as "
        "contaminated as the training data, 1 = as clean as the inlier-only oracle, negative = worse than the data; "
        "undefined at 0 %. Recall (share of real inliers covered) in brackets: a narrow mode scores high % inliers at "
        f"low recall. {note}", 2, extra=_recall_note,
    ))  # fmt: skip
    extra = [_verdict_table(ctx, sec), _capacity_table(sec), _validity_table(ctx, sec)] if ctx is not None else []
    return tables + [t for t in extra if t is not None]


def _headline_table(sec: Section, fid_metric: str) -> Table:
    """At the largest ratio: every configuration's % inliers, robustness, recall and FD/FID side by side."""
    ds = sec.dataset
    r = max(sec.df.ratio)
    fd = "FID" if fid_metric == "fid" else "FD (not FID)"
    t = Table(f"table_{ds}_at_{r:g}{sec.suffix}", f"Headline. {_title(ds)}{sec.tag} at r = {r:g} %",
              f"Mean ± 95 % t-interval over seeds (n = number of seeds). {_data_note(sec.data)}."
              f"{_profile_note(sec.df)}", 2)  # fmt: skip
    for g in sec.groups:
        sel = sec.part(g)
        sel = sel[sel.ratio == r]
        if sel.empty:
            continue
        t.add(g.label, {
            "% inliers": _fmt(*mean_ci(sel.pct_inliers)[:2], 1), "robustness": _fmt(*mean_ci(sel.robustness)[:2], 2),
            "recall": _fmt(*mean_ci(sel.recall)[:2], 2), fd: _fmt(*mean_ci(sel[fid_metric])[:2], 2), "n": str(len(sel)),
        })  # fmt: skip
    return t


# ------------------------------------------------------------------------------------------------ the verdict


def _truthy(v: object) -> bool:
    return str(v).strip().lower() in ("true", "1", "1.0", "yes")


def section_validity(ctx: Context, sec: Section) -> pd.DataFrame:
    """The validity rows of ``sec``'s classifier (its dataset and protocol): degradation, gated, the two shares
    called inliers, passed (booleans), seed. Empty when none were written (older folders)."""
    v = ctx.validity
    if v is None or v.empty or not set(VALIDITY_COLS[:4] + ["dataset", "seed"]) <= set(v.columns):
        return pd.DataFrame(columns=VALIDITY_COLS)
    v = _with_protocol(v)
    v = v[(v.dataset.astype(str) == sec.dataset) & (v.protocol == sec.data.protocol)].copy()
    v["gated"] = v.gated.map(_truthy).astype(bool)
    for c in ("inliers_called_inliers", "outliers_called_inliers"):
        v[c] = pd.to_numeric(v[c], errors="coerce")
    own = (v.inliers_called_inliers >= validity.MIN_INLIERS_KEPT) & (
        v.outliers_called_inliers <= validity.MAX_OUTLIERS_PASSED
    )
    v["passed"] = v.passed.map(_truthy).astype(bool) if "passed" in v else own  # as judged when written
    v["seed"] = pd.to_numeric(v.seed, errors="coerce")
    return v


def validity_line(ctx: Context, sec: Section) -> str | None:
    """One line on ``sec``'s classifier: passed, or (loudly) FAILED with its failing gated degradations per seed;
    None when no validity rows were written for it."""
    v = section_validity(ctx, sec)
    if v.empty:
        return None
    seeds = sorted({int(s) for s in v.seed.dropna()})
    need = (f">= {validity.MIN_INLIERS_KEPT:g} % of real inliers and <= {validity.MAX_OUTLIERS_PASSED:g} % of real "
            f"outliers called inliers under every gated degradation")  # fmt: skip
    failed = v[v.gated & ~v.passed]
    if failed.empty:
        return f"classifier validity: passed (seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}; {need})"
    parts = []
    for seed in sorted(set(failed.seed)):
        rows = failed[failed.seed == seed]
        parts.append(f"seed {seed:g}: " + ", ".join(f"{r.degradation} inliers {r.inliers_called_inliers:.1f} %, "
                                                    f"outliers {r.outliers_called_inliers:.1f} %"
                                                    for r in rows.itertuples()))  # fmt: skip
    return (f"CLASSIFIER VALIDITY FAILED ({'; '.join(parts)}): % inliers and the robustness index are not a measure "
            f"of contamination alone here (needs {need})")  # fmt: skip


def section_flags(sec: Section) -> pd.Series:
    """bench/headline.py's flags of every row of ``sec`` (its protocol as the report knows it)."""
    df = sec.df.assign(protocol_digest=sec.df.protocol) if "protocol" in sec.df else sec.df
    return headline.flags(df)


def cell_flags(sec: Section) -> dict[tuple[str, float], list[str]]:
    """(group key, ratio) -> the flags any of its seeds carries, in the order first seen."""
    out: dict[tuple[str, float], list[str]] = {}
    for (key, ratio), f in zip(zip(sec.df.group, sec.df.ratio), section_flags(sec)):
        found = out.setdefault((key, float(ratio)), [])
        found += [x for x in str(f).split(", ") if x and x not in found]
    return out


def is_control_group(sec: Section, group: Group) -> bool:
    """A capacity-control configuration (``--filter outliers-only``): not a method; its index means nothing."""
    part = sec.part(group)
    return bool(len(part)) and headline.is_control(part.variant.iloc[0])


def section_capacity(sec: Section) -> pd.DataFrame:
    """bench/headline.py's capacity per model and settings of ``sec`` with a label (empty when ``sec`` has neither
    capacity-control rows nor reconstruction values)."""
    df = sec.df
    recon = pd.to_numeric(df.get("outlier_recon_pct_inliers"), errors="coerce")
    controls = df.variant.map(headline.is_control)
    if df.empty or not (controls.any() or (recon is not None and recon.notna().any())):
        return pd.DataFrame()
    cap = headline.capacity(df.assign(protocol_digest=df.protocol) if "protocol" in df else df)
    cap = cap[cap.control_called_outliers.notna() | cap.recon_passed.notna()]
    if cap.empty:
        return pd.DataFrame()
    shared = set(shared_settings(df, sec.dataset))
    order = {m: i for i, m in enumerate(registry.ordered(set(cap.model)))}
    labels, n_control = [], []
    for r in cap.itertuples():
        own = [v for v in _variant_items(str(r.base_variant)) if v not in shared]
        labels.append(registry.title(r.model) + (f" ({', '.join(own)})" if own else ""))
        n_control.append(int((controls & (df.model == r.model)).sum()))
    cap = cap.assign(label=labels, n_control=n_control, order=cap.model.map(order))
    return cap.sort_values(["order", "label"], kind="stable").reset_index(drop=True)


FLAG_WORDS = (f"low coverage: coverage (recall / the oracle's) below {headline.MIN_COVERAGE:g}; lost coverage: recall "
              f"below {headline.MIN_RECALL_KEPT:g} x the same model's at r = 0; cannot draw outliers: its capacity "
              f"control calls fewer than {headline.MIN_CONTROL_OUTLIERS:g} % of its samples outliers, or more than "
              f"{headline.MAX_RECON_PASSED:g} % of held-out real outliers pass as inliers through its encoder and "
              f"decoder")  # fmt: skip


def _verdict_table(ctx: Context, sec: Section) -> Table | None:
    """Per configuration and ratio > 0: the index with recall, coverage, flags and the verdict (bench/headline.py).
    Capacity controls are left out (their own table); reference generators after a separator, flagged alike."""
    ds = sec.dataset
    ratios = sorted(r for r in set(sec.df.ratio) if r > 0)
    if not ratios:
        return None
    line = validity_line(ctx, sec)
    loud = f" {line}." if line and line.startswith("CLASSIFIER") else ""
    t = Table(f"table_{ds}_verdict{sec.suffix}", f"Verdict. Robust or not: {_title(ds)}{sec.tag}",
              f"{loud} Mean ± 95 % t-interval over seeds (n). Robust = index >= {headline.ROBUST_INDEX:g} and no "
              f"flag; a flagged row is never robust, whatever its index (a flag on any seed flags the row). Flags: "
              f"{FLAG_WORDS}. Capacity controls are not methods and are left out. {_data_note(sec.data)}."
              f"{_profile_note(sec.df)}", 2)  # fmt: skip
    t.caption = t.caption.strip()
    flags = cell_flags(sec)
    in_references = False
    for g in sec.groups:
        if is_control_group(sec, g):
            continue
        part = sec.part(g)
        rows = []
        for r in ratios:
            sel = part[part.ratio == r]
            if sel.empty:
                continue
            m, hw, _ = mean_ci(sel.robustness)
            f = ", ".join(flags.get((g.key, float(r)), []))
            rows.append((g.label, {"r (%)": f"{r:g}", "index": _fmt(m, hw, 2),
                                   "recall": _fmt(*mean_ci(sel.recall)[:2], 2),
                                   "coverage": _fmt(*mean_ci(sel.coverage)[:2], 2), "flags": f,
                                   "verdict": headline.verdict(m, f), "n": str(len(sel))}))  # fmt: skip
        if rows and g.kind == "reference" and not in_references:
            t.add("— reference generators (not methods) —", {})
            in_references = True
        for label, cells in rows:
            t.add(label, cells)
    return t


def _capacity_table(sec: Section) -> Table | None:
    """Per model: its capacity control's share of samples called outliers and the share of held-out real outliers
    that pass as inliers through its encoder and decoder (bench/headline.py); None when neither was measured."""
    cap = section_capacity(sec)
    if cap.empty:
        return None
    ds = sec.dataset
    t = Table(f"table_{ds}_capacity{sec.suffix}",
              f"Capacity. Can each model draw the contamination? {_title(ds)}{sec.tag}",
              f"The capacity control (--filter outliers-only) trains the model on the training outliers alone: its "
              f"samples should be called outliers. Reconstruction: held-out real outliers encoded and decoded by the "
              f"model (models with an encoder). A model below {headline.MIN_CONTROL_OUTLIERS:g} % or above "
              f"{headline.MAX_RECON_PASSED:g} % cannot draw outliers, so refusing them costs it nothing: its rows are "
              f"flagged and never called robust. Mean over ratios and seeds. {_data_note(sec.data)}."
              f"{_profile_note(sec.df)}", 1)  # fmt: skip
    for r in cap.itertuples():
        control, recon = float(r.control_called_outliers), float(r.recon_passed)
        t.add(r.label, {"control: samples called outliers (%)": "" if control != control else f"{control:.1f}",
                        "control cells": str(r.n_control) if r.n_control else "",
                        "real outliers passing reconstruction (%)": "" if recon != recon else f"{recon:.1f}",
                        "capacity": headline.NO_CAPACITY if headline.cannot_draw(control, recon) else "can draw outliers",
                        })  # fmt: skip
    return t


def _validity_table(ctx: Context, sec: Section) -> Table | None:
    """The section's classifier on its held-out real inliers and outliers after each degradation (mean over seeds),
    gated or not, passed or not; None without validity rows."""
    v = section_validity(ctx, sec)
    if v.empty:
        return None
    ds = sec.dataset
    line = validity_line(ctx, sec) or ""
    t = Table(f"table_{ds}_validity{sec.suffix}", f"Classifier validity for {_title(ds)}{sec.tag}",
              f"{line}. The held-out inlier classifier on its own held-out real inliers and outliers after each "
              f"degradation: the share of each it calls inliers (mean ± 95 % t-interval over seeds). A gated "
              f"degradation must keep >= {validity.MIN_INLIERS_KEPT:g} % of real inliers and pass <= "
              f"{validity.MAX_OUTLIERS_PASSED:g} % of real outliers, else blur or noise could move % inliers. "
              f"{_data_note(sec.data)}.", 1)  # fmt: skip
    for deg in dict.fromkeys(v.degradation.astype(str)):
        sel = v[v.degradation.astype(str) == deg]
        gated = bool(sel.gated.any())
        bad = sorted({int(s) for s in sel[~sel.passed].seed.dropna()})
        seeds = ",".join(map(str, bad))
        passed = "yes" if not bad else (f"FAILED (seed {seeds})" if gated else f"no (seed {seeds}; not gated)")
        t.add(deg, {"real inliers called inliers (%)": _fmt(*mean_ci(sel.inliers_called_inliers)[:2], 1),
                    "real outliers called inliers (%)": _fmt(*mean_ci(sel.outliers_called_inliers)[:2], 1),
                    "gated": "yes" if gated else "no", "passed": passed, "n": str(len(sel))})  # fmt: skip
    return t


def _samples_note(sec: Section) -> str:
    n = sorted({int(v) for v in sec.df.n_samples.dropna()})
    return f"{'/'.join(map(str, n))} generated samples per cell;" if n else ""


def _protocols_by_dataset(ctx: Context, table: pd.DataFrame) -> dict[str, list[str]]:
    """dataset -> the protocols of ``table``'s rows: the report's datasets and sections first, in their order, then
    the others in first-seen order."""
    out: dict[str, list[str]] = {}
    if "dataset" not in table or table.empty:
        return out
    datasets = list(dict.fromkeys(s.dataset for s in ctx.sections))
    for ds in datasets + [d for d in dict.fromkeys(table.dataset.astype(str)) if d not in datasets]:
        part = table[table.dataset.astype(str) == ds]
        if len(part):
            present = set(part.protocol)
            known = [s.data.protocol for s in ctx.sections if s.dataset == ds and s.data.protocol in present]
            out[ds] = known + [p for p in dict.fromkeys(part.protocol) if p not in known]
    return out


def _f1_table(ctx: Context) -> Table:
    """Table 5: one line per dataset and protocol (the F1 of different data or classifiers is never averaged)."""
    f1 = ctx.f1.copy()
    f1["ratio"] = pd.to_numeric(f1["ratio"], errors="coerce")
    f1["f1"] = pd.to_numeric(f1["f1"], errors="coerce")
    by_ds = _protocols_by_dataset(ctx, f1)
    notes = []
    for ds, protocols in by_ds.items():
        for protocol in protocols:
            data = ctx.data_for(ds, protocol)
            notes.append(f"{_title(ds)}{_tag(data) if len(protocols) > 1 else ''}: {_data_note(data)}")
    t = Table("table5", "Table 5. Testing F1 of the binary inlier classifier",
              "Held-out labelled test sets at each test outlier ratio; inliers are the positive class."
              + (f" {'; '.join(notes)}." if notes else ""), 3)  # fmt: skip
    ratios = sorted(set(f1.ratio)) if len(f1) else [0, 5, 10, 15, 20, 25, 30]
    for ds, protocols in by_ds.items():
        comparable = False
        for protocol in protocols:
            part = f1[(f1.dataset.astype(str) == ds) & (f1.protocol == protocol)]
            data = ctx.data_for(ds, protocol)
            tag = _tag(data) if len(protocols) > 1 else ""
            profiles = sorted(set(part.profile.astype(str))) if "profile" in part else [""]
            for prof in profiles:
                sel = part[part.profile.astype(str) == prof] if "profile" in part else part
                suffix = f" [{prof}]" if len(profiles) > 1 else ""
                t.add(f"{_title(ds)}{tag}{suffix} (ours)",
                      {f"{r:g}%": _fmt(*mean_ci(sel[sel.ratio == r].f1)[:2], 3) for r in ratios})  # fmt: skip
            comparable |= not data.synthetic and set(part.profile.astype(str)) <= set(COMPARABLE_PROFILES) \
                if "profile" in part else not data.synthetic  # fmt: skip
        paper = dataset_registry.get(ds).paper if ds in dataset_registry.names() else None
        if comparable and paper is not None and paper.f1:
            t.add(f"{_title(ds)} (paper)", {f"{r:g}%": f"{v:.3f}" for r, v in paper.f1.items() if r in ratios})
    return t


def _set_table(ctx: Context, t: Table, prefix: str) -> Table:
    """Precision / recall / AUC columns ``<prefix>_precision`` ... per configuration and ratio (configurations
    without any are left out)."""
    cols = (f"{prefix}_precision", f"{prefix}_recall", f"{prefix}_auc")
    for sec in ctx.sections:
        for g in sec.groups:
            part = sec.part(g)
            part = part[part[cols[0]].notna() | part[cols[2]].notna()]
            if part.empty:
                continue
            cells = {}
            for r in sorted(set(part.ratio)):
                sel = part[part.ratio == r]
                p, rc, auc = (_fmt(*mean_ci(sel[c])[:2], 2) for c in cols)
                cells[f"{r:g}%"] = f"P {p} / R {rc}" + (f" / AUC {auc}" if auc else "")
            t.add(f"{_title(sec.dataset)}{sec.tag} {g.label}", cells)
    return t


def _flag_table(ctx: Context) -> Table:
    return _set_table(ctx, Table(
        "table_selfrecognition", "Extra table. Self-recognition: which training images a robust model set aside",
        "Precision / recall of the set aside against the true outlier labels (chance precision = ratio), and the AUC "
        "of the model's outlier scores. Not reported by the paper.", 3), "flag")  # fmt: skip


def _filter_table(ctx: Context) -> Table:
    return _set_table(ctx, Table(
        "table_filters", "Extra table. Detector-filtered training: what the filter dropped",
        "Precision / recall / AUC of the dropped set against the true outlier labels (label-free detectors; the labels "
        "only score them), for every filtered configuration.", 3), "filter")  # fmt: skip


def _detector_tables(ctx: Context) -> list[Table]:
    det = ctx.detectors
    main = Table("table_detectors", "Extra table. Label-free outlier detectors on each training set",
                 "AUC, and precision / recall when dropping the top r of the scores (r = the true outlier ratio, "
                 "which a user does not know); fitted on the contaminated training images, scored against the labels. "
                 "Mean over seeds.", 2)  # fmt: skip
    sweep = Table("table_detectors_fractions", "Extra table. What dropping a fixed fraction f leaves",
                  "Outlier share left in the kept training set (%) / inliers dropped (%) when dropping the top f of each "
                  "detector's scores; the training set itself holds r % outliers. Mean over seeds.", 1)  # fmt: skip
    if det.empty or not {"dataset", "detector", "ratio", "fraction"} <= set(det.columns):
        return [main, sweep]
    datasets = list(dict.fromkeys(s.dataset for s in ctx.sections))
    by_ds = _protocols_by_dataset(ctx, det)
    for ds in [d for d in datasets if d in by_ds]:
        for protocol in by_ds[ds]:
            part = det[(det.dataset.astype(str) == ds) & (det.protocol == protocol)]
            tag = _tag(ctx.data_for(ds, protocol)) if len(by_ds[ds]) > 1 else ""
            for name in sorted(set(part.detector)):
                d = part[part.detector == name]
                cells = {}
                for r in sorted(set(d.ratio)):
                    sel = d[(d.ratio == r) & d.oracle_fraction.astype(bool)]
                    auc, p, rc = (_fmt(*mean_ci(sel[c])[:2], 2) for c in ("auc", "precision", "recall"))
                    cells[f"{r:g}%"] = f"AUC {auc} / P {p} / R {rc}"
                main.add(f"{_title(ds)}{tag} {name}", cells)
                for f in sorted(set(d[~d.oracle_fraction.astype(bool)].fraction)):
                    cells = {}
                    for r in sorted(set(d.ratio)):
                        sel = d[(d.ratio == r) & (d.fraction == f) & ~d.oracle_fraction.astype(bool)]
                        n_in = _inliers_per_split(ctx, ds, protocol, r)
                        left = mean_ci(100 * sel.kept_outlier_share)[0]
                        lost = mean_ci(100 * sel.inliers_dropped / n_in)[0] if n_in else math.nan
                        cells[f"{r:g}%"] = f"{left:.1f} / {lost:.1f}" if left == left else ""
                    sweep.add(f"{_title(ds)}{tag} {name}, f = {f:g}", cells)
    return [main, sweep]


def _inliers_per_split(ctx: Context, ds: str, protocol: str, r: float) -> float:
    part = ctx.df[(ctx.df.dataset == ds) & (ctx.df.ratio == r)]
    own = part[part.protocol == protocol]
    part = own if len(own) else part
    return float(part.n_inliers.iloc[0]) if len(part) else math.nan


# ------------------------------------------------------------------------------------------------ figures


def fig4_panels(fid_metric: str) -> list[tuple[str, str]]:
    """Fig. 4's panels, left to right: (runs.csv column, axis label)."""
    return [("pct_inliers", "% generated inliers"),
            (fid_metric, "FID" if fid_metric == "fid" else "FD (classifier features; not FID)"),
            ("robustness", "robustness index"),
            ("recall", "recall (share of real inliers covered)")]  # fmt: skip


def _fig4(ctx: Context, fid_metric: str, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = ctx.sections
    if not sections:
        return []
    panels = fig4_panels(fid_metric)
    fig, axes = plt.subplots(len(sections), len(panels), figsize=(5 * len(panels), 3.9 * len(sections)), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, sec in enumerate(sections):
        model_groups = [g for g in sec.groups if g.kind != "reference"]
        style = {g.key: dict(color=colours[i % len(colours)], ls="-", marker="o") for i, g in enumerate(model_groups)}
        for g in sec.groups:
            if g.kind == "reference":
                style[g.key] = dict(color="black" if "oracle" in g.label else "grey", ls="--", marker="")
        xs_all = sorted(set(sec.df.ratio))
        for col, (metric, label) in enumerate(panels):
            ax = axes[row][col]
            for g in sec.groups:
                if metric in ("robustness", "recall") and is_control_group(sec, g):
                    continue  # a capacity control is not a method: its index and recall mean nothing
                part = sec.part(g)
                stats = [(r, *mean_ci(part[part.ratio == r][metric])[:2]) for r in sorted(set(part.ratio))]
                stats = [s for s in stats if s[1] == s[1]]
                if not stats:
                    continue
                xs, ms, hws = zip(*stats)
                ax.plot(xs, ms, label=g.label, lw=1.6, **style[g.key])
                lo = [m - h for m, h in zip(ms, hws) if h == h]
                if len(lo) == len(ms):
                    ax.fill_between(xs, lo, [m + h for m, h in zip(ms, hws)], color=style[g.key]["color"], alpha=0.15)
            if metric == "pct_inliers":
                ax.plot(
                    xs_all, [100 - x for x in xs_all], color="grey", lw=0.8, ls=":", label="training data (100 - r)"
                )
            if metric == "robustness":
                ax.axhline(0, color="grey", lw=0.8, ls=":")
                ax.axhline(1, color="black", lw=0.8, ls=":")
            ax.set_xlim(min(xs_all) - 1, max(xs_all) + 1)  # the same r axis in every panel (robustness starts at r > 0)
            ax.set_title(f"{_title(sec.dataset)}{sec.tag}: {label}" + (" (SMOKE: meaningless)" if _profile_note(sec.df) else ""),
                         fontsize=10 if sec.tag else None)  # fmt: skip
            ax.set_xlabel("training outlier ratio r (%)")
            ax.set_ylabel(label)
        axes[row][0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Fig. 4: mean over seeds, shaded: 95 % t-interval; dashed: reference generators", fontsize=10)
    fig.tight_layout()
    names = []
    for ext in ("png", "svg"):
        with atomic.atomic_path(folder / f"fig4.{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=110)
        names.append(f"fig4.{ext}")
    plt.close(fig)
    return names


def _cell_folder(store: ResultsStore, row: pd.Series) -> Path:
    return store.cell_folder(Cell(row.dataset, row.model, float(row.ratio), int(row.seed)), row.config_digest)


def _grid_count(store: ResultsStore, row: pd.Series) -> int | None:
    folder = _cell_folder(store, row)
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        grid = int(cfg["profile"]["run"]["grid_samples"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    n = row.n_samples
    return grid if n != n else min(grid, int(n))


def _copy_grids(ctx: Context, folder: Path) -> list[tuple[str, int | None]]:
    """Each configuration's grid (lowest seed) as grids/<ds>_<model>[_<digest>]_r<ratio>.png, plus one image per
    dataset and ratio with every configuration in a row (grids/<ds>_r<ratio>_models.png); a dataset with several
    protocols has the protocol after its name. Returns (name, samples shown)."""
    names = []
    for sec in ctx.sections:
        ds, groups = sec.dataset, sec.groups
        for ratio in sorted(set(sec.df.ratio)):
            rows = []
            for g in groups:
                part = sec.part(g)
                part = part[part.ratio == ratio]
                if part.empty:
                    continue
                first = part.sort_values("seed").iloc[0]
                cell = _cell_folder(ctx.store, first)
                src = cell / "samples.png"
                if not src.exists():
                    continue
                several = sum(other.model == g.model for other in groups) > 1
                suffix = f"_{g.key[:8]}" if several else ""
                name = f"grids/{ds}{sec.suffix}_{g.model}{suffix}_r{ratio:g}.png"
                with atomic.atomic_path(folder / name) as tmp:
                    shutil.copyfile(src, tmp)
                names.append((name, _grid_count(ctx.store, first)))
                rows.append((g.label, cell / "samples.npz", folder / name))
            if len(rows) > 1:
                name = f"grids/{ds}{sec.suffix}_r{ratio:g}_models.png"
                _side_by_side(rows, f"{_title(ds)}{sec.tag}, r = {ratio:g} %: first samples of each configuration",
                              folder / name)  # fmt: skip
                names.append((name, None))
    return names


SIDE_BY_SIDE_WIDTH = 1600  # px: the side-by-side image fits a screen without zooming out
LABEL_FONT, TITLE_FONT = 18, 20  # px


def _font(size: int) -> Any:
    """Pillow's own scalable font at ``size`` px (Pillow >= 10.1 with FreeType), else its small bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError, AttributeError):
        return ImageFont.load_default()


def _wrap(draw: Any, text: str, font: Any, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def _first_samples(npz: Path, n: int) -> Any:
    """The first ``n`` samples of a cell (uint8 N x 3 x H x W), or None when they cannot be read."""
    import numpy as np

    try:
        with np.load(npz, allow_pickle=False) as z:
            arr = z["samples"][:n]
    except (OSError, KeyError, ValueError, EOFError):
        return None
    return arr if arr.ndim == 4 and arr.shape[1] == 3 and arr.dtype == np.uint8 and len(arr) else None


def _side_by_side(rows: list[tuple[str, Path, Path]], caption: str, dest: Path, width: int = SIDE_BY_SIDE_WIDTH,
                  lines_per_row: int = 2, pad: int = 2, gap: int = 10) -> None:  # fmt: skip
    """One image for every configuration of a dataset and ratio: a title, then one row per configuration (in report
    order), its label in a column on the left and its first samples in ``lines_per_row`` lines, at most ``width`` px
    wide, in a font that reads at screen size. ``rows``: (label, samples.npz, grid png used when the npz is
    unreadable). Written atomically."""
    import numpy as np
    from PIL import Image, ImageDraw

    font, title_font = _font(LABEL_FONT), _font(TITLE_FONT)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = min(int(width * 0.25), max(int(probe.textlength(label, font=font)) for label, _, _ in rows) + 2 * gap)
    size = None
    for _, npz, _ in rows:
        first = _first_samples(npz, 1)
        if first is not None:
            size = first.shape[-1]
            break
    tile = (size * max(1, 64 // size)) if size else 64
    per_line = max(1, (width - label_w - gap) // (tile + pad))
    strip_w = per_line * (tile + pad) - pad
    row_h = lines_per_row * (tile + pad) - pad
    line_h = LABEL_FONT + 4
    title_lines = _wrap(probe, caption, title_font, label_w + gap + strip_w - 2 * gap)
    top = gap + len(title_lines) * (TITLE_FONT + 6) + gap
    heights = []
    for label, _, _ in rows:
        heights.append(max(row_h, len(_wrap(probe, label, font, label_w - 2 * gap)) * line_h))
    canvas = Image.new("RGB", (label_w + gap + strip_w, top + sum(heights) + gap * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(title_lines):
        draw.text((gap, gap + i * (TITLE_FONT + 6)), text, fill="black", font=title_font)
    y = top
    for (label, npz, png), h in zip(rows, heights):
        draw.line([(0, y - gap // 2), (canvas.width, y - gap // 2)], fill=(210, 210, 210))
        label_lines = _wrap(draw, label, font, label_w - 2 * gap)
        y0 = y + max(0, (h - len(label_lines) * line_h) // 2)
        for j, text in enumerate(label_lines):
            draw.text((gap, y0 + j * line_h), text, fill="black", font=font)
        samples = _first_samples(npz, per_line * lines_per_row)
        if samples is not None:
            up = max(1, tile // samples.shape[-1])
            for k, img in enumerate(samples):
                tile_img = Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0)))
                if up > 1:
                    tile_img = tile_img.resize((img.shape[2] * up, img.shape[1] * up), Image.NEAREST)
                line, col = divmod(k, per_line)
                canvas.paste(tile_img, (label_w + gap + col * (tile + pad), y + line * (tile + pad)))
        else:  # no readable samples: the cell's grid, scaled to the row
            grid = Image.open(png).convert("RGB")
            scale = min(row_h / grid.height, strip_w / grid.width)
            grid = grid.resize((max(1, int(grid.width * scale)), max(1, int(grid.height * scale))), Image.NEAREST)
            canvas.paste(grid, (label_w + gap, y))
        y += h + gap
    with atomic.atomic_path(dest) as tmp:
        canvas.save(tmp, format="PNG")


# ------------------------------------------------------------------------------------------------ the report


def load_context(out: Path, echo: Callable[[str], None] = lambda line: None) -> Context:
    store = ResultsStore(out)
    loaded = store.load()
    if not loaded.records:
        left_out = (
            f" ({len(loaded.notes)} note(s), first: {loaded.notes[0].removeprefix('note: ')})" if loaded.notes else ""
        )
        raise BenchError(f"no finished cells in {out}{left_out}: run 'bench run --out {out}' first (or pass another "
                         f"--out)")  # fmt: skip
    unknown = sorted({r.model for r in loaded.records if r.kind != "external" and r.model not in registry.names()})
    notes = list(loaded.notes)
    if unknown:  # plug-in models: without their plug-in the report can only name them, not title them
        notes.append(f"note: model(s) {', '.join(unknown)} are not registered here: pass their plug-in with --plugin "
                     f"to show their titles")  # fmt: skip
    for line in notes:
        echo(line)
    return build_context(store, loaded.records, loaded.from_cells, notes)


def _remove_stale(folder: Path, tables: set[str], grids: set[str] | None) -> None:
    """Tables and grids an earlier report wrote that this one did not (e.g. ``table1.csv`` once a second protocol
    split it into ``table1_<protocol>.csv``): they would be read as current. Grids only when ``grids`` is given (a
    report made from cells: a folder without them keeps the grids it was given)."""
    for path in folder.glob("table*.*"):
        if path.suffix in (".md", ".csv", ".tex") and path.name not in tables:
            path.unlink(missing_ok=True)
    for path in (folder / "grids").glob("*.png") if grids is not None else []:
        if f"grids/{path.name}" not in grids:
            path.unlink(missing_ok=True)


def report_folder(out: Path) -> Path:
    """OUT/report, unless something that is not a folder is in its place (a BenchError saying so)."""
    folder = ResultsStore(out).report_dir
    if folder.exists() and not folder.is_dir():
        raise BenchError(f"{folder} exists and is not a folder: move it away, the report is written there")
    return folder


def write_report(out: Path, echo: Callable[[str], None] = lambda line: None, context: Context | None = None) -> Path:
    """Write every table, Fig. 4, the sample grids, report.md and the exported files (``EXPORTED``) to OUT/report.
    ``context``: a :func:`load_context` of ``out`` already made (``bench report`` prints its headline table)."""
    out = Path(out)
    folder = report_folder(out)
    ctx = context if context is not None else load_context(out, echo)
    folder.mkdir(parents=True, exist_ok=True)
    df = ctx.df
    has_fid = "fid" in df and df["fid"].notna().any()
    fid_metric = "fid" if has_fid else "fd_classifier"
    tables: list[Table] = []
    loud: dict[str, str] = {}  # name of a section's first table -> its failed-validity line
    for sec in ctx.sections:
        own = _dataset_tables(sec, fid_metric, ctx)
        line = validity_line(ctx, sec)
        if line and line.startswith("CLASSIFIER") and own:
            loud[own[0].name] = f"**{_title(sec.dataset)}{sec.tag}: {line}.**"
        tables += own
    tables += [_f1_table(ctx), _flag_table(ctx), _filter_table(ctx), *_detector_tables(ctx)]
    for t in tables:
        t.write(folder)
    exported = _write_exported(ctx, folder)
    figs = _fig4(ctx, fid_metric, folder)
    grids = _copy_grids(ctx, folder)
    _remove_stale(folder, {f"{t.name}.{ext}" for t in tables for ext in ("md", "csv", "tex")},
                  {g for g, _ in grids} if ctx.from_cells else None)  # fmt: skip
    lines = ["# robust-gen-bench report", ""]
    profiles = sorted(set(map(str, df.profile))) if len(df) else []
    if "smoke" in profiles:
        lines += [f"**{SMOKE_NOTE}**", ""]
    commits = sorted(set(c for c in map(str, df.commit) if c))
    lines += [f"Cells: {len(df)}; profiles: {', '.join(profiles) or 'none'}; commits: {', '.join(commits)}", ""]
    lines += ctx.notes + ([""] if ctx.notes else [])
    lines += [line for name in loud.values() for line in (name, "")]
    for t in tables:
        lines += [f"- [{t.title}]({t.name}.md) ([csv]({t.name}.csv), [tex]({t.name}.tex))"]
    lines += [""] + [f"![Fig. 4]({f})" for f in figs if f.endswith(".png")] + [""]
    if grids:
        lines += ["## Sample grids", "",
                  "Each cell's grid shows its first samples (lowest seed); the *_models.png images put every "
                  "configuration of a dataset and ratio in rows, one under the other.", ""]  # fmt: skip
        lines += [f"- [{g}]({g})" + (f" ({n} samples)" if n else "") for g, n in grids]
    lines += ["", "## Exported with runs.csv", "",
              "Copy runs.csv and " + ", ".join(exported) + " (from this folder) to regenerate every table elsewhere: "
              "Table 5's rows, the detector tables' rows, each protocol's data (dataset, content fingerprint) and the "
              "classifiers' validity rows.", ""]  # fmt: skip
    lines += ["", "## Tables", ""]
    for t in tables:
        if t.name in loud:
            lines += [loud[t.name], ""]
        lines += [(folder / f"{t.name}.md").read_text(encoding="utf-8"), ""]
    atomic.write_text(folder / "report.md", "\n".join(lines))
    return folder / "report.md"
