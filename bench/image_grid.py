"""Image grids (PNG) for previews, per-cell samples and the report's figures."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench import atomic


def grid_array(images: torch.Tensor, nrow: int | None = None, pad: int = 1, upscale: int = 1) -> np.ndarray:
    """uint8 N x 3 x H x W -> one uint8 image (rows of ``nrow``), white padding."""
    n, _, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    ncol_rows = int(math.ceil(n / nrow))
    canvas = np.full((ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), 255, np.uint8)
    arr = images.permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, c = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        canvas[y : y + h, x : x + w] = arr[i]
    if upscale > 1:
        canvas = canvas.repeat(upscale, 0).repeat(upscale, 1)
    return canvas


def save_grid(path: str | Path, images: torch.Tensor, nrow: int | None = None, upscale: int | None = None) -> None:
    h = images.shape[-1]
    upscale = upscale or max(1, 64 // h)
    buf = io.BytesIO()
    Image.fromarray(grid_array(images, nrow=nrow, upscale=upscale)).save(buf, format="PNG")
    atomic.write_bytes(path, buf.getvalue())
