"""benchmarks/label_free_routes.py: one row per (model, filter, ratio), the recall against the unfiltered model at 0 %,
verdicts with the report's flags, and only the store's main protocol."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "label_free_routes.py"


def _module():
    spec = importlib.util.spec_from_file_location("_label_free_routes", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(model, variant, ratio, seed, pct, index, recall, protocol="p1", **kw):
    return {"dataset": "facemask", "model": model, "variant": variant, "ratio": ratio, "seed": seed,
            "pct_inliers": pct, "robustness": index, "recall": recall, "coverage": 1.0, "protocol_digest": protocol,
            "outlier_recon_pct_inliers": None, "filter_fraction": kw.get("frac"), "filter_recall": kw.get("frec"),
            "filter_auc": kw.get("auc")}  # fmt: skip


def test_routes_rows_recall_ratio_and_verdicts():
    rows = [_row("gan", None, 0, s, 100.0, None, 0.8) for s in (0, 1)]
    rows += [_row("gan", None, 30, s, 70.0, 0.0, 0.8) for s in (0, 1)]
    rows += [_row("gan", "filter=mcd:auto", 30, s, 100.0, 1.0, 0.4, frac=0.3, frec=0.9, auc=0.97) for s in (0, 1)]
    rows += [_row("gan", "filter=mcd:auto", 0, s, 100.0, None, 0.8, frac=0.05) for s in (0, 1)]
    rows += [_row("gan", "filter=outliers-only", 30, 0, 0.0, None, 0.1)]  # a control: never a route
    rows += [_row("gan", None, 30, 5, 10.0, -3.0, 0.1, protocol="old")]  # another protocol: left out
    rows += [_row("vqvae", None, 30, 0, 70.0, 0.0, 0.5)]  # not asked for
    table = _module().routes(pd.DataFrame(rows), ["gan"])
    assert list(zip(table.route, table.r)) == [("none", 0), ("none", 30), ("mcd:auto", 0), ("mcd:auto", 30)]
    filtered = table[(table.route == "mcd:auto") & (table.r == 30)].iloc[0]
    assert filtered["recall / 0 %"] == "0.50" and filtered["index"] == "1.00 ± 0.00" and filtered.n == 2
    assert filtered["dropped (%)"] == "30.0 ± 0.0" and filtered["filter AUC"] == "0.970 ± 0.000"
    assert filtered.verdict == "flagged: lost coverage"  # recall 0.4 < 0.8 x the same route's 0.8 at r = 0
    plain = table[(table.route == "none") & (table.r == 30)].iloc[0]
    assert plain.verdict == "not robust" and plain["% inliers"] == "70.0 ± 0.0"
