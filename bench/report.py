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

This module holds the report's context (its sections, their protocols and data, and the rows read beside runs.csv),
the exported files and :func:`write_report`. The words naming the data are in bench/report_data.py, the tables in
bench/report_tables.py and bench/report_headline.py (the verdict, capacity and validity tables), the figures in
bench/report_figures.py; their public names are importable from here too (:data:`__all__`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench import atomic, identity
from bench.errors import BenchError
from bench.models import registry
from bench.record import LEGACY_DIGEST, CellRecord
from bench.report_data import (
    SMOKE_NOTE,
    Data,
    Group,
    _tag,
    _title,
    _variant_items,
    _with_protocol,
    data_words,
    shared_settings,
)
from bench.report_figures import LABEL_FONT, SIDE_BY_SIDE_WIDTH, TITLE_FONT, _copy_grids, _fig4, fig4_panels
from bench.report_headline import (
    FLAG_WORDS,
    VALIDITY_COLS,
    _verdict_tables,
    cell_flags,
    is_control_group,
    section_capacity,
    section_flags,
    section_validity,
    validity_line,
)
from bench.report_tables import (
    COMPARABLE_PROFILES,
    Table,
    _detector_tables,
    _f1_table,
    _filter_table,
    _flag_table,
    _section_tables,
    mean_ci,
)
from bench.store import ResultsStore, frame

__all__ = [  # bench.report's public names, wherever they are defined: other modules and tests import them from here
    "COMPARABLE_PROFILES", "DATA_FORMAT", "EXACT_FLOATS", "EXPORTED", "FLAG_WORDS", "LABEL_FONT", "SIDE_BY_SIDE_WIDTH",
    "SMOKE_NOTE", "TITLE_FONT", "VALIDITY_COLS", "Context", "Data", "Group", "Section", "Table", "build_context",
    "cell_flags", "data_words", "fig4_panels", "is_control_group", "load_context", "mean_ci", "protocols_of",
    "refuse_incomparable", "report_folder", "section_capacity", "section_flags", "section_validity", "shared_settings",
    "validity_line", "write_report",
]  # fmt: skip


# ------------------------------------------------------------------------------------------------ the data

# written beside the tables; read back where cells are absent
EXPORTED = ("f1.csv", "detectors.csv", "data.json", "validity.csv")
DATA_FORMAT = 1


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
        own = _section_tables(sec, fid_metric) + _verdict_tables(ctx, sec)
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
