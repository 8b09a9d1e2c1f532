"""Embedded procedural data, so ``bench run`` works on a fresh machine with no files.

- faces: a drawn face (skin-toned oval, hair, eyes, brows, nose, mouth) on a muted background; the outlier
  class is the same kind of face wearing a light surgical mask (white, light blue or light green, from just below
  the eyes to below the chin, with ear loops), so that a mask stays obvious down to 16x16 (the demo profile);
- rooms: a drawn bedroom (wall, floor in perspective, bed with headboard, pillow and blanket, window, lamp);
  RoomCrop outliers are made from them by the same black-rectangle corruption as the real data.

Image i of a pool is a pure function of (seed, kind, i): pools are deterministic and independent of how many
images are drawn. Drawing happens at 64x64 and goes through the same resize as real images.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image, ImageDraw

from bench.datasets.images import to_square_rgb

_CANVAS = 64
VERSION = "synthetic-v2"  # bump when a drawing changes: split caches and cell digests then stop matching
_KIND_IDS = {"face": 1, "masked_face": 2, "room": 3}


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi + 1, size=3))


def _jitter(rng: np.random.Generator, base: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in base)


_SKIN = [(241, 194, 160), (224, 172, 130), (198, 134, 96), (141, 85, 54), (255, 219, 186)]
_HAIR = [(30, 20, 15), (90, 60, 30), (200, 160, 90), (120, 40, 20), (60, 60, 60)]
# Muted, mid-dark backgrounds: no saturated colours a small generator must learn, none close to a mask's colour.
_BACKGROUNDS = [(70, 90, 120), (110, 120, 130), (90, 115, 85), (130, 100, 90), (60, 60, 75), (120, 110, 70)]
# Surgical masks in light colours (white, light blue, light green), salient against every skin tone at 16 px.
_MASKS = [(170, 205, 240), (240, 240, 245), (175, 225, 200)]


def draw_face(rng: np.random.Generator, masked: bool) -> Image.Image:
    img = Image.new("RGB", (_CANVAS, _CANVAS), _jitter(rng, _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))], 15))
    d = ImageDraw.Draw(img)
    cx = 32 + rng.integers(-2, 3)
    cy = 32 + rng.integers(-2, 3)
    fw, fh = rng.integers(18, 22), rng.integers(23, 27)
    skin = _jitter(rng, _SKIN[rng.integers(len(_SKIN))], 12)
    hair = _jitter(rng, _HAIR[rng.integers(len(_HAIR))], 10)
    d.ellipse([cx - fw - 2, cy - fh - 4, cx + fw + 2, cy + fh // 3], fill=hair)  # hair behind the face
    d.rectangle([cx - 7, cy + fh - 6, cx + 7, 64], fill=skin)  # neck
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=skin)
    d.chord([cx - fw, cy - fh - 2, cx + fw, cy - fh // 4], 180, 360, fill=hair)  # fringe
    ey = cy - fh // 5
    ex = int(fw * 0.45)
    for sx in (-1, 1):
        x = cx + sx * ex
        d.ellipse([x - 3, ey - 2, x + 3, ey + 2], fill=(250, 250, 250))
        d.ellipse([x - 1, ey - 1, x + 1, ey + 1], fill=_colour(rng, 10, 90))
        d.line([x - 4, ey - 5, x + 4, ey - 5 + rng.integers(-1, 2)], fill=hair, width=1)
    ny = cy + fh // 6
    d.line([cx, ey + 2, cx - 1, ny], fill=_jitter(rng, skin, 40), width=1)
    my = cy + fh // 2
    mw = rng.integers(5, 9)
    d.arc([cx - mw, my - 4, cx + mw, my + 2 + rng.integers(0, 3)], 20, 160, fill=(150, 50, 50), width=2)
    if masked:  # from just below the eyes to below the chin, as wide as the face
        mask = _jitter(rng, _MASKS[rng.integers(len(_MASKS))], 10)
        top = ey + 5
        d.polygon(
            [
                (cx - fw - 1, top),
                (cx + fw + 1, top),
                (cx + fw - 2, cy + fh - 2),
                (cx, cy + fh + 3),
                (cx - fw + 2, cy + fh - 2),
            ],
            fill=mask,
        )
        for k in range(3):  # pleats
            y = top + 5 + 5 * k
            d.line([cx - fw + 3, y, cx + fw - 3, y], fill=_jitter(rng, mask, 35), width=1)
        for sx in (-1, 1):  # ear loops
            d.line([cx + sx * (fw + 1), top + 1, cx + sx * (fw + 3), ey], fill=mask, width=2)
    return img


def draw_room(rng: np.random.Generator) -> Image.Image:
    wall = _colour(rng, 90, 240)
    img = Image.new("RGB", (_CANVAS, _CANVAS), wall)
    d = ImageDraw.Draw(img)
    horizon = int(rng.integers(26, 38))
    floor = _colour(rng, 50, 170)
    d.polygon([(0, horizon + 8), (64, horizon + 8), (64, 64), (0, 64)], fill=floor)
    d.line([0, horizon + 8, 64, horizon + 8], fill=_jitter(rng, floor, 30), width=1)
    if rng.random() < 0.8:  # window
        wx, wy = int(rng.integers(2, 40)), int(rng.integers(3, 12))
        ww, wh = int(rng.integers(12, 22)), int(rng.integers(10, 18))
        d.rectangle([wx, wy, wx + ww, wy + wh], fill=(240, 240, 240))
        d.rectangle([wx + 1, wy + 1, wx + ww - 1, wy + wh - 1], fill=_colour(rng, 150, 235))
        d.line([wx + ww // 2, wy, wx + ww // 2, wy + wh], fill=(240, 240, 240))
    bx = int(rng.integers(4, 22))
    bw = int(rng.integers(30, 44))
    by = horizon - int(rng.integers(0, 6))
    wood = _colour(rng, 60, 160)
    d.rectangle([bx, by - 12, bx + bw, by + 10], fill=wood)  # headboard
    blanket = _colour(rng, 30, 250)
    d.polygon([(bx - 2, by + 2), (bx + bw + 2, by + 2), (bx + bw + 8, 60), (bx - 8, 60)], fill=blanket)
    d.rectangle([bx + 2, by - 2, bx + bw - 2, by + 5], fill=(245, 245, 245))  # sheet / pillows
    d.line([bx + bw // 2, by - 2, bx + bw // 2, by + 5], fill=(200, 200, 200))
    d.line([bx - 6, 52, bx + bw + 6, 52], fill=_jitter(rng, blanket, 50), width=2)
    if rng.random() < 0.6:  # bedside lamp
        lx = bx + bw + 6 if bx + bw + 12 < 64 else max(2, bx - 10)
        d.rectangle([lx, by + 2, lx + 6, by + 14], fill=wood)
        d.polygon([(lx, by - 6), (lx + 6, by - 6), (lx + 8, by + 1), (lx - 2, by + 1)], fill=_colour(rng, 180, 255))
    return img


class SyntheticPool:
    """``length`` procedurally drawn images of one kind ("face", "masked_face" or "room")."""

    def __init__(self, kind: str, seed: int, length: int):
        self.kind, self.seed, self.length = kind, seed, length
        self.fingerprint = hashlib.sha256(f"{VERSION}:{kind}:{seed}".encode()).hexdigest()

    def __len__(self) -> int:
        return self.length

    def get(self, i: int, size: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, _KIND_IDS[self.kind], i])
        img = draw_room(rng) if self.kind == "room" else draw_face(rng, masked=self.kind == "masked_face")
        return to_square_rgb(img, size)
