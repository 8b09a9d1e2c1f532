"""The robustness scale: what "no robustness" and "perfect robustness" score under the same classifier and sample
count, and the robustness index of a cell between them.

- ``replay``: a generator that reproduces its training data exactly, i.e. draws training images uniformly (with
  replacement). It generates exactly the contamination: the "no robustness" line.
- ``replay-inliers``: the same over the training *inliers* only. It uses the outlier labels, so it is an oracle: the
  ceiling under this classifier and sample count, never a method.

    robustness = (pct_inliers - pct_replay) / (pct_replay_inliers - pct_replay)

on the same split, seed and sample count: 0 = as contaminated as the data, 1 = as clean as the oracle, negative =
worse than the data. It is undefined at r = 0 (the two anchors coincide) and noisy at small r (the denominator is about
r x 100 points). % inliers (and so the index) can be gamed by a narrow mode: read it with recall.
"""

from __future__ import annotations

import torch

# Below this many points between the anchors the index is not reported (at r = 0 they are equal).
MIN_SPREAD_POINTS = 0.5


def replay_indices(n_train: int, n: int, seed: int) -> torch.Tensor:
    """``n`` uniform draws (with replacement) from ``n_train`` training images, the same for the same seed."""
    if n_train < 1:
        return torch.zeros(0, dtype=torch.long)
    gen = torch.Generator().manual_seed(int(seed) * 7_919 + 0x9E1)
    return torch.randint(n_train, (n,), generator=gen)


def replay_samples(images: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    return images[replay_indices(len(images), n, seed)]


def robustness_index(pct: float | None, pct_replay: float | None, pct_oracle: float | None) -> float | None:
    if pct is None or pct_replay is None or pct_oracle is None:
        return None
    spread = pct_oracle - pct_replay
    if abs(spread) < MIN_SPREAD_POINTS:
        return None
    return (pct - pct_replay) / spread
