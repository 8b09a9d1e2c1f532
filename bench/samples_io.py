"""Reading a sample set made outside the harness (`bench score`): a folder of images, an ``.npz`` with a uint8
``samples`` array, or a torch tensor file; N x 3 x H x W or N x H x W x 3. Images are brought to the profile's size
with the builder's own resize (centre square crop, Lanczos), and the caller is told when that happened.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.datasets import images as image_io
from bench.errors import BenchError


@dataclass
class SampleSet:
    images: torch.Tensor  # uint8 N x 3 x size x size
    source: str
    notes: list[str] = field(default_factory=list)


def _check_array(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.dtype != np.uint8:
        raise BenchError(
            f"{where}: samples must be uint8 (0-255), got {arr.dtype}: convert with (x * 255).round().astype('uint8')"
        )
    if arr.ndim != 4:
        raise BenchError(f"{where}: samples must be N x 3 x H x W or N x H x W x 3, got shape {tuple(arr.shape)}")
    if arr.shape[1] == 3:
        chw = arr
    elif arr.shape[3] == 3:
        chw = arr.transpose(0, 3, 1, 2)
    elif 1 in (arr.shape[1], arr.shape[3]):
        raise BenchError(f"{where}: samples have 1 channel (shape {tuple(arr.shape)}); the classifier needs RGB images")
    else:
        raise BenchError(
            f"{where}: no colour axis of size 3 in shape {tuple(arr.shape)} (N x 3 x H x W or N x H x W x 3)"
        )
    if len(chw) == 0:
        raise BenchError(f"{where}: the sample set is empty")
    return np.ascontiguousarray(chw)


def _from_folder(folder: Path) -> tuple[np.ndarray, list[str]]:
    paths = image_io.list_images(folder)
    if not paths:
        raise BenchError(f"no images in {folder}: expected png/jpg/jpeg/webp files")
    arrays, sizes = [], {}
    for p in paths:
        try:
            with Image.open(p) as img:
                img.load()
                if img.mode not in ("RGB", "RGBA", "P"):
                    raise BenchError(f"{p}: image mode {img.mode} is not RGB (1-channel or high-bit images are not samples "
                                     f"of an RGB model); save RGB images")  # fmt: skip
                rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        except BenchError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise BenchError(f"{p} is not a readable image: remove or re-save it") from None
        sizes.setdefault(rgb.shape[:2], p.name)
        if len(sizes) > 1:
            (a, na), (b, nb) = list(sizes.items())[:2]
            raise BenchError(f"mixed image sizes in {folder}: {na} is {a[1]}x{a[0]}, {nb} is {b[1]}x{b[0]}; "
                             f"save every sample at one size")  # fmt: skip
        arrays.append(rgb)
    return np.stack(arrays), [f"{len(paths)} images read from {folder}"]


def _from_file(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "samples" not in z.files:
                    raise BenchError(f"{path} has no 'samples' array (it holds {', '.join(z.files) or 'nothing'}): "
                                     f"save with np.savez(path, samples=uint8_array)")  # fmt: skip
                return z["samples"]
        except BenchError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError):
            raise BenchError(
                f"{path} is not a readable .npz file: save with np.savez(path, samples=uint8_array)"
            ) from None
    if suffix in (".pt", ".pth"):
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise BenchError(f"{path} is not a readable torch tensor file ({type(e).__name__}): save with "
                             f"torch.save(uint8_tensor, path)") from None  # fmt: skip
        if isinstance(obj, dict) and "samples" in obj:
            obj = obj["samples"]
        if not isinstance(obj, torch.Tensor):
            raise BenchError(
                f"{path} holds a {type(obj).__name__}, not a tensor: save with torch.save(uint8_tensor, path)"
            )
        return obj.detach().cpu().numpy()
    raise BenchError(f"{path}: samples must be an image folder, a .npz (key 'samples') or a .pt tensor file")


def _resize(chw: np.ndarray, size: int) -> np.ndarray:
    return np.stack([image_io.to_square_rgb(Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0))), size)
                     for a in chw]).transpose(0, 3, 1, 2)  # fmt: skip


def _as_array(source: Any, where: str) -> np.ndarray:
    """A tensor, an array, or a list of same-shaped images / batches as one array."""
    if isinstance(source, torch.Tensor):
        return source.detach().cpu().numpy()
    if isinstance(source, (list, tuple)):
        parts = [p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else np.asarray(p) for p in source]
        shapes = sorted({p.shape for p in parts})
        if len(shapes) > 1:
            raise BenchError(f"{where}: the list holds images of different shapes {shapes[0]} and {shapes[1]}: pass "
                             f"images of one size (N x 3 x H x W)")  # fmt: skip
        return np.stack(parts) if parts else np.zeros((0, 3, 1, 1), np.uint8)
    try:
        return np.asarray(source)
    except ValueError as e:
        raise BenchError(f"{where}: not an image array ({e}); pass a uint8 N x 3 x H x W array or tensor") from None


def read_samples(source, size: int) -> SampleSet:
    """``source``: a folder, an .npz / .pt path, or an array / tensor. Returns uint8 N x 3 x size x size."""
    notes: list[str] = []
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.exists():
            raise BenchError(f"samples not found: {path} (pass an image folder, a .npz or a .pt file)")
        if path.is_dir():
            arr, notes = _from_folder(path)
        else:
            arr = _from_file(path)
        where = str(path)
    else:
        where = "samples"
        arr = _as_array(source, where)
    chw = _check_array(arr, where)
    h, w = chw.shape[2], chw.shape[3]
    if (h, w) != (size, size):
        chw = np.ascontiguousarray(_resize(chw, size))
        notes.append(f"resized {w}x{h} -> {size}x{size} (centre square crop, Lanczos, as the dataset builder does)")
    return SampleSet(torch.from_numpy(chw), where, notes)
