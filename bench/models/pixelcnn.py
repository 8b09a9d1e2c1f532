"""Gated PixelCNN prior over a VQ latent index grid (van den Oord et al. 2016), with an incremental sampler.

Two stacks, so there is no blind spot:

* the *vertical* stack at row r sees whole rows r-h..r of the layer below (kernel (h+1) x k, padded on top and on
  both sides, never below); it reaches the horizontal stack only shifted down by one row, so position (r, c)
  receives information from rows < r only;
* the *horizontal* stack at (r, c) sees columns c-h..c of its own row (kernel 1 x (h+1), padded on the left only).
  Layer 0 uses mask A there (the centre column is zeroed: the current index is not visible); later layers use
  mask B (centre visible, since the layer below already excludes the current index) and a residual connection.

Gate: tanh(a) * sigmoid(b) on the two channel halves; the vertical pre-activation feeds the horizontal one through a
1x1 "link" conv. Layer 0 has a 7x7 kernel, the others 3x3; ``layers`` must give a receptive field covering the grid
(``min_layers_for_grid``). Because every conv is padded only upwards/leftwards, cropping rows below or columns to the
right never changes an output, which the incremental sampler relies on.

Sampling draws one uniform per position up front and inverts the CDF of the softmax, so the fast sampler and the
naive one (a full forward pass per position) draw identical indices from the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench import precision as P


@dataclass
class PixelCNNConfig:
    num_codes: int = 512
    dim: int = 64
    layers: int = 15
    first_kernel: int = 7
    kernel: int = 3
    head_hidden: int = 512


def min_layers_for_grid(grid: int, first_kernel: int = 7, kernel: int = 3) -> int:
    """Fewest layers whose receptive field covers every earlier position of a grid x grid raster."""
    # Horizontal reach after L layers: h0 + (L-1)h columns; vertical: h0 + (L-1)h rows (+1 from the shift) and the
    # same number of columns either side. Full coverage needs a reach of grid-1 in every direction.
    h0, h = first_kernel // 2, kernel // 2
    return 1 + max(0, -(-(grid - 1 - h0) // h))


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    def __init__(self, dim: int, kernel: int, first: bool):
        super().__init__()
        self.h = kernel // 2
        self.first = first
        self.v_conv = nn.Conv2d(dim, 2 * dim, (self.h + 1, kernel))
        self.h_conv = nn.Conv2d(dim, 2 * dim, (1, self.h + 1))
        self.link = nn.Conv2d(2 * dim, 2 * dim, 1)
        self.h_out = nn.Conv2d(dim, dim, 1)
        mask = torch.ones(1, 1, 1, self.h + 1)
        if first:
            mask[..., -1] = 0.0  # mask A: the current column is not visible
        self.register_buffer("h_mask", mask, persistent=False)

    # -- pieces shared by the full forward pass and the incremental sampler --
    def v_pre(self, v_padded: torch.Tensor) -> torch.Tensor:
        return self.v_conv(v_padded)

    def h_pre(self, h_padded: torch.Tensor, v_pre_above: torch.Tensor) -> torch.Tensor:
        h = F.conv2d(h_padded, self.h_conv.weight * self.h_mask, self.h_conv.bias)
        return h + self.link(v_pre_above)

    def h_post(self, h_pre: torch.Tensor, h_in: torch.Tensor) -> torch.Tensor:
        out = self.h_out(_gate(h_pre))
        return out if self.first else out + h_in

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.h
        v_pre = self.v_pre(F.pad(v, (p, p, p, 0)))
        v_above = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]  # shift down one row: row r sees rows < r only
        h_pre = self.h_pre(F.pad(h, (p, 0, 0, 0)), v_above)
        return _gate(v_pre), self.h_post(h_pre, h)


class GatedPixelCNN(nn.Module):
    def __init__(self, cfg: PixelCNNConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.num_codes, cfg.dim)
        self.layers = nn.ModuleList(
            GatedLayer(cfg.dim, cfg.first_kernel if i == 0 else cfg.kernel, first=i == 0) for i in range(cfg.layers)
        )
        self.head = nn.Sequential(
            nn.Conv2d(cfg.dim, cfg.head_hidden, 1), nn.ReLU(), nn.Conv2d(cfg.head_hidden, cfg.num_codes, 1)
        )

    def _stacks(self, x: torch.Tensor) -> torch.Tensor:
        """Horizontal-stack output B x dim x H x W of the last layer, from embedded inputs B x dim x H x W."""
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        return h

    def forward_embedded(self, x: torch.Tensor) -> torch.Tensor:
        """Logits B x K x H x W from embedded inputs B x dim x H x W (used by the causality test)."""
        return self.head(self._stacks(x))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits B x K x H x W for index grids B x H x W; logits at (r, c) depend on indices before (r, c) only."""
        return self.forward_embedded(self.embed(idx).permute(0, 3, 1, 2))

    def loss(self, idx: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
        """Mean NLL of the indices, = cross_entropy(self(idx), idx).

        The 1x1-conv head runs as two matmuls over the B*H*W positions, so the K-way log-softmax works on contiguous
        rows instead of a B x K x H x W tensor: 1.10-1.16x faster steps (medians, benchmarks/bench_vq.py).
        ``precision`` "bf16": the gated stacks and the head under bf16 autocast, the logits widened to fp32 for the
        log-softmax and the mean (fp32 logits, i.e. the head's last matmul in fp32, cost 7 % of a cpu-profile step and
        changed neither the loss, +1.5e-4 vs +1.2e-4 from fp32's, nor the gradient, 2.3 % vs 2.4 % relative error).
        """
        hidden, out = self.head[0], self.head[2]
        with P.autocast(precision, idx.device):
            h = self._stacks(self.embed(idx).permute(0, 3, 1, 2))
            x = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])
            x = F.relu(F.linear(x, hidden.weight.flatten(1), hidden.bias))
            logits = F.linear(x, out.weight.flatten(1), out.bias)
        return F.cross_entropy(P.widen(logits), idx.reshape(-1))

    @torch.inference_mode()
    def nll_per_grid(self, idx: torch.Tensor) -> torch.Tensor:
        """-log p(grid) in nats for each index grid B x H x W: the per-position NLLs of ``loss``, summed over the grid
        (the autoregressive factorisation, van den Oord et al. 2016, eq. 1), in fp32."""
        logits = self(idx)
        return F.cross_entropy(logits, idx, reduction="none").flatten(1).sum(1)

    # -- sampling --
    @staticmethod
    def _draw(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Inverse-CDF draw from softmax(logits) (B x K) with uniforms u (B)."""
        cdf = torch.softmax(logits.float(), dim=-1).cumsum(-1)
        return (cdf < u.unsqueeze(-1)).sum(-1).clamp_(max=logits.shape[-1] - 1)

    def _sampling_start(self, n: int, grid: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Uniforms for the inverse-CDF draws (made on the CPU: same samples on any device) and an empty index grid,
        both on the prior's device."""
        dev = self.head[0].weight.device
        u = torch.rand(n, grid, grid, generator=generator).to(dev)
        return u, torch.zeros(n, grid, grid, dtype=torch.long, device=dev)

    @torch.inference_mode()
    def sample_naive(self, n: int, grid: int, generator: torch.Generator) -> torch.Tensor:
        """Reference sampler: one full forward pass per position (H*W passes)."""
        u, idx = self._sampling_start(n, grid, generator)
        for r in range(grid):
            for c in range(grid):
                idx[:, r, c] = self._draw(self(idx)[:, :, r, c], u[:, r, c])
        return idx

    @torch.inference_mode()
    def sample(self, n: int, grid: int, generator: torch.Generator) -> torch.Tensor:
        """Incremental sampler: each layer's output at each position is computed exactly once.

        The vertical stack of row r is computed (one output row per layer, from the h+1 cached rows above it) as soon
        as row r is complete; the horizontal stack at (r, c) is computed for that single position from the cached
        h+1 positions to its left. Total work is about one full forward pass instead of H*W.
        """
        u, idx = self._sampling_start(n, grid, generator)
        dev = idx.device
        d = self.cfg.dim
        # Per layer: zero-padded vertical input (h rows on top, h columns each side) and pre-activations.
        v_in = [torch.zeros(n, d, grid + L.h, grid + 2 * L.h, device=dev) for L in self.layers]
        v_pre = [torch.zeros(n, 2 * d, grid, grid, device=dev) for _ in self.layers]
        zero_above = torch.zeros(n, 2 * d, 1, 1, device=dev)
        for r in range(grid):
            # Horizontal inputs of this row, left-padded by h.
            h_in = [torch.zeros(n, d, 1, grid + L.h, device=dev) for L in self.layers]
            for c in range(grid):
                for i, L in enumerate(self.layers):
                    above = v_pre[i][:, :, r - 1 : r, c : c + 1] if r > 0 else zero_above
                    pre = L.h_pre(h_in[i][:, :, :, c : c + L.h + 1], above)
                    out = L.h_post(pre, h_in[i][:, :, :, L.h + c : L.h + c + 1])
                    if i + 1 < len(self.layers):
                        nxt = self.layers[i + 1]
                        h_in[i + 1][:, :, :, nxt.h + c : nxt.h + c + 1] = out
                logits = self.head(out)[:, :, 0, 0]
                idx[:, r, c] = self._draw(logits, u[:, r, c])
                h_in[0][:, :, 0, self.layers[0].h + c] = self.embed(idx[:, r, c])
            # Row r is complete: extend the vertical stack by one row in every layer.
            first = self.layers[0]
            v_in[0][:, :, first.h + r, first.h : first.h + grid] = self.embed(idx[:, r]).permute(0, 2, 1)
            for i, L in enumerate(self.layers):
                pre = L.v_pre(v_in[i][:, :, r : r + L.h + 1])  # rows r-h..r of the padded input -> output row r
                v_pre[i][:, :, r : r + 1] = pre
                if i + 1 < len(self.layers):
                    nxt = self.layers[i + 1]
                    v_in[i + 1][:, :, nxt.h + r : nxt.h + r + 1, nxt.h : nxt.h + grid] = _gate(pre)
        return idx
