"""``bench report``: the paper's Tables 1-5, Fig. 4, sample grids and a self-recognition table from stored results.

Reads only ``runs.csv``, ``f1/*.csv`` and the cell folders; never trains anything. Each table cell is the mean
over seeds with a 95 % t-interval when there are several, with the paper's value and the difference beside it.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd

from bench import atomic, store
from bench.paper_values import F1, FID, PAPER_MODELS, PCT_INLIERS

DATASET_TITLES = {"facemask": "FaceMask", "roomcrop": "RoomCrop"}
# names for our own labels (PAPER_MODELS holds the paper's names, in its order)
MODEL_TITLES = {"rvqvae": "RVQ-VAE", "vqvae": "VQ-VAE", "robustot": "Robust OT", "gan": "GAN",
                "sdnrgan3": "SD-NR-GAN-III"}
# two-sided 95 % Student t quantiles, df = 1..30 (beyond: normal 1.96)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def mean_ci(values) -> tuple[float, float, int]:
    """(mean, half-width of the 95 % t-interval, n); half-width is nan for a single value."""
    v = [float(x) for x in values if x == x]
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


def _data_sources(out: Path) -> dict[str, set[str]]:
    """dataset -> where its images came from (a folder, or 'synthetic ...'), read from the cells' config.json."""
    sources: dict[str, set[str]] = {}
    for cfg in (out / "cells").glob("*/*/*/*/config.json"):
        try:
            meta = json.loads(cfg.read_text())
        except json.JSONDecodeError:
            continue
        sources.setdefault(meta["cell"]["dataset"], set()).add(str(meta.get("split", {}).get("source", "?")))
    return sources


def _data_note(sources: set[str]) -> str:
    if not sources:
        return "data source unknown"
    if all(s.startswith("synthetic") for s in sources):
        return "embedded synthetic data (NOT the paper's dataset; numbers are not comparable with the paper)"
    return f"images from {', '.join(sorted(sources))} (stand-in unless this is the paper's dataset; say so when comparing)"


class Table:
    """One results table: rows = models, columns = ratios, plus the paper's value and our difference."""

    def __init__(self, name: str, title: str, caption: str, digits: int):
        self.name, self.title, self.caption, self.digits = name, title, caption, digits
        self.rows: list[dict[str, str]] = []

    def add(self, label: str, cells: dict[str, str]) -> None:
        self.rows.append({"": label, **cells})

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows).fillna("")
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


def _metric_table(df, dataset, metric, paper, ratios, name, title, caption, digits) -> Table:
    t = Table(name, title, caption, digits)
    part = df[df.dataset == dataset]
    for model in _model_order(set(part.model)):
        ours, theirs, diff = {}, {}, {}
        for r in ratios:
            vals = part[(part.model == model) & (part.ratio == r)][metric]
            m, hw, _ = mean_ci(vals)
            ours[f"{r:g}%"] = _fmt(m, hw, digits)
            p = paper.get(model, {}).get(r) if paper else None
            theirs[f"{r:g}%"] = "" if p is None else f"{p:.{digits}f}"
            diff[f"{r:g}%"] = "" if p is None or m != m else f"{m - p:+.{digits}f}"
        t.add(f"{model} (ours)", ours)
        if paper and model in paper:
            t.add(f"{PAPER_MODELS[model]} (paper)", theirs)
            t.add("difference", diff)
    return t


def _f1_frame(out: Path) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in sorted((out / "f1").glob("*.csv"))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["dataset", "seed", "ratio", "f1"])


def write_report(out: Path) -> Path:
    df = store.read_frame(out)
    folder = out / "report"
    folder.mkdir(parents=True, exist_ok=True)
    sources = _data_sources(out)
    has_fid = "fid" in df and df["fid"].notna().any()
    fid_metric = "fid" if has_fid else "fd_classifier"
    fid_note = (
        "Inception FID (torch-fidelity, local InceptionV3 weights) against held-out real inliers."
        if has_fid
        else "NOT FID: InceptionV3 weights were absent, so this is fd_classifier, the Fréchet distance in a locally "
        "trained classifier's feature space; paper FID values are shown for orientation only (no difference taken)."
    )
    tables: list[Table] = []
    for i, ds in enumerate(("facemask", "roomcrop")):
        if ds not in set(df.dataset):
            continue
        note = _data_note(sources.get(ds, set()))
        ratios = sorted(set(df[df.dataset == ds].ratio))
        tables.append(_metric_table(
            df, ds, "pct_inliers", PCT_INLIERS[ds], ratios, f"table{1 + i}",
            f"Table {1 + i}. Percentage of generated inliers for {DATASET_TITLES[ds]}",
            f"Classified by the held-out inlier classifier; {note}.", 2))  # fmt: skip
        paper_fid = FID[ds] if has_fid else {m: {} for m in FID[ds]}
        t = _metric_table(
            df, ds, fid_metric, paper_fid, ratios, f"table{3 + i}",
            f"Table {3 + i}. {'FID' if has_fid else 'Fréchet distance (fallback, not FID)'} of generated images for "
            f"{DATASET_TITLES[ds]}", f"{fid_note} {note}.", 3)  # fmt: skip
        if not has_fid:
            for model, values in FID[ds].items():
                t.add(f"{PAPER_MODELS[model]} (paper FID, other metric)", {f"{r:g}%": f"{v:.3f}" for r, v in values.items() if r in ratios})
        tables.append(t)
    tables.append(_f1_table(out, sources))
    tables.append(_flag_table(df))
    for t in tables:
        t.write(folder)
    figs = _fig4(df, fid_metric, folder)
    grids = _copy_grids(out, df, folder)
    lines = ["# robust-gen-bench report", ""]
    profiles = ", ".join(sorted(set(map(str, df.profile)))) if len(df) else "none"
    lines += [f"Cells: {len(df)}; profiles: {profiles}; commits: {', '.join(sorted(set(map(str, df.commit.dropna()))))}", ""]
    for t in tables:
        lines += [f"- [{t.title}]({t.name}.md) ([csv]({t.name}.csv), [tex]({t.name}.tex))"]
    lines += [""] + [f"![Fig. 4]({f})" for f in figs if f.endswith(".png")] + [""]
    if grids:
        lines += ["## Sample grids (100 samples per cell)", ""] + [f"- [{g}]({g})" for g in grids]
    lines += ["", "## Tables", ""]
    for t in tables:
        lines += [(folder / f"{t.name}.md").read_text(), ""]
    atomic.write_text(folder / "report.md", "\n".join(lines))
    return folder / "report.md"


def _f1_table(out: Path, sources) -> Table:
    f1 = _f1_frame(out)
    notes = "; ".join(f"{DATASET_TITLES[d]}: {_data_note(sources.get(d, set()))}" for d in sorted(set(f1.dataset)))
    t = Table("table5", "Table 5. Testing F1 of the binary inlier classifier",
              f"Held-out labelled test sets at each test outlier ratio; inliers are the positive class. {notes}.", 3)  # fmt: skip
    ratios = sorted(set(f1.ratio)) if len(f1) else list(F1["facemask"])
    for ds in ("facemask", "roomcrop"):
        part = f1[f1.dataset == ds]
        if len(part):
            t.add(f"{DATASET_TITLES[ds]} (ours)",
                  {f"{r:g}%": _fmt(*mean_ci(part[part.ratio == r].f1)[:2], 3) for r in ratios})  # fmt: skip
        t.add(f"{DATASET_TITLES[ds]} (paper)", {f"{r:g}%": f"{v:.3f}" for r, v in F1[ds].items() if r in ratios})
    return t


def _flag_table(df: pd.DataFrame) -> Table:
    t = Table("table_selfrecognition", "Extra table. Self-recognition: which training images a robust model set aside",
              "Precision / recall of the flagged set against the true outlier labels (chance precision = ratio). "
              "Not reported by the paper.", 3)  # fmt: skip
    part = df[df.flag_precision.notna()] if "flag_precision" in df else df.iloc[:0]
    for (ds, model), g in part.groupby(["dataset", "model"]):
        cells = {}
        for r in sorted(set(g.ratio)):
            p = _fmt(*mean_ci(g[g.ratio == r].flag_precision)[:2], 2)
            rc = _fmt(*mean_ci(g[g.ratio == r].flag_recall)[:2], 2)
            cells[f"{r:g}%"] = f"P {p} / R {rc}"
        t.add(f"{DATASET_TITLES.get(ds, ds)} {model}", cells)
    return t


def _fig4(df: pd.DataFrame, fid_metric: str, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    datasets = [d for d in ("facemask", "roomcrop") if d in set(df.dataset)]
    if not datasets:
        return []
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.8 * len(datasets)), squeeze=False)
    for row, ds in enumerate(datasets):
        part = df[df.dataset == ds]
        for col, (metric, label) in enumerate(
            [("pct_inliers", "% generated inliers"), (fid_metric, "FID" if fid_metric == "fid" else "FD (classifier features; not FID)")]
        ):
            ax = axes[row][col]
            if part[metric].notna().any():
                sns.lineplot(data=part, x="ratio", y=metric, hue="model", marker="o", errorbar=("ci", 95), ax=ax)
            ax.set_title(f"{DATASET_TITLES[ds]}: {label}")
            ax.set_xlabel("training outlier ratio (%)")
            ax.set_ylabel(label)
    fig.tight_layout()
    names = []
    for ext in ("png", "svg"):
        with atomic.atomic_path(folder / f"fig4.{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=120)
        names.append(f"fig4.{ext}")
    plt.close(fig)
    return names


def _copy_grids(out: Path, df: pd.DataFrame, folder: Path) -> list[str]:
    """Each cell's grid (lowest seed) as grids/<ds>_<model>_r<ratio>.png, plus one side-by-side image per dataset
    and ratio with every model that has a grid (grids/<ds>_r<ratio>_models.png)."""
    names = []
    for (ds, ratio), part in df.groupby(["dataset", "ratio"]):
        row = []
        for model in _model_order(set(part.model)):
            seed = int(part[part.model == model].seed.min())
            src = store.Cell(ds, model, float(ratio), seed).folder(out) / "samples.png"
            if src.exists():
                name = f"grids/{ds}_{model}_r{ratio:g}.png"
                with atomic.atomic_path(folder / name) as tmp:
                    shutil.copyfile(src, tmp)
                names.append(name)
                row.append((MODEL_TITLES.get(model, model), folder / name))
        if len(row) > 1:
            name = f"grids/{ds}_r{ratio:g}_models.png"
            _side_by_side(row, f"r = {ratio:g} %", folder / name)
            names.append(name)
    return names


def _model_order(models: set[str]) -> list[str]:
    """The paper's order (RVQ-VAE, VQ-VAE, Robust OT, GAN, SD-NR-GAN-III), then any other model by name."""
    known = [m for m in PAPER_MODELS if m in models]
    return known + sorted(models - set(known))


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
