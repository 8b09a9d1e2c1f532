"""The inlier classifier's validity check: is % inliers a measure of contamination, or of sample quality?

A generated sample set is scored by the held-out inlier classifier (paper §4.3). If blurring a real outlier makes the
classifier call it an inlier, a blurry model reads as robust; if noise makes it call a real inlier an outlier, a noisy
model reads as contaminated. So every classifier is checked on its own held-out real inliers and outliers after each
degradation of :data:`bench.degradations.VALIDITY_SET`: the share of each called inliers, against
:data:`THRESHOLDS`. A classifier that fails a gated degradation is reported as failing, in every report and by
``bench score``; the numbers it gives are then not a measure of contamination alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from bench.degradations import VALIDITY_SET, Degradation

# A valid classifier, under every gated degradation: at least this % of real inliers called inliers, at most this %
# of real outliers called inliers.
MIN_INLIERS_KEPT = 90.0
MAX_OUTLIERS_PASSED = 10.0


@dataclass(frozen=True)
class ValidityRow:
    degradation: str  # Degradation.name, e.g. "blur:2"
    gated: bool
    inliers_called_inliers: float  # % of the held-out real inliers, degraded, that the classifier calls inliers
    outliers_called_inliers: float  # % of the held-out real outliers, degraded, that it calls inliers

    @property
    def passed(self) -> bool:
        return self.inliers_called_inliers >= MIN_INLIERS_KEPT and self.outliers_called_inliers <= MAX_OUTLIERS_PASSED

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class Validity:
    rows: tuple[ValidityRow, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows if r.gated)

    def failures(self) -> list[ValidityRow]:
        return [r for r in self.rows if r.gated and not r.passed]

    def summary(self) -> str:
        """One line: passed, or which gated degradations it fails and how."""
        if self.passed:
            return (f"classifier validity: passed (under every gated degradation >= {MIN_INLIERS_KEPT:g} % of real "
                    f"inliers and <= {MAX_OUTLIERS_PASSED:g} % of real outliers called inliers)")  # fmt: skip
        worst = ", ".join(f"{r.degradation}: inliers {r.inliers_called_inliers:.1f} %, outliers "
                          f"{r.outliers_called_inliers:.1f} %" for r in self.failures())  # fmt: skip
        return (f"CLASSIFIER VALIDITY FAILED: % inliers is not a measure of contamination alone here ({worst}; "
                f"needs inliers >= {MIN_INLIERS_KEPT:g} %, outliers <= {MAX_OUTLIERS_PASSED:g} %)")  # fmt: skip

    def to_records(self) -> list[dict]:
        return [r.to_dict() for r in self.rows]


def check(pct_inliers: Callable[[torch.Tensor], float], inliers: torch.Tensor, outliers: torch.Tensor, seed: int,
          degradations: tuple[Degradation, ...] = VALIDITY_SET) -> Validity:  # fmt: skip
    """``pct_inliers`` (images -> % called inliers) on the held-out real ``inliers`` and ``outliers`` after each
    degradation (the noise drawn from ``seed``)."""
    rows = []
    for d in degradations:
        rows.append(ValidityRow(d.name, d.gated, pct_inliers(d.apply(inliers, seed)),
                                pct_inliers(d.apply(outliers, seed + 1))))  # fmt: skip
    return Validity(tuple(rows))
