"""An estimate of the outlier share r of an unlabelled training set, from a label-free detector's scores.

Every "detect, drop, then train" filter needs the fraction to drop, and a user does not know r. Given the scores one
detector gives the training images (higher = more outlying), the scores are modelled as a mixture of an inlier and
an outlier component:

1. the scores are mapped to a symmetric scale (ranks are not used: the mixture needs the shape of the tail): the log
   of the score above its minimum, standardised by median and MAD, so Mahalanobis-type distances (chi-like, heavy
   right tail) look roughly Gaussian for the inliers;
2. a one-component and a two-component Gaussian mixture are fitted (scikit-learn, seeded); the two-component model
   is kept only when its BIC is lower by more than :data:`BIC_MARGIN` and its upper component is the smaller one
   (outliers are the minority); otherwise the estimate is 0;
3. r-hat = the share of images whose posterior puts them in the upper component;
4. a 95 % interval from :data:`BOOTSTRAP` bootstrap resamples of the scores (percentiles), each refitted.

It estimates what the detector separates: outliers the detector cannot see are not counted, so r-hat is a lower
bound of r for a weak detector. ``--filter DETECTOR:auto`` drops the top r-hat of the training set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BIC_MARGIN = 10.0
BOOTSTRAP = 100
MAX_SHARE = 0.5  # outliers are the minority


@dataclass(frozen=True)
class ShareEstimate:
    share: float  # r-hat, a fraction in [0, MAX_SHARE]
    low: float  # 95 % bootstrap interval
    high: float

    def words(self) -> str:
        return f"{100 * self.share:.1f} % (95 % interval {100 * self.low:.1f}-{100 * self.high:.1f} %)"


def _standardised(scores: np.ndarray) -> np.ndarray:
    x = np.log(scores - scores.min() + 1e-6 * (np.ptp(scores) or 1.0))
    med = np.median(x)
    mad = np.median(np.abs(x - med)) * 1.4826 or (x.std() or 1.0)
    return (x - med) / mad


def _point(x: np.ndarray, seed: int) -> float:
    from sklearn.mixture import GaussianMixture

    col = x.reshape(-1, 1)
    one = GaussianMixture(1, random_state=seed).fit(col)
    two = GaussianMixture(2, random_state=seed, n_init=2).fit(col)
    if two.bic(col) > one.bic(col) - BIC_MARGIN:
        return 0.0
    upper = int(np.argmax(two.means_.ravel()))
    share = float((two.predict_proba(col)[:, upper] > 0.5).mean())
    return share if share <= MAX_SHARE else 0.0  # an upper component holding the majority is not the outliers


def estimate_share(scores: torch.Tensor, seed: int = 0, bootstrap: int = BOOTSTRAP) -> ShareEstimate:
    """r-hat and its 95 % bootstrap interval from one detector's training-set scores (see the module docstring)."""
    s = scores.detach().double().cpu().numpy().ravel()
    if s.size < 10 or not np.isfinite(s).all():
        return ShareEstimate(0.0, 0.0, 0.0)
    x = _standardised(s)
    share = _point(x, seed)
    rng = np.random.default_rng([seed, 0xB007])
    boots = [_point(x[rng.integers(0, x.size, x.size)], seed) for _ in range(bootstrap)]
    low, high = np.percentile(boots, [2.5, 97.5]) if boots else (share, share)
    return ShareEstimate(share, float(low), float(high))
