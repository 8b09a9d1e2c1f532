"""``bench report``: the paper's tables (% inliers, FID or its fallback, Table 5), the robustness index, Fig. 4, sample
grids and the self-recognition / filter tables, for every dataset in a results folder, from the cells' own records.

Each table line is one *configuration* (dataset x settings digest: a model with its settings, or one of its
variants, or a reference generator, or an external sample set); a cell is the mean over seeds with a 95 % t-interval
when there are several. Rows of different configurations are never averaged. The paper's values and our difference
appear only where a comparison means something: real (non-synthetic) data under the cpu or paper profile, and only
for datasets that registered paper values. Reference generators are listed after a separator and drawn dashed.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from bench import atomic
from bench.errors import BenchError
from bench.models import registry
from bench.record import LEGACY_DIGEST, Cell
from bench.store import ResultsStore, frame
from bench.datasets import registry as dataset_registry
from bench.datasets.registry import PaperValues

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


@dataclass(frozen=True)
class Group:
    """One configuration of one dataset: a line in every table and figure."""

    dataset: str
    key: str  # settings digest (or a stand-in for rows written before digests)
    model: str
    label: str
    kind: str  # "model", "reference", "external"


@dataclass
class Context:
    store: ResultsStore
    df: pd.DataFrame
    groups: dict[str, list[Group]]  # dataset -> its groups, in report order
    sources: dict[str, set[str]]  # dataset -> data sources
    notes: list[str]

    def part(self, group: Group) -> pd.DataFrame:
        return self.df[(self.df.dataset == group.dataset) & (self.df.group == group.key)]


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


def _data_sources(store: ResultsStore, records: list) -> dict[str, set[str]]:
    """dataset -> where its images came from (a folder, or 'synthetic ...'), read from the cells' config.json."""
    sources: dict[str, set[str]] = {}
    for record in records:
        split = store.read_config(record).get("split")
        if isinstance(split, dict):
            sources.setdefault(record.dataset, set()).add(str(split.get("source", "?")))
    return sources


def _is_synthetic(sources: set[str]) -> bool:
    return bool(sources) and all(s.startswith("synthetic") for s in sources)


def _data_note(sources: set[str]) -> str:
    if not sources:
        return "data source not recorded"
    if _is_synthetic(sources):
        return "embedded synthetic data (NOT the paper's dataset; not comparable with the paper)"
    return f"images from {', '.join(sorted(sources))} (stand-in unless this is the paper's dataset; say so when comparing)"


def _title(ds: str) -> str:
    return dataset_registry.get(ds).title if ds in dataset_registry.names() else ds


def _paper(ctx: Context, ds: str) -> PaperValues | None:
    """The paper's values for ``ds`` when a comparison means something (real data, cpu or paper profile)."""
    if ds not in dataset_registry.names():
        return None
    paper = dataset_registry.get(ds).paper
    part = ctx.df[ctx.df.dataset == ds]
    if paper is None or _is_synthetic(ctx.sources.get(ds, set())) or not set(part.profile) <= set(COMPARABLE_PROFILES):
        return None
    return paper


def _profile_note(ctx: Context, ds: str) -> str:
    profiles = set(ctx.df[ctx.df.dataset == ds].profile)
    return f" {SMOKE_NOTE}" if "smoke" in profiles else ""


def _paper_name(model: str) -> str | None:
    return registry.get(model).paper_name if model in registry.names() else None


# ------------------------------------------------------------------------------------------------ tables


def _metric_table(ctx: Context, ds: str, metric: str, paper: dict | None, name: str, title: str, caption: str,
                  digits: int, extra: Callable[[pd.DataFrame, float], str] | None = None) -> Table:  # fmt: skip
    t = Table(name, title, caption, digits)
    ratios = sorted(set(ctx.df[ctx.df.dataset == ds].ratio))
    in_references = False
    for g in ctx.groups[ds]:
        if g.kind == "reference" and not in_references:
            t.add("— reference generators (not methods) —", {})
            in_references = True
        part = ctx.part(g)
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


def _dataset_tables(ctx: Context, ds: str, fid_metric: str) -> list[Table]:
    spec = dataset_registry.get(ds) if ds in dataset_registry.names() else None
    paper = _paper(ctx, ds)
    numbers = spec.paper.table_numbers if spec is not None and spec.paper is not None else None
    note = _data_note(ctx.sources.get(ds, set())) + "." + _profile_note(ctx, ds)
    shared = shared_settings(ctx.df, ds)
    if shared:
        note += f" Settings changed from the profile's defaults in every row: {', '.join(shared)}."
    if spec is None:
        note += f" Dataset '{ds}' is not registered here (load its plug-in with --plugin): shown without paper values."
    if paper is None and spec is not None and spec.paper is not None:
        note += " No paper rows: synthetic data, or a profile whose budget makes a comparison meaningless."
    n_note = _samples_note(ctx, ds)
    t_in = f"table{numbers[0]}" if numbers else f"table_{ds}_inliers"
    t_fd = f"table{numbers[1]}" if numbers else f"table_{ds}_fd"
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
        ctx, ds, "pct_inliers", None if paper is None else paper.pct_inliers, t_in,
        f"{label_in}Percentage of generated inliers for {_title(ds)}",
        f"Classified by the held-out inlier classifier; {n_note} {note}", 2,
    )]  # fmt: skip
    fd = _metric_table(
        ctx, ds, fid_metric, None if paper is None or not has_fid else paper.fid, t_fd,
        f"{label_fd}{'FID' if has_fid else 'Fréchet distance (fallback, not FID)'} of generated images for {_title(ds)}",
        f"{fid_note} {note}", 3,
    )  # fmt: skip
    if paper is not None and not has_fid:
        ratios = set(ctx.df[ctx.df.dataset == ds].ratio)
        for pname, values in paper.fid.items():
            fd.add(f"{pname} (paper FID, other metric)", {f"{r:g}%": f"{v:.3f}" for r, v in values.items() if r in ratios})
    tables.append(fd)
    tables.append(_headline_table(ctx, ds, fid_metric))
    tables.append(_metric_table(
        ctx, ds, "robustness", None, f"table_{ds}_robustness", f"Robustness index for {_title(ds)}",
        "(% inliers - replay) / (replay inliers - replay) on the same split, seed and sample count: 0 = as "
        "contaminated as the training data, 1 = as clean as the inlier-only oracle, negative = worse than the data; "
        "undefined at 0 %. Recall (share of real inliers covered) in brackets: a narrow mode scores high % inliers at "
        f"low recall. {note}", 2, extra=_recall_note,
    ))  # fmt: skip
    return tables


def _headline_table(ctx: Context, ds: str, fid_metric: str) -> Table:
    """At the largest ratio: every configuration's % inliers, robustness, recall and FD/FID side by side."""
    part = ctx.df[ctx.df.dataset == ds]
    r = max(part.ratio)
    fd = "FID" if fid_metric == "fid" else "FD (not FID)"
    t = Table(f"table_{ds}_at_{r:g}", f"Headline. {_title(ds)} at r = {r:g} %",
              f"Mean ± 95 % t-interval over seeds (n = number of seeds). {_data_note(ctx.sources.get(ds, set()))}."
              f"{_profile_note(ctx, ds)}", 2)  # fmt: skip
    for g in ctx.groups[ds]:
        sel = ctx.part(g)
        sel = sel[sel.ratio == r]
        if sel.empty:
            continue
        t.add(g.label, {
            "% inliers": _fmt(*mean_ci(sel.pct_inliers)[:2], 1), "robustness": _fmt(*mean_ci(sel.robustness)[:2], 2),
            "recall": _fmt(*mean_ci(sel.recall)[:2], 2), fd: _fmt(*mean_ci(sel[fid_metric])[:2], 2), "n": str(len(sel)),
        })  # fmt: skip
    return t


def _samples_note(ctx: Context, ds: str) -> str:
    n = sorted({int(v) for v in ctx.df[ctx.df.dataset == ds].n_samples.dropna()})
    return f"{'/'.join(map(str, n))} generated samples per cell;" if n else ""


def _f1_frame(store: ResultsStore) -> pd.DataFrame:
    frames = []
    cols = ["dataset", "seed", "ratio", "f1", "profile"]
    for p in sorted(store.f1_dir.glob("*.csv")):
        try:
            frame = pd.read_csv(p)
        except (OSError, ValueError, pd.errors.ParserError):
            continue  # a damaged Table 5 input: left out (it is rebuilt by the next `bench run` of its dataset)
        if set(cols[:4]) <= set(frame.columns):
            frame["ratio"] = pd.to_numeric(frame["ratio"], errors="coerce")
            frame["f1"] = pd.to_numeric(frame["f1"], errors="coerce")
            frames.append(frame.dropna(subset=["ratio"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _f1_table(ctx: Context) -> Table:
    f1 = _f1_frame(ctx.store)
    datasets = [d for d in dict.fromkeys(f1.dataset)]
    notes = "; ".join(f"{_title(d)}: {_data_note(ctx.sources.get(d, set()))}" for d in datasets)
    t = Table("table5", "Table 5. Testing F1 of the binary inlier classifier",
              f"Held-out labelled test sets at each test outlier ratio; inliers are the positive class. {notes}.", 3)  # fmt: skip
    ratios = sorted(set(f1.ratio)) if len(f1) else [0, 5, 10, 15, 20, 25, 30]
    for ds in datasets:
        part = f1[f1.dataset == ds]
        profiles = sorted(set(part.profile.astype(str))) if "profile" in part else [""]
        for prof in profiles:
            sel = part[part.profile.astype(str) == prof] if "profile" in part else part
            suffix = f" [{prof}]" if len(profiles) > 1 else ""
            t.add(f"{_title(ds)}{suffix} (ours)", {f"{r:g}%": _fmt(*mean_ci(sel[sel.ratio == r].f1)[:2], 3) for r in ratios})
        paper = _paper(ctx, ds)
        if paper is not None and paper.f1:
            t.add(f"{_title(ds)} (paper)", {f"{r:g}%": f"{v:.3f}" for r, v in paper.f1.items() if r in ratios})
    return t


def _set_table(ctx: Context, t: Table, prefix: str) -> Table:
    """Precision / recall / AUC columns ``<prefix>_precision`` ... per configuration and ratio (configurations
    without any are left out)."""
    cols = (f"{prefix}_precision", f"{prefix}_recall", f"{prefix}_auc")
    for ds, groups in ctx.groups.items():
        for g in groups:
            part = ctx.part(g)
            part = part[part[cols[0]].notna() | part[cols[2]].notna()]
            if part.empty:
                continue
            cells = {}
            for r in sorted(set(part.ratio)):
                sel = part[part.ratio == r]
                p, rc, auc = (_fmt(*mean_ci(sel[c])[:2], 2) for c in cols)
                cells[f"{r:g}%"] = f"P {p} / R {rc}" + (f" / AUC {auc}" if auc else "")
            t.add(f"{_title(ds)} {g.label}", cells)
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


def _detector_frame(store: ResultsStore) -> pd.DataFrame:
    frames = []
    for p in sorted(store.detectors_dir.glob("*.csv")):
        try:
            frames.append(pd.read_csv(p))
        except (OSError, ValueError, pd.errors.ParserError):
            continue
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _detector_tables(ctx: Context) -> list[Table]:
    det = _detector_frame(ctx.store)
    main = Table("table_detectors", "Extra table. Label-free outlier detectors on each training set",
                 "AUC, and precision / recall when dropping the top r of the scores (r = the true outlier ratio, "
                 "which a user does not know); fitted on the contaminated training images, scored against the labels. "
                 "Mean over seeds.", 2)  # fmt: skip
    sweep = Table("table_detectors_fractions", "Extra table. What dropping a fixed fraction f leaves",
                  "Outlier share left in the kept training set (%) / inliers dropped (%) when dropping the top f of each "
                  "detector's scores; the training set itself holds r % outliers. Mean over seeds.", 1)  # fmt: skip
    if det.empty or not {"dataset", "detector", "ratio", "fraction"} <= set(det.columns):
        return [main, sweep]
    for ds in [d for d in ctx.groups if d in set(det.dataset)]:
        part = det[det.dataset == ds]
        for name in sorted(set(part.detector)):
            d = part[part.detector == name]
            cells = {}
            for r in sorted(set(d.ratio)):
                sel = d[(d.ratio == r) & d.oracle_fraction.astype(bool)]
                auc, p, rc = (_fmt(*mean_ci(sel[c])[:2], 2) for c in ("auc", "precision", "recall"))
                cells[f"{r:g}%"] = f"AUC {auc} / P {p} / R {rc}"
            main.add(f"{_title(ds)} {name}", cells)
            for f in sorted(set(d[~d.oracle_fraction.astype(bool)].fraction)):
                cells = {}
                for r in sorted(set(d.ratio)):
                    sel = d[(d.ratio == r) & (d.fraction == f) & ~d.oracle_fraction.astype(bool)]
                    n_in = _inliers_per_split(ctx, ds, r)
                    left = mean_ci(100 * sel.kept_outlier_share)[0]
                    lost = mean_ci(100 * sel.inliers_dropped / n_in)[0] if n_in else math.nan
                    cells[f"{r:g}%"] = f"{left:.1f} / {lost:.1f}" if left == left else ""
                sweep.add(f"{_title(ds)} {name}, f = {f:g}", cells)
    return [main, sweep]


def _inliers_per_split(ctx: Context, ds: str, r: float) -> float:
    part = ctx.df[(ctx.df.dataset == ds) & (ctx.df.ratio == r)]
    return float(part.n_inliers.iloc[0]) if len(part) else math.nan


# ------------------------------------------------------------------------------------------------ figures


def _fig4(ctx: Context, fid_metric: str, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(ctx.groups)
    if not datasets:
        return []
    panels = [("pct_inliers", "% generated inliers"),
              (fid_metric, "FID" if fid_metric == "fid" else "FD (classifier features; not FID)"),
              ("robustness", "robustness index")]  # fmt: skip
    fig, axes = plt.subplots(len(datasets), 3, figsize=(15, 3.9 * len(datasets)), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, ds in enumerate(datasets):
        model_groups = [g for g in ctx.groups[ds] if g.kind != "reference"]
        style = {g.key: dict(color=colours[i % len(colours)], ls="-", marker="o") for i, g in enumerate(model_groups)}
        for g in ctx.groups[ds]:
            if g.kind == "reference":
                style[g.key] = dict(color="black" if "oracle" in g.label else "grey", ls="--", marker="")
        for col, (metric, label) in enumerate(panels):
            ax = axes[row][col]
            for g in ctx.groups[ds]:
                part = ctx.part(g)
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
                xs = sorted(set(ctx.df[ctx.df.dataset == ds].ratio))
                ax.plot(xs, [100 - x for x in xs], color="grey", lw=0.8, ls=":", label="training data (100 - r)")
            if metric == "robustness":
                ax.axhline(0, color="grey", lw=0.8, ls=":")
                ax.axhline(1, color="black", lw=0.8, ls=":")
            xs_all = sorted(set(ctx.df[ctx.df.dataset == ds].ratio))
            ax.set_xlim(min(xs_all) - 1, max(xs_all) + 1)  # the same r axis in every panel (robustness starts at r > 0)
            ax.set_title(f"{_title(ds)}: {label}" + (" (SMOKE: meaningless)" if _profile_note(ctx, ds) else ""))
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
    """Each configuration's grid (lowest seed) as grids/<ds>_<model>[_<digest>]_r<ratio>.png, plus one side-by-side
    image per dataset and ratio (grids/<ds>_r<ratio>_models.png). Returns (name, samples shown)."""
    names = []
    for ds, groups in ctx.groups.items():
        for ratio in sorted(set(ctx.df[ctx.df.dataset == ds].ratio)):
            row_images = []
            for g in groups:
                part = ctx.part(g)
                part = part[part.ratio == ratio]
                if part.empty:
                    continue
                first = part.sort_values("seed").iloc[0]
                src = _cell_folder(ctx.store, first) / "samples.png"
                if not src.exists():
                    continue
                several = sum(other.model == g.model for other in groups) > 1
                suffix = f"_{g.key[:8]}" if several else ""
                name = f"grids/{ds}_{g.model}{suffix}_r{ratio:g}.png"
                with atomic.atomic_path(folder / name) as tmp:
                    shutil.copyfile(src, tmp)
                names.append((name, _grid_count(ctx.store, first)))
                row_images.append((g.label, folder / name))
            if len(row_images) > 1:
                name = f"grids/{ds}_r{ratio:g}_models.png"
                _side_by_side(row_images, f"r = {ratio:g} %", folder / name)
                names.append((name, None))
    return names


def _side_by_side(grids: list[tuple[str, Path]], caption: str, dest: Path, gap: int = 10, label_h: int = 24) -> None:
    """Paste labelled grid images left to right on a white canvas (written atomically)."""
    from PIL import Image, ImageDraw

    images = [Image.open(path).convert("RGB") for _, path in grids]
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, max(im.height for im in images) + label_h), "white")
    draw, x = ImageDraw.Draw(canvas), 0
    for (label, _), im in zip(grids, images):
        canvas.paste(im, (x, label_h))
        draw.text((x + 4, 6), f"{label}, {caption}", fill="black")
        x += im.width + gap
    with atomic.atomic_path(dest) as tmp:
        canvas.save(tmp, format="PNG")


# ------------------------------------------------------------------------------------------------ the report


def load_context(out: Path, echo: Callable[[str], None] = lambda line: None) -> Context:
    store = ResultsStore(out)
    loaded = store.load()
    if not loaded.records:
        left_out = f" ({len(loaded.notes)} note(s), first: {loaded.notes[0].removeprefix('note: ')})" if loaded.notes else ""
        raise BenchError(f"no finished cells in {out}{left_out}: run 'bench run --out {out}' first (or pass another "
                         f"--out)")  # fmt: skip
    for line in loaded.notes:
        echo(line)
    df = frame(loaded.records)
    df["group"] = [_group_key(r) for _, r in df.iterrows()] if len(df) else []
    sources = _data_sources(store, loaded.records) if loaded.from_cells else {}
    return Context(store, df, _groups(df) if len(df) else {}, sources, list(loaded.notes))


def write_report(out: Path, echo: Callable[[str], None] = lambda line: None) -> Path:
    out = Path(out)
    folder = ResultsStore(out).report_dir
    if folder.exists() and not folder.is_dir():
        raise BenchError(f"{folder} exists and is not a folder: move it away, the report is written there")
    ctx = load_context(out, echo)
    folder.mkdir(parents=True, exist_ok=True)
    df = ctx.df
    has_fid = "fid" in df and df["fid"].notna().any()
    fid_metric = "fid" if has_fid else "fd_classifier"
    tables: list[Table] = []
    for ds in ctx.groups:
        tables += _dataset_tables(ctx, ds, fid_metric)
    tables += [_f1_table(ctx), _flag_table(ctx), _filter_table(ctx), *_detector_tables(ctx)]
    for t in tables:
        t.write(folder)
    figs = _fig4(ctx, fid_metric, folder)
    grids = _copy_grids(ctx, folder)
    lines = ["# robust-gen-bench report", ""]
    profiles = sorted(set(map(str, df.profile))) if len(df) else []
    if "smoke" in profiles:
        lines += [f"**{SMOKE_NOTE}**", ""]
    commits = sorted(set(c for c in map(str, df.commit) if c))
    lines += [f"Cells: {len(df)}; profiles: {', '.join(profiles) or 'none'}; commits: {', '.join(commits)}", ""]
    lines += ctx.notes + ([""] if ctx.notes else [])
    for t in tables:
        lines += [f"- [{t.title}]({t.name}.md) ([csv]({t.name}.csv), [tex]({t.name}.tex))"]
    lines += [""] + [f"![Fig. 4]({f})" for f in figs if f.endswith(".png")] + [""]
    if grids:
        lines += ["## Sample grids", "",
                  "Each cell's grid shows its first samples (lowest seed); the side-by-side images put every "
                  "configuration of a dataset and ratio next to each other.", ""]  # fmt: skip
        lines += [f"- [{g}]({g})" + (f" ({n} samples)" if n else "") for g, n in grids]
    lines += ["", "## Tables", ""]
    for t in tables:
        lines += [(folder / f"{t.name}.md").read_text(encoding="utf-8"), ""]
    atomic.write_text(folder / "report.md", "\n".join(lines))
    return folder / "report.md"
