"""The report's reading of the robustness index (bench/headline.py) and of the classifier's validity check
(bench/validity.py), per section: the flags of its rows, the capacity of each model, the validity rows and the one line
that says whether the classifier passed, and the verdict, capacity and validity tables built from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bench import headline, validity
from bench.models import registry
from bench.report_data import _data_note, _profile_note, _title, _variant_items, _with_protocol, shared_settings
from bench.report_tables import Table, _fmt, mean_ci

if TYPE_CHECKING:
    from bench.report import Context, Section
    from bench.report_data import Group


# the columns of OUT/validity/*.csv (bench/validity.py) and of the report's validity.csv
VALIDITY_COLS = ["degradation", "gated", "inliers_called_inliers", "outliers_called_inliers", "passed", "dataset",
                 "seed", "profile", "protocol"]  # fmt: skip


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


def _verdict_tables(ctx: Context, sec: Section) -> list[Table]:
    """A section's verdict, capacity and validity tables, those it has rows for."""
    return [t for t in (_verdict_table(ctx, sec), _capacity_table(sec), _validity_table(ctx, sec)) if t is not None]


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
