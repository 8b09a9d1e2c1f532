"""The report's figures: Fig. 4 (% generated inliers, FD / FID, the robustness index and recall against the training
outlier ratio; one row per section) and the sample grids (each configuration's grid copied from its cell, and one
image per dataset and ratio with every configuration's first samples side by side).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bench import atomic
from bench.record import Cell
from bench.report_data import _profile_note, _title
from bench.report_headline import is_control_group
from bench.report_tables import mean_ci

if TYPE_CHECKING:
    from bench.report import Context
    from bench.store import ResultsStore


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
