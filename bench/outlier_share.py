"""An estimate of the outlier share r of an unlabelled training set, from a label-free detector's scores.

Every "detect, drop, then train" filter needs the fraction to drop, and a user does not know r. Given the scores one
detector gives the training images (higher = more outlying), the inliers are taken to be the bulk of the images,
scattered symmetrically about their most common score, and the outliers the excess on the high side:

1. the scores are put on the cube-root scale, x = (s - min s)^(1/3). For a squared Mahalanobis distance (``mcd``,
   ``ssl-mcd``: chi-square-like for the inliers) this is Wilson & Hilferty's (1931) normalising transform, under
   which the inliers' scores are close to symmetric;
2. the mode m of x (the peak of a Gaussian kernel density estimate) locates the inliers;
3. the inliers are as many below m as above it, and outliers lie above it, so r-hat = 1 - 2 P(x < m), clipped to
   [0, :data:`MAX_SHARE`] (the "mirror" estimate);
4. a 95 % interval from :data:`BOOTSTRAP` bootstrap resamples of the scores (percentiles), each re-estimated.

It estimates what the detector separates: outliers the detector scores like inliers sit around the mode and are not
counted, so with a weak detector r-hat is a lower bound of r. Inliers whose scores have a long right tail on this
scale are counted as outliers. Why not a two-component mixture of the scores: on the stand-ins the inliers' own skew
takes the second component, and a Gaussian mixture of the log scores reads 0 at r = 10-20 %.
``--filter DETECTOR:auto`` drops the top r-hat of the training set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BOOTSTRAP = 100
MAX_SHARE = 0.5  # outliers are the minority
GRID = 512  # points at which the density is evaluated to find its mode


@dataclass(frozen=True)
class ShareEstimate:
    share: float  # r-hat, a fraction in [0, MAX_SHARE]
    low: float  # 95 % bootstrap interval
    high: float

    def words(self) -> str:
        return f"{100 * self.share:.1f} % (95 % interval {100 * self.low:.1f}-{100 * self.high:.1f} %)"


def _cube_root_scale(scores: np.ndarray) -> np.ndarray:
    return np.cbrt(scores - scores.min())


def _mode(x: np.ndarray) -> float:
    from scipy.stats import gaussian_kde

    lo, hi = np.percentile(x, [1, 99])
    if not hi > lo:
        return float(np.median(x))
    grid = np.linspace(lo, hi, GRID)
    return float(grid[np.argmax(gaussian_kde(x)(grid))])


def _mirror(x: np.ndarray) -> float:
    """1 - 2 P(x < mode): the share above the mode that no inlier below it mirrors (step 3)."""
    return float(np.clip(1.0 - 2.0 * np.mean(x < _mode(x)), 0.0, MAX_SHARE))


def estimate_share(scores: torch.Tensor, seed: int = 0, bootstrap: int = BOOTSTRAP) -> ShareEstimate:
    """r-hat and its 95 % bootstrap interval from one detector's training-set scores (see the module docstring)."""
    s = scores.detach().double().cpu().numpy().ravel()
    if s.size < 10 or not np.isfinite(s).all():
        return ShareEstimate(0.0, 0.0, 0.0)
    x = _cube_root_scale(s)
    if np.ptp(x) == 0:
        return ShareEstimate(0.0, 0.0, 0.0)
    share = _mirror(x)
    rng = np.random.default_rng([seed, 0xB007])
    boots = [_mirror(x[rng.integers(0, x.size, x.size)]) for _ in range(bootstrap)]
    low, high = np.percentile(boots, [2.5, 97.5]) if boots else (share, share)
    return ShareEstimate(share, float(low), float(high))
