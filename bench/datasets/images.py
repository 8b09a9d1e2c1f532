"""Image decoding shared by the builders: any mode/size -> RGB, centre square crop, antialiased resize.

Images that cannot be decoded faithfully are never turned into wrong pixels: 16- and 32-bit greyscale and float
images are rescaled to 8 bits (Pillow's own RGB conversion would clip them to white); truncated or undecodable
files and images above ``MAX_PIXELS`` are skipped, and the caller counts why.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import json
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

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
    """Cheap fingerprint from names, sizes and modification times (changes when files change in the usual way, not
    when bytes are rewritten with size and mtime kept): a quick "did anything obviously change" check, never a cache
    key."""
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(os.fsencode(p.relative_to(root)) + f"\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# ---- content hashes, memoised per file --------------------------------------------------------------------------
#
# A file's sha256 is reused while its stat signature (size, mtime, ctime, inode) is unchanged. ctime cannot be set
# back (os.utime sets mtime and atime only) and moves on every write, so bytes rewritten with size and mtime kept
# are hashed again. A file changed within RACY_NS of being hashed is not memoised (its timestamps may not have
# ticked yet since the write: git's "racily clean" problem), so it is hashed again next time.

MEMO_FORMAT = 1
RACY_NS = 2_000_000_000
_process_memo: dict[str, tuple[tuple[int, int, int, int], str]] = {}  # absolute path -> (signature, sha256 hex)


class HashMemo:
    """The per-file memo on disk (a JSON file in a cache folder), so a new process does not re-read unchanged files.
    Written atomically, merged with what other processes wrote meanwhile, and only when it gained entries."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.files = self._read()
        self.added: dict[str, list] = {}

    def _read(self) -> dict[str, list]:
        try:
            blob = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(blob, dict) or blob.get("format") != MEMO_FORMAT or not isinstance(blob.get("files"), dict):
            return {}
        return blob["files"]

    def get(self, key: str, signature: tuple[int, int, int, int]) -> str | None:
        entry = self.files.get(key)
        if isinstance(entry, list) and len(entry) == 5 and tuple(entry[:4]) == signature and isinstance(entry[4], str):
            return entry[4]
        return None

    def put(self, key: str, signature: tuple[int, int, int, int], digest: str) -> None:
        if self.get(key, signature) != digest:
            self.files[key] = self.added[key] = [*signature, digest]

    def save(self) -> None:
        if not self.added:
            return
        from bench import atomic

        merged = {**self._read(), **self.added}
        try:
            atomic.write_text(self.path, json.dumps({"format": MEMO_FORMAT, "files": merged}, sort_keys=True))
        except OSError:
            return  # a read-only cache folder only costs re-hashing next time
        self.added = {}


_memo: contextvars.ContextVar[HashMemo | None] = contextvars.ContextVar("bench_hash_memo", default=None)


@contextlib.contextmanager
def hash_memo(path: Path) -> Iterator[HashMemo]:
    """Within this block, file hashes are also looked up in and added to the on-disk memo ``path`` (saved at exit)."""
    memo = HashMemo(path)
    token = _memo.set(memo)
    try:
        yield memo
    finally:
        _memo.reset(token)
        memo.save()


def file_sha256(path: Path) -> str:
    """sha256 (hex) of one file's bytes, from the memo while its stat signature is unchanged."""
    key = os.fsdecode(os.path.abspath(path))
    st = os.stat(path)
    signature = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    disk = _memo.get()
    cached = _process_memo.get(key)
    digest = cached[1] if cached is not None and cached[0] == signature else None
    if digest is None and disk is not None:
        digest = disk.get(key, signature)
    if digest is None:
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        after = os.stat(path)
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS or signature != (
            after.st_size,
            after.st_mtime_ns,
            after.st_ctime_ns,
            after.st_ino,
        ):
            return digest  # changed just now, or while it was read: not memoised
    _process_memo[key] = (signature, digest)
    if disk is not None:
        disk.put(key, signature, digest)
    return digest


def content_fingerprint(paths: list[Path], root: Path) -> str:
    """sha256 of every file's relative name and bytes: the identity of a folder's images wherever it is copied
    (part of cell digests, and the split cache's key). Each file's hash is memoised (``file_sha256``): ~0.6 s for
    12k small JPEGs the first time, a stat per file after that."""
    h = hashlib.sha256()
    for p in paths:
        h.update(os.fsencode(p.relative_to(root)) + b"\0")
        h.update(bytes.fromhex(file_sha256(p)))
    return h.hexdigest()
