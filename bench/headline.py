"""The headline: the robustness index, read with coverage and capacity, and the flags that withhold "robust".

% inliers, and the robustness index built on it, say how clean the samples are under a classifier. Three things can
raise them without any robustness, so each row is checked for them (runs.csv columns, ``bench/scoring.py``):

- **collapse**: a generator that draws a handful of clean images scores 100 % inliers. ``coverage`` (recall as a share
  of the inlier-only oracle's) below :data:`MIN_COVERAGE` flags it ``low coverage`` (so does heavy blur);
- **lost coverage**: a model that drops modes as the contamination grows (the outliers' and some inliers') keeps its
  index but loses variety. Recall below :data:`MIN_RECALL_KEPT` of the same model's mean recall at r = 0 (same
  protocol and settings) flags it ``lost coverage``;
- **no capacity**: a model that cannot draw the contamination at all "refuses" it for free. Its capacity control
  (``--filter outliers-only``: the same model trained on the training outliers alone) should draw outliers; when
  fewer than :data:`MIN_CONTROL_OUTLIERS` % of the control's samples are called outliers, or when more than
  :data:`MAX_RECON_PASSED` % of held-out real outliers pass as inliers once encoded and decoded by the model (trained at
  r > 0: at r = 0 it has never seen one), the rows at r > 0 are flagged ``cannot draw outliers``.

Blur and noise are not flags: the classifier is trained to see through them and checked to (``bench/validity.py``);
a section whose classifier fails that check says so above its tables.

A row is **robust** when its index is at least :data:`ROBUST_INDEX` and it carries no flag; a flagged row is never
called robust, whatever its index.
"""

from __future__ import annotations

import math

import pandas as pd

MIN_COVERAGE = 0.2
MIN_RECALL_KEPT = 0.8
MIN_CONTROL_OUTLIERS = 75.0
MAX_RECON_PASSED = 25.0
ROBUST_INDEX = 0.8
CONTROL_VARIANT = "filter=outliers-only"

LOW_COVERAGE, LOST_COVERAGE, NO_CAPACITY = "low coverage", "lost coverage", "cannot draw outliers"


def is_control(variant: object) -> bool:
    """Whether a row's variant is the capacity control (``--filter outliers-only``)."""
    return CONTROL_VARIANT in str(variant or "").split(", ")


def _base_variant(variant: object) -> str:
    return ", ".join(p for p in str(variant or "").split(", ") if p and p != CONTROL_VARIANT)


def _num(v: object) -> float:
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return x


def capacity(df: pd.DataFrame) -> pd.DataFrame:
    """Per (protocol, dataset, model, settings apart from the control): the mean % of the control cells' samples
    called outliers (``control_called_outliers``, NaN without a control) and the mean % of held-out real outliers
    that pass as inliers through the encoder and decoder of the model trained at r > 0 (``recon_passed``, NaN without
    an encoder)."""
    cols = ["protocol_digest", "dataset", "model", "base_variant"]
    if df.empty:
        return pd.DataFrame(columns=[*cols, "control_called_outliers", "recon_passed"])
    d = df.assign(base_variant=df.variant.map(_base_variant), control=df.variant.map(is_control),
                  pct=pd.to_numeric(df.pct_inliers, errors="coerce"),
                  recon=pd.to_numeric(df.get("outlier_recon_pct_inliers"), errors="coerce"))  # fmt: skip
    control = d[d.control].groupby(cols).pct.mean().rsub(100.0).rename("control_called_outliers")
    recon = d[~d.control & (d.ratio > 0)].groupby(cols).recon.mean().rename("recon_passed")
    return pd.concat([control, recon], axis=1).reset_index()


def cannot_draw(control_called_outliers: float, recon_passed: float) -> bool:
    """Whether a model's capacity control or its reconstructions say it cannot draw the outliers (NaN = unknown)."""
    control, recon = control_called_outliers, recon_passed
    return (control == control and control < MIN_CONTROL_OUTLIERS) or (recon == recon and recon > MAX_RECON_PASSED)


def flags(df: pd.DataFrame) -> pd.Series:
    """Per row of a runs frame: its flags, comma-separated ("" for none). Control rows get none (they are not
    methods); rows of reference generators are flagged like models (a probe must not read as robust)."""
    if df.empty:
        return pd.Series([], dtype=str, index=df.index)
    d = df.assign(base_variant=df.variant.map(_base_variant), control=df.variant.map(is_control),
                  recall_=pd.to_numeric(df.recall, errors="coerce"),
                  coverage_=pd.to_numeric(df.get("coverage"), errors="coerce"))  # fmt: skip
    keys = ["protocol_digest", "dataset", "model", "base_variant"]
    at_zero = d[(d.ratio == 0) & ~d.control].groupby(keys).recall_.mean().rename("recall_at_0")
    cap = capacity(df).set_index(keys)
    d = d.join(at_zero, on=keys).join(cap, on=keys)
    out = []
    for _, r in d.iterrows():
        f = []
        if r["control"]:
            out.append("")
            continue
        cov, rec, rec0 = _num(r["coverage_"]), _num(r["recall_"]), _num(r["recall_at_0"])
        if cov == cov and cov < MIN_COVERAGE:
            f.append(LOW_COVERAGE)
        elif r["ratio"] > 0 and rec == rec and rec0 == rec0 and rec < MIN_RECALL_KEPT * rec0:
            f.append(LOST_COVERAGE)
        if r["ratio"] > 0 and cannot_draw(_num(r.get("control_called_outliers")), _num(r.get("recon_passed"))):
            f.append(NO_CAPACITY)
        out.append(", ".join(f))
    return pd.Series(out, index=df.index, dtype=str)


def verdict(index: float | None, row_flags: str) -> str:
    """ "robust" (index >= ROBUST_INDEX, no flag), "flagged: ..." (never robust), "not robust", or "" (no index)."""
    if row_flags:
        return f"flagged: {row_flags}"
    if index is None or index != index:
        return ""
    return "robust" if index >= ROBUST_INDEX else "not robust"
