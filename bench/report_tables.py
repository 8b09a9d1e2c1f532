"""The report's tables: :class:`Table` (one table, written as .csv, .md and .tex), a cell's mean and 95 % t-interval
over seeds (:func:`mean_ci`), and the tables read off a section or the whole report: % generated inliers and FD / FID
beside the paper's values where a comparison means something, the headline at the largest ratio, the robustness index,
Table 5 (the classifier's F1), the self-recognition and filter tables (what a model set aside, what a filter dropped)
and the detector tables. A section's verdict, capacity and validity tables are bench/report_headline.py's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bench import atomic
from bench.datasets import registry as dataset_registry
from bench.datasets.registry import PaperValues
from bench.models import registry
from bench.report_data import _data_note, _profile_note, _tag, _title, shared_settings

if TYPE_CHECKING:
    from bench.report import Context, Section


# two-sided 95 % Student t quantiles, df = 1..30 (beyond: normal 1.96)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip
COMPARABLE_PROFILES = ("cpu", "paper")  # profiles under which a stand-in or real dataset may face the paper's numbers


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


def _paper(sec: Section) -> PaperValues | None:
    """The paper's values for a section when a comparison means something (not synthetic, cpu or paper profile)."""
    ds = sec.dataset
    if ds not in dataset_registry.names():
        return None
    paper = dataset_registry.get(ds).paper
    if paper is None or sec.data.synthetic or not set(sec.df.profile) <= set(COMPARABLE_PROFILES):
        return None
    return paper


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


def _section_tables(sec: Section, fid_metric: str) -> list[Table]:
    """A section's % inliers, FD / FID, headline and robustness tables (its verdict, capacity and validity tables:
    bench/report_headline.py's ``_verdict_tables``)."""
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
    return tables


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
