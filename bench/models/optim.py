"""The optimiser every built-in model trains with: Adam on the fused kernel, and resuming its state safely."""

from __future__ import annotations

from typing import Any

import torch


def adam(params: Any, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam with the fused kernel: one call per parameter instead of ~8 element-wise ops (3.2 -> 0.7 ms per step for
    the PixelCNN prior's 45 tensors); same update as the plain kernel up to float rounding (~1e-7 after 20 steps)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


def load_optimizer_state(opt: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """``opt.load_state_dict(saved)``, then each per-parameter state tensor laid out in memory like its parameter.

    The fused Adam kernel pairs a parameter with its moments element by element in memory order: moments saved in
    another layout (e.g. NCHW moments of a checkpoint written before a network moved to channels_last) would be
    applied to the wrong weights (measured: an error of 1.6 x lr in one step; the foreach kernel is unaffected).
    """
    opt.load_state_dict(saved)
    for p, state in opt.state.items():
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                state[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)
