"""Image decoding shared by the builders: any mode/size -> RGB, centre square crop, antialiased resize.

Images that cannot be decoded faithfully are never turned into wrong pixels: 16- and 32-bit greyscale and float
images are rescaled to 8 bits (Pillow's own RGB conversion would clip them to white); truncated or undecodable
files and images above ``MAX_PIXELS`` are skipped, and the caller counts why.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_PIXELS = 50_000_000  # larger images are skipped (a 64 px benchmark never needs them; decoding one costs GBs)
SKIP_UNREADABLE = "undecodable or truncated"
SKIP_TOO_LARGE = f"larger than {MAX_PIXELS // 1_000_000} M pixels"


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (any of png/jpg/jpeg/webp, any case), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _to_8bit(img: Image.Image) -> Image.Image:
    """Greyscale images with more than 8 bits ("I;16*", "I", "F") as 8-bit "L", scaled by their value range."""
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float64)
        top = 1.0 if np.nanmax(arr, initial=0.0) <= 1.0 else 255.0
        arr = np.nan_to_num(arr) / top * 255.0
    else:
        arr = arr.astype(np.float64)
        peak = float(arr.max(initial=0))
        top = 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else peak
        arr = arr / top * 255.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def to_square_rgb(img: Image.Image, size: int) -> np.ndarray:
    """RGB, centre square crop, Lanczos (antialiased) resize to ``size``; returns uint8 H x W x 3."""
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def decode(data: bytes | Path, size: int, skipped: Counter | None = None) -> np.ndarray | None:
    """Decode one image (path or encoded bytes); ``None`` when it is unreadable or too large (reason counted in
    ``skipped`` when given)."""
    reason = SKIP_UNREADABLE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
                if img.width * img.height > MAX_PIXELS:
                    reason = SKIP_TOO_LARGE
                    raise ValueError(reason)
                img.load()
                return to_square_rgb(img, size)
    except Image.DecompressionBombError:
        reason = SKIP_TOO_LARGE
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        pass
    if skipped is not None:
        skipped[reason] += 1
    return None


def fingerprint_files(paths: Iterable[Path], root: Path) -> str:
    """Cheap fingerprint from names, sizes and modification times (changes when files change): split cache keys."""
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(os.fsencode(p.relative_to(root)) + f"\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


_content_cache: dict[tuple[str, str], str] = {}


def content_fingerprint(paths: list[Path], root: Path) -> str:
    """sha256 of every file's relative name and bytes: the identity of a folder's images wherever it is copied
    (part of cell digests). Cached per process by the cheap fingerprint (~0.6 s for 12k small JPEGs)."""
    cheap = fingerprint_files(paths, root)
    key = (str(root.resolve()), cheap)
    if key not in _content_cache:
        h = hashlib.sha256()
        for p in paths:
            h.update(os.fsencode(p.relative_to(root)) + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
        _content_cache[key] = h.hexdigest()
    return _content_cache[key]
