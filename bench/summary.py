"""What `bench run` prints at the end: per dataset, % generated inliers per model and ratio next to the training
data's own share, the robustness index, where the report went, and what the numbers mean for this profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.datasets import registry as dataset_registry
from bench.record import CellRecord
from bench.store import frame

NEXT_STEPS = {
    "smoke": "SMOKE PROFILE: a plumbing check on tiny data and models; these numbers carry no meaning. For the "
             "phenomenon in minutes run the README's main job (bench run --profile demo ...).",
    "demo": "These are synthetic data and tiny models: the point is the trend, not the values. Next: a real stand-in "
            "with the cpu profile, e.g. bench run --profile cpu --datasets facemask --data-root "
            "facemask=../shared/data/facemask-synth --jobs 2 --set run.threads=1 (about an hour on 2 cores).",
    "cpu": "cpu profile: budget models at 32 px (one seed is noisy by several points; use --seeds 0,1,2 for CIs).",
    "paper": "paper profile: the paper's protocol; compare with its tables only on its datasets.",
}  # fmt: skip


def _pivot(records: list[CellRecord], metric: str, digits: int) -> list[str]:
    from bench import report

    df = frame(records)
    df["group"] = [report._group_key(r) for _, r in df.iterrows()]
    groups = [g for gs in report._groups(df).values() for g in gs]
    ratios = sorted(set(df.ratio))
    width = max([len(g.label) for g in groups] + [26])
    lines = [f"{'':{width}s}" + "".join(f"{f'r = {r:g} %':>11s}" for r in ratios)]
    if metric == "pct_inliers":
        lines.append(f"{'training data (for scale)':{width}s}" + "".join(f"{100 - r:>11.1f}" for r in ratios))
    for g in groups:
        part = df[df.group == g.key]
        cells = []
        for r in ratios:
            vals = part[part.ratio == r][metric].dropna()
            cells.append(f"{vals.mean():>11.{digits}f}" if len(vals) else f"{'':>11s}")
        lines.append(f"{g.label:{width}s}" + "".join(cells))
    return lines


def end_of_run(spec: Any, records: list[CellRecord], report_path: Path | None) -> str:
    if not records:
        return "(no finished cells)"
    profile = spec.profile.name
    lines: list[str] = []
    for ds in dict.fromkeys(r.dataset for r in records):
        part = [r for r in records if r.dataset == ds]
        title = dataset_registry.get(ds).title if ds in dataset_registry.names() else ds
        seeds = sorted({r.seed for r in part})
        n = sorted({r.n_samples for r in part if r.n_samples})
        lines.append(f"{title} ({profile} profile{', SMOKE: meaningless' if spec.profile.meaningless else ''}): "
                     f"% generated inliers (mean over seeds {','.join(map(str, seeds))}; "
                     f"{'/'.join(map(str, n)) or '?'} samples per cell)")  # fmt: skip
        from bench.report import shared_settings

        shared = shared_settings(frame(part), ds)
        if shared:
            lines.append(f"(settings changed from the profile's defaults in every row: {', '.join(shared)})")
        lines += _pivot(part, "pct_inliers", 1)
        r30 = max(r.ratio for r in part)
        lines.append(f"(a model that learned its training data exactly would generate {100 - r30:g} % inliers at "
                     f"r = {r30:g} %: the 'replay' row, when present, measures that under this classifier)")  # fmt: skip
        if any(r.score.robustness is not None for r in part):
            lines += ["", f"{title}: robustness index (0 = as contaminated as the data, 1 = as clean as the "
                          f"inlier-only oracle; read with recall)"]  # fmt: skip
            lines += _pivot([r for r in part if r.ratio > 0], "robustness", 2)
        lines.append("")
    if report_path is not None:
        folder = Path(report_path).parent
        lines += [f"report: {report_path}", f"Fig. 4: {folder / 'fig4.png'}"]
        if any((folder / "grids").glob("*_models.png")):  # written only where two or more models share a ratio
            lines.append(f"side-by-side sample grids: {folder / 'grids'}/<dataset>_r<ratio>_models.png")
        elif any((folder / "grids").glob("*.png")):
            lines.append(f"sample grids: {folder / 'grids'}/<dataset>_<model>_r<ratio>.png")
    lines.append(NEXT_STEPS.get(profile, ""))
    return "\n".join(lines).rstrip()
