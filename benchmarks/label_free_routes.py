"""Label-free routes per stand-in, ratio and filter: % inliers, robustness index, recall (mean ± 95 % t-interval over
seeds), the recall against the unfiltered model's at r = 0, and the verdict with the report's flags.

    PYTHONPATH=$PWD python benchmarks/label_free_routes.py --models vqvae,gan \\
        --store facemask-synth=results/fm4-facemask-synth --store facemask12k=results/fm4-facemask12k \\
        --store roomcrop=results/rc4 --markdown routes.md --csv routes.csv

Reads each store's runs.csv (one stand-in per store: results of different data never share a table). A route is a
model behind one ``--filter`` (or none); capacity controls are left out. ``recall / 0 %`` divides the route's mean
recall by the same model's unfiltered mean recall at r = 0 (the moonshot's yardstick: >= 0.9); the report's own
"lost coverage" flag compares with the same route at r = 0 instead. Only the protocol with the most rows per store
is read (a store may hold cells of older protocols).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from bench.headline import flags, is_control, verdict
from bench.report_tables import _fmt, _markdown, mean_ci


def _filter_of(variant: object) -> str:
    parts = [p for p in str(variant if variant == variant else "").split(", ") if p.startswith("filter=")]
    return parts[0].removeprefix("filter=") if parts else "none"


def _ci(values: pd.Series, digits: int) -> str:
    """Mean ± 95 % t-interval as the report writes it."""
    return _fmt(*mean_ci(pd.to_numeric(values, errors="coerce").tolist())[:2], digits)


def routes(runs: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """One row per (model, filter, ratio) of one store's runs frame."""
    runs = runs[~runs.variant.map(is_control)]
    protocol = runs.protocol_digest.value_counts().index[0]
    runs = runs[runs.protocol_digest == protocol].copy()
    runs["row_flags"] = flags(runs)
    runs = runs[runs.model.isin(models)]
    runs["route"] = runs.variant.map(_filter_of)
    recall0 = runs[(runs.route == "none") & (runs.ratio == 0)].groupby("model").recall.mean()
    rows = []
    for (model, route, ratio), g in runs.groupby(["model", "route", "ratio"], sort=False):
        index_mean = pd.to_numeric(g.robustness, errors="coerce").mean()
        row_flags = ", ".join(sorted({f for fl in g.row_flags for f in fl.split(", ") if f}))
        base = recall0.get(model)
        rows.append({
            "model": model, "route": route, "r": ratio, "n": len(g),
            "% inliers": _ci(g.pct_inliers, 1), "index": _ci(g.robustness, 2) if ratio > 0 else "",
            "recall": _ci(g.recall, 2),
            "recall / 0 %": f"{g.recall.mean() / base:.2f}" if base and base == base else "",
            "dropped (%)": _ci(100 * pd.to_numeric(g.filter_fraction, errors="coerce"), 1) if route != "none" else "",
            "filter recall": _ci(g.filter_recall, 2) if route != "none" and ratio > 0 else "",
            "filter AUC": _ci(g.filter_auc, 3) if route != "none" and ratio > 0 else "",
            "verdict": verdict(index_mean if ratio > 0 else None, row_flags) if ratio > 0 else "",
        })  # fmt: skip
    out = pd.DataFrame(rows)
    order = {m: i for i, m in enumerate(models)}
    keys = {"model": lambda s: s.map(order), "route": lambda s: s.map(lambda v: "" if v == "none" else v)}
    return out.sort_values(["model", "route", "r"], key=lambda s: keys.get(s.name, lambda x: x)(s))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", action="append", required=True, metavar="LABEL=OUT")
    p.add_argument("--models", default="vqvae,gan")
    p.add_argument("--markdown", default=None)
    p.add_argument("--csv", default=None)
    args = p.parse_args(argv)
    parts, text = [], []
    for item in args.store:
        label, _, out = item.partition("=")
        path = Path(out) / "runs.csv"
        if not path.exists():
            print(f"error: no runs.csv in {out} (--store {item}): run the grid there first", file=sys.stderr)
            return 2
        table = routes(pd.read_csv(path), args.models.split(","))
        parts.append(table.assign(data=label))
        text += [f"### {label}", "", _markdown(table), ""]
    print("\n".join(text))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(text))
    if args.csv:
        pd.concat(parts).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
