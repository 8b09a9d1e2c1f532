"""``occluders``: a corruption that pixel statistics alone do not give away, a stand-in for real occluded faces.

Each outlier gets 1-2 occluders of varied shape (rotated ellipses, rotated rectangles, random convex polygons, a
mask-like band over the lower face), colour (skin-like, mid-grey, dark, light, random, or the mean colour of part of
the image itself), texture (flat with soft shading, noise, stripes, or a blurred copy of another part of the same
image), position (anywhere, or around the lower centre where a mask or a hand would sit), size and rotation. Edges
are anti-aliased (4 x 4 supersampling) and softened by a small Gaussian, so no hard edge gives an occluder away.
Lengths are px at 64 x 64 and scale with the image size; the same ``rng`` gives the same image.

The defaults are calibrated on the 5,932 unmasked faces of facemask12k (cpu profile, 32 px, r = 30 %, seed 0): the
robust Mahalanobis detector ``mcd`` finds the outliers with an AUC of 0.69 (0.71 on real occluded faces), where pasted
mask templates or classes from different photo sources give 0.88-0.98. Dark and light colours and size are what a
detector sees most; skin colours, the image's own colours and the blurred copies it hardly sees at all.

``--set data.corrupted.corruption=occluders``; its parameters are ``--set data.corrupted.params.<name>=...``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench import fields
from bench.datasets.corruptions import register_corruption

SHAPES = ("ellipse", "rectangle", "polygon", "band")
COLOURS = ("skin", "grey", "dark", "light", "random", "image")
TEXTURES = ("flat", "noise", "stripes", "blur")
SUPERSAMPLE = 4  # sub-pixels per pixel side for the anti-aliased coverage


def parse_choices(text: str, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    """``"a,b"`` -> ("a", "b"), each one of ``allowed`` (ValueError naming ``name`` otherwise)."""
    items = tuple(t.strip() for t in str(text).split(",") if t.strip())
    fields.require(bool(items), f"{name} must list at least one of {','.join(allowed)}, got {text!r}")
    bad = [t for t in items if t not in allowed]
    fields.require(not bad, f"{name} must be a comma-separated list of {','.join(allowed)}, got {text!r}")
    return items


@dataclass(frozen=True)
class OccludersParams:
    """1-2 soft-edged occluders of varied shape, colour, texture, position, size and rotation.

    ``min``/``max``: the occluder's longer extent in px at 64x64 (the band's width is 1.1-1.5 x that, at most 85 %
    of the image); ``aspect``: the largest ratio of longer to shorter extent (drawn log-uniformly from 1);
    ``shapes``, ``colours``, ``textures``: comma-separated lists, each drawn with equal chance; ``face_bias``: the
    chance that an occluder is centred around the lower centre (mouth and chin) instead of anywhere;
    ``opacity_min``/``opacity_max``: its opacity range (opaque by default, as real objects are; lower
    ``opacity_min`` for see-through ones); ``edge``: the Gaussian softening of its edge, sigma in px at
    64x64 (0 = anti-aliased only)."""

    count_min: int = 1
    count_max: int = 2
    min: float = 26.0
    max: float = 42.0
    aspect: float = 2.5
    shapes: str = ",".join(SHAPES)
    colours: str = "skin,grey,dark,light,random"  # "image" (the image's own colours) is subtler still
    textures: str = ",".join(TEXTURES)
    face_bias: float = 0.5
    opacity_min: float = 1.0
    opacity_max: float = 1.0
    edge: float = 1.0

    def __post_init__(self) -> None:
        fields.require(1 <= self.count_min <= self.count_max <= 8,
                       f"need 1 <= count_min <= count_max <= 8, got [{self.count_min}, {self.count_max}]")  # fmt: skip
        fields.require(2 <= self.min <= self.max <= 64, f"need 2 <= min <= max <= 64, got [{self.min}, {self.max}]")
        fields.require(1 <= self.aspect <= 8, f"aspect must be in [1, 8], got {self.aspect}")
        parse_choices(self.shapes, SHAPES, "shapes")
        parse_choices(self.colours, COLOURS, "colours")
        parse_choices(self.textures, TEXTURES, "textures")
        fields.require_fraction(self, ["face_bias"])
        fields.require(0 < self.opacity_min <= self.opacity_max <= 1,
                       f"need 0 < opacity_min <= opacity_max <= 1, got [{self.opacity_min}, {self.opacity_max}]")  # fmt: skip
        fields.require(0 <= self.edge <= 8, f"edge must be in [0, 8] px, got {self.edge}")


# ------------------------------------------------------------------------------------------ helpers


def gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an H x W (x C) float array over its first two axes, edges reflected."""
    if sigma <= 0:
        return a
    radius = max(1, math.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    out = a.astype(np.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        r = min(radius, n - 1)
        kk = k[radius - r : radius + r + 1] / k[radius - r : radius + r + 1].sum()
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        padded = np.moveaxis(np.pad(out, pad, mode="reflect"), axis, 0)
        out = np.moveaxis(sum(w * padded[j : j + n] for j, w in enumerate(kk)), 0, axis)
    return out


def _rotated(px: np.ndarray, py: np.ndarray, cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = px - cx, py - cy
    return dx * c + dy * s, -dx * s + dy * c


def _inside(kind: str, u: np.ndarray, v: np.ndarray, a: float, b: float, rng: np.random.Generator) -> np.ndarray:
    """Which sub-pixels (u, v in the shape's own rotated frame, half-extents a >= b) lie inside the shape."""
    if kind == "ellipse":
        return (u / a) ** 2 + (v / b) ** 2 <= 1
    if kind == "rectangle":
        return (np.abs(u) <= a) & (np.abs(v) <= b)
    if kind == "band":  # a rounded rectangle (superellipse), like a mask over mouth and chin
        return (np.abs(u / a) ** 4 + np.abs(v / b) ** 4) <= 1
    # a convex polygon: 3-7 vertices at stratified angles on the ellipse (a, b), so always convex and never a sliver
    n = int(rng.integers(3, 8))
    phi = 2 * np.pi * (np.arange(n) + rng.uniform(0.1, 0.9, n)) / n
    xs, ys = a * np.cos(phi), b * np.sin(phi)
    inside = np.ones(u.shape, bool)
    for i in range(n):
        x0, y0, x1, y1 = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
        inside &= (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0) >= 0  # counter-clockwise: left of every edge
    return inside


def _colour(kind: str, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if kind == "skin":  # between a light and a dark skin tone, a little jitter
        t = rng.uniform(0, 1)
        base = (1 - t) * np.array([235.0, 200.0, 175.0]) + t * np.array([115.0, 75.0, 55.0])
        return base + rng.normal(0, 8, 3)
    if kind == "grey":
        return rng.uniform(90, 170) + rng.normal(0, 5, 3)
    if kind == "dark":  # a black cloth mask, a hand in shadow, sunglasses
        return rng.uniform(10, 60) + rng.normal(0, 5, 3)
    if kind == "light":  # a white or pale blue surgical mask
        return rng.uniform(195, 245) - np.array([rng.uniform(0, 30), rng.uniform(0, 12), 0.0])
    if kind == "random":
        return rng.uniform(0, 255, 3)
    # "image": the mean colour of a random region of the image itself
    size = image.shape[0]
    side = max(2, size // 3)
    y0, x0 = (int(v) for v in rng.integers(0, size - side + 1, 2))
    return image[y0 : y0 + side, x0 : x0 + side].reshape(-1, 3).mean(0) + rng.normal(0, 6, 3)


def _fill(kind: str, colour: np.ndarray, image: np.ndarray, rng: np.random.Generator, extent: float) -> np.ndarray:
    """The occluder's H x W x 3 float texture (only its covered part is ever seen)."""
    size = image.shape[0]
    scale = size / 64.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    if kind == "blur":  # a blurred copy of another region of the same image, shifted by at least half the extent
        shift = [int(round(rng.uniform(0.5, 1.0) * extent * rng.choice([-1, 1]))) for _ in range(2)]
        return gaussian_blur(np.roll(image.astype(np.float64), shift, axis=(0, 1)), rng.uniform(1.0, 2.5) * scale)
    fill = np.broadcast_to(colour, (size, size, 3)).astype(np.float64)
    direction = rng.uniform(0, 2 * np.pi)  # soft shading across the occluder, as real lighting gives
    ramp = ((xx - size / 2) * math.cos(direction) + (yy - size / 2) * math.sin(direction)) / max(1.0, extent)
    fill = fill + rng.uniform(0, 25) * ramp[..., None]
    if kind == "noise":
        noise = gaussian_blur(rng.normal(0, 1, (size, size, 1)), rng.uniform(0, 0.8) * scale)
        fill = fill + rng.uniform(8, 30) * noise / max(1e-6, float(noise.std()))
    elif kind == "stripes":
        period = rng.uniform(4, 10) * scale
        angle = rng.uniform(0, np.pi)
        phase = (xx * math.cos(angle) + yy * math.sin(angle)) * 2 * np.pi / period + rng.uniform(0, 2 * np.pi)
        fill = fill + rng.uniform(15, 50) * np.sin(phase)[..., None]
    return fill


def _centre(rng: np.random.Generator, size: int, face_bias: float, margin: float) -> tuple[float, float]:
    if rng.uniform() < face_bias:  # around mouth and chin
        cx, cy = rng.normal(0.5 * size, 0.1 * size), rng.normal(0.7 * size, 0.08 * size)
    else:
        cx, cy = rng.uniform(0, size), rng.uniform(0, size)
    lo, hi = min(margin, size / 2), max(size - margin, size / 2)
    return float(np.clip(cx, lo, hi)), float(np.clip(cy, lo, hi))


# ------------------------------------------------------------------------------------------ the corruption


def draw_occluders(image: np.ndarray, rng: np.random.Generator, p: OccludersParams) -> tuple[np.ndarray, np.ndarray]:
    """The occluded image (float H x W x 3) and the combined opacity map (H x W in [0, 1]) of all occluders."""
    size = image.shape[0]
    scale = size / 64.0
    shapes = parse_choices(p.shapes, SHAPES, "shapes")
    colours = parse_choices(p.colours, COLOURS, "colours")
    textures = parse_choices(p.textures, TEXTURES, "textures")
    k = SUPERSAMPLE
    sub = (np.arange(size * k, dtype=np.float64) + 0.5) / k
    py, px = np.meshgrid(sub, sub, indexing="ij")
    out = image.astype(np.float64)
    total = np.zeros((size, size))
    for _ in range(int(rng.integers(p.count_min, p.count_max + 1))):
        kind = shapes[int(rng.integers(len(shapes)))]
        extent = rng.uniform(p.min, p.max) * scale
        if kind == "band":
            width = min(0.85 * size, extent * rng.uniform(1.1, 1.5))
            a, b = width / 2, width * rng.uniform(0.2, 0.3)
            angle = rng.normal(0, 0.15)
        else:
            a = extent / 2
            b = a / math.exp(rng.uniform(0, math.log(p.aspect)))
            angle = rng.uniform(0, np.pi)
        cx, cy = _centre(rng, size, p.face_bias, 0.3 * extent)
        u, v = _rotated(px, py, cx, cy, angle)
        cover = _inside(kind, u, v, a, b, rng).reshape(size, k, size, k).mean(axis=(1, 3))
        alpha = np.clip(gaussian_blur(cover, p.edge * scale), 0, 1) * rng.uniform(p.opacity_min, p.opacity_max)
        colour = _colour(colours[int(rng.integers(len(colours)))], image, rng)
        fill = _fill(textures[int(rng.integers(len(textures)))], colour, image, rng, 2 * a)
        out = out * (1 - alpha[..., None]) + fill * alpha[..., None]
        total = 1 - (1 - total) * (1 - alpha)
    return out, total


@register_corruption("occluders", params=OccludersParams)
def occluders(image: np.ndarray, rng: np.random.Generator, p: OccludersParams) -> np.ndarray:
    """1-2 soft-edged occluders of varied shape, colour, texture, position and rotation (hard to spot by pixels)."""
    out, _ = draw_occluders(image, rng, p)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
