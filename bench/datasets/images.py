"""Image decoding shared by the builders: any mode/size -> RGB, centre square crop, antialiased resize."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (any of png/jpg/jpeg/webp, any case), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def to_square_rgb(img: Image.Image, size: int) -> np.ndarray:
    """RGB, centre square crop, Lanczos (antialiased) resize to ``size``; returns uint8 H x W x 3."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def decode(data: bytes | Path, size: int) -> np.ndarray | None:
    """Decode one image (path or encoded bytes); ``None`` when it is unreadable."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            img.load()
            return to_square_rgb(img, size)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def fingerprint_files(paths: Iterable[Path], root: Path) -> str:
    """Content fingerprint from names, sizes and modification times (cheap; changes when files change)."""
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
