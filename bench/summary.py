"""What `bench run` prints at the end, and `bench report` before its path: per dataset (and per protocol, when a
dataset was run on several data or classifier settings), % generated inliers per model and ratio next to the training
data's own share, the classifier's validity (loudly when it failed), the robustness index with the flags that withhold
"robust" marked on its cells (bench/headline.py), recall, and each model's capacity where its control was run; then,
for `bench run`, where the report went and what the numbers mean for this profile *and these data* (the embedded
synthetic data, or a stand-in / your own folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import headline as flags_of
from bench.record import CellRecord

SMOKE = "SMOKE PROFILE: a plumbing check on tiny data and models; these numbers carry no meaning."

# What the numbers mean and what to run next: by profile, and by the data the cells were trained on.
NEXT_STEPS = {
    ("smoke", "synthetic"): "For the phenomenon in minutes run the README's main job (bench run --profile demo ...).",
    ("smoke", "folder"): "For numbers on this data, rerun with --profile cpu and the same --data-root (a small folder "
                         "may need lower counts, e.g. --set data.<dataset>.inliers=N).",
    ("demo", "synthetic"): "These are synthetic data and tiny models: the point is the trend, not the values. Next: a "
                           "real stand-in with the cpu profile, e.g. bench run --profile cpu --datasets facemask "
                           "--data-root facemask=../shared/data/facemask-synth --jobs 2 --set run.threads=1 (about "
                           "an hour on 2 cores).",
    ("demo", "folder"): "These are tiny 16 px models on a small sample of this data: the point is the trend, not the "
                        "values. Next: the cpu profile on the same data (the same --data-root with --profile cpu; "
                        "'bench datasets' lists the images it needs), with --seeds 0,1,2 for intervals.",
    ("cpu", "synthetic"): "cpu profile on the embedded synthetic data (NOT a real dataset): budget models at 32 px, "
                          "nothing to compare with the paper. Next: a stand-in or your own folder with --data-root "
                          "NAME=PATH.",
    ("cpu", "folder"): "cpu profile: budget models at 32 px (one seed is noisy by several points; use --seeds 0,1,2 "
                       "for CIs).",
    ("paper", "synthetic"): "paper profile on the embedded synthetic data: the paper's budget, but not its datasets; "
                            "its tables compare only with its datasets (--data-root NAME=PATH).",
    ("paper", "folder"): "paper profile: the paper's protocol; compare with its tables only on its datasets.",
}  # fmt: skip


def data_kind(synthetic: bool | None) -> str:
    """ "synthetic" for the embedded synthetic data, "folder" for a stand-in or a user's folder (or unknown data)."""
    return "synthetic" if synthetic else "folder"


def closing_words(profile: str, data: list[Any]) -> str:
    """What the numbers mean and what to run next, for ``profile`` and the data the cells used (``data``: the
    report's :class:`~bench.report.Data` of each dataset and protocol). Mixed data: one sentence per kind, each
    naming its datasets."""
    kinds: dict[str, list[str]] = {}
    for d in data:
        names = kinds.setdefault(data_kind(d.synthetic), [])
        if d.dataset not in names:
            names.append(d.dataset)
    kinds = kinds or {"synthetic": []}
    head = f"{SMOKE} " if profile == "smoke" else ""
    if len(kinds) == 1:
        return head + NEXT_STEPS.get((profile, next(iter(kinds))), "")
    words = {"synthetic": "embedded synthetic data", "folder": "your data folders"}
    return head + " ".join(f"{', '.join(names)} ({words[kind]}): {NEXT_STEPS.get((profile, kind), '')}"
                           for kind, names in sorted(kinds.items()))  # fmt: skip


# The flags' markers after a robustness cell (bench/headline.py): a marked cell is never called robust.
MARKS = {flags_of.LOW_COVERAGE: "C", flags_of.LOST_COVERAGE: "L", flags_of.NO_CAPACITY: "X"}
LEGEND = (f"(C = low coverage (collapse, heavy blur): coverage below {flags_of.MIN_COVERAGE:g} of the oracle's; L = lost coverage: recall below "
          f"{flags_of.MIN_RECALL_KEPT:g} x its own at r = 0; X = cannot draw outliers: its capacity control or "
          f"reconstruction says so; a flagged row is never called robust, whatever its index)")  # fmt: skip


def _pivot(sec: Any, metric: str, digits: int, min_ratio: float | None = None, groups: list[Any] | None = None,
           marks: dict[tuple[str, float], str] | None = None) -> list[str]:  # fmt: skip
    """One row per configuration (``groups``, else all of ``sec``'s), one column per ratio (above ``min_ratio``): the
    mean over seeds; ``marks``: (group key, ratio) -> letters written after the number."""
    df = sec.df if min_ratio is None else sec.df[sec.df.ratio > min_ratio]
    groups = sec.groups if groups is None else groups
    marks = {k: v for k, v in (marks or {}).items() if v}
    ratios = sorted(set(df.ratio))
    width = max([len(g.label) for g in groups] + [26])
    lines = [f"{'':{width}s}" + "".join(f"{f'r = {r:g} %':>11s}" for r in ratios)]
    if metric == "pct_inliers":
        lines.append(f"{'training data (for scale)':{width}s}" + "".join(f"{100 - r:>11.1f}" for r in ratios))
    pad = max((len(m) for m in marks.values()), default=0)  # room for the markers, so the numbers stay aligned
    for g in groups:
        part = df[df.group == g.key]
        if part.empty:
            continue
        cells = []
        for r in ratios:
            vals = part[part.ratio == r][metric].dropna()
            if not len(vals):
                cells.append(f"{'':>11s}")
            elif pad:
                cells.append(f"{vals.mean():>{10 - pad}.{digits}f} {marks.get((g.key, float(r)), ''):<{pad}s}")
            else:
                cells.append(f"{vals.mean():>11.{digits}f}")
        lines.append((f"{g.label:{width}s}" + "".join(cells)).rstrip())
    return lines


def _capacity_lines(sec: Any) -> list[str]:
    """One line per model whose capacity was measured (its control, or its reconstruction of real outliers)."""
    from bench.report import section_capacity

    cap = section_capacity(sec)
    if cap.empty:
        return []
    lines = ["capacity (control: the model trained on the training outliers alone, % of its samples called outliers, "
             f"needs >= {flags_of.MIN_CONTROL_OUTLIERS:g}; reconstruction: % of held-out real outliers passing as "
             f"inliers through its encoder and decoder, needs <= {flags_of.MAX_RECON_PASSED:g})"]  # fmt: skip
    width = max(len(label) for label in cap.label)
    for r in cap.itertuples():
        control, recon = float(r.control_called_outliers), float(r.recon_passed)
        words = [f"control {control:5.1f} % called outliers" if control == control else "no control",
                 f"reconstruction {recon:5.1f} % passed" if recon == recon else "no encoder"]  # fmt: skip
        verdict = f"  -> {flags_of.NO_CAPACITY.upper()}" if flags_of.cannot_draw(control, recon) else ""
        lines.append(f"  {r.label:{width}s}  " + "; ".join(words) + verdict)
    return lines


def headline(ctx: Any, profile: str | None = None, meaningless: bool | None = None) -> list[str]:
    """The headline pivots of a report context, one block per dataset and protocol. ``profile``: the run's (else the
    profiles of each block's rows)."""
    from bench.report import _title, cell_flags, is_control_group, shared_settings, validity_line

    lines: list[str] = []
    for sec in ctx.sections:
        df = sec.df
        profiles = profile or ", ".join(sorted(set(map(str, df.profile))))
        smoke = meaningless if meaningless is not None else "smoke" in set(df.profile)
        seeds = sorted({int(s) for s in df.seed})
        n = sorted({int(v) for v in df.n_samples.dropna() if v})
        data = f"{sec.tag.strip(' []')}, " if sec.tag else ""
        lines.append(f"{_title(sec.dataset)} ({data}{profiles} profile{', SMOKE: meaningless' if smoke else ''}): "
                     f"% generated inliers (mean over seeds {','.join(map(str, seeds))}; "
                     f"{'/'.join(map(str, n)) or '?'} samples per cell)")  # fmt: skip
        shared = shared_settings(df, sec.dataset)
        if shared:
            lines.append(f"(settings changed from the profile's defaults in every row: {', '.join(shared)})")
        lines += _pivot(sec, "pct_inliers", 1)
        r30 = max(df.ratio)
        lines.append(f"(a model that learned its training data exactly would generate {100 - r30:g} % inliers at "
                     f"r = {r30:g} %: the 'replay' row, when present, measures that under this classifier)")  # fmt: skip
        valid = validity_line(ctx, sec)
        if valid:
            lines.append(f"!!! {valid} !!!" if valid.startswith("CLASSIFIER") else valid)
        methods = [g for g in sec.groups if not is_control_group(sec, g)]
        controls = len(methods) < len(sec.groups)
        if df.robustness.notna().any():
            marks = {k: "".join(MARKS.get(f, "?") for f in v) for k, v in cell_flags(sec).items()}
            left_out = "; capacity controls left out" if controls else ""
            lines += ["", f"{_title(sec.dataset)}{sec.tag}: robustness index (0 = as contaminated as the data, 1 = as "
                          f"clean as the inlier-only oracle; read with recall{left_out})"]  # fmt: skip
            lines += _pivot(sec, "robustness", 2, min_ratio=0, groups=methods, marks=marks)
            lines.append(LEGEND)
        if df.recall.notna().any():
            oracle = df.recall_replay_inliers.dropna() if "recall_replay_inliers" in df else df.recall.iloc[:0]
            lines += ["", f"{_title(sec.dataset)}{sec.tag}: recall (share of the real inliers' variety the samples "
                          f"cover{f'; the oracle covers {oracle.mean():.2f}' if len(oracle) else ''})"]  # fmt: skip
            lines += _pivot(sec, "recall", 2, groups=methods)
        capacity = _capacity_lines(sec)
        if capacity:
            lines += [""] + capacity
        lines.append("")
    return lines


def end_of_run(spec: Any, records: list[CellRecord], report_path: Path | None) -> str:
    from bench import report

    if not records:
        return "(no finished cells)"
    profile = spec.profile.name
    ctx = report.build_context(spec.store, records)
    lines = headline(ctx, profile, spec.profile.meaningless)
    if report_path is not None:
        folder = Path(report_path).parent
        lines += [f"report: {report_path}", f"Fig. 4: {folder / 'fig4.png'}"]
        if any((folder / "grids").glob("*_models.png")):  # written only where two or more models share a ratio
            lines.append(f"sample grids, every model of a ratio in one image: {folder / 'grids'}/"
                         f"<dataset>_r<ratio>_models.png")  # fmt: skip
        elif any((folder / "grids").glob("*.png")):
            lines.append(f"sample grids: {folder / 'grids'}/<dataset>_<model>_r<ratio>.png")
    lines.append(closing_words(profile, [sec.data for sec in ctx.sections]))
    return "\n".join(lines).rstrip()
