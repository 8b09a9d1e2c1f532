"""Corruptions: how a clean image becomes an outlier for the ``corrupted`` datasets (RoomCrop is one of them).

``@register_corruption("name", params=ParamsDataclass)`` on ``fn(image, rng, params) -> image`` (uint8 H x W x 3 in
and out, a new array). Item i of a pool always gets the same corruption for a seed: the caller seeds ``rng`` with
(seed, i). Parameters are lengths at 64 x 64 and scale with the image size, so a profile's 32 px images look like
its 64 px ones. The registry is the generic one (``bench.registries``): names, the "name taken" rule (a plug-in never
takes a built-in's name), origins.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench import fields
from bench.errors import BenchError
from bench.registries import Registry


@dataclass(frozen=True)
class CorruptionSpec:
    name: str
    fn: Callable[[np.ndarray, np.random.Generator, Any], np.ndarray]
    params_cls: type
    description: str

    def make_params(self, overrides: dict[str, Any] | None, where: str) -> Any:
        return fields.build(self.params_cls, dict(overrides or {}), where)


CORRUPTIONS: Registry[CorruptionSpec] = Registry(
    "corruption", decorator="register_corruption", expects="a function (image, rng, params) -> image"
)
_REGISTRY = CORRUPTIONS.mapping  # name -> CorruptionSpec, what is registered now (the former dict; tests)


def register_corruption(name: str, *, params: type, description: str = "") -> Callable:
    """Register ``fn(image, rng, params) -> image`` as corruption ``name``; ``params`` is its settings dataclass."""

    def deco(fn: Callable) -> Callable:
        CORRUPTIONS.check_name(name, fn)
        CORRUPTIONS.check_object(name, fn)
        if not (isinstance(params, type) and dataclasses.is_dataclass(params)):
            raise BenchError(f"{CORRUPTIONS.where(name, fn)}: params must be a dataclass class, got {params!r}")
        spec = CorruptionSpec(name, fn, params, description or (fn.__doc__ or "").strip().split("\n")[0])
        CORRUPTIONS.add(name, fn, spec)
        return fn

    return deco


def names() -> list[str]:
    """Registered corruption names, sorted."""
    return CORRUPTIONS.names()


def get(name: str) -> CorruptionSpec:
    """The corruption registered as ``name``; BenchError "unknown corruption 'name': choose from ..." if none."""
    return CORRUPTIONS.get(name)


def origin_of(name: str) -> str | dict[str, str | None]:
    """``"built-in"`` or the plug-in's ``{"module", "sha256", "distribution"}`` (``bench.registries.PluginOrigin``)."""
    return CORRUPTIONS.origin(name)


def corrupt_item(name: str, params: Any, seed: int) -> tuple[Callable[[np.ndarray, int], np.ndarray], str]:
    """A pool transform ``fn(image, i)`` applying corruption ``name`` to item i, and a tag for cache keys."""
    spec = get(name)
    tag_values = ":".join(f"{v}" for v in dataclasses.astuple(params))

    def fn(image: np.ndarray, i: int) -> np.ndarray:
        return spec.fn(image, np.random.default_rng([seed, 0x600C, i]), params)

    return fn, f"{name}:{seed}:{tag_values}"


# ------------------------------------------------------------------------------------------ rectangles


@dataclass
class RectanglesParams:
    """RoomCrop (paper §4.2): 1-3 black rectangles at random centres. The paper's "area between 15 and 25" is read as
    side lengths of 15-25 px at 64x64 (``reading = "side"``; a literal area of 15-25 px^2 is a 4x5 speck, invisible
    in Fig. 3-style images); ``reading = "area"`` keeps the literal reading (aspect ratio log-uniform in [1/2, 2])."""

    reading: str = "side"
    min: float = 15.0
    max: float = 25.0
    count_min: int = 1
    count_max: int = 3

    def __post_init__(self) -> None:
        fields.require_choice(self, "reading", ("side", "area"))
        fields.require(0 < self.min <= self.max, f"need 0 < min <= max, got [{self.min}, {self.max}]")
        fields.require(1 <= self.count_min <= self.count_max,
                       f"need 1 <= count_min <= count_max, got [{self.count_min}, {self.count_max}]")  # fmt: skip


@dataclass(frozen=True)
class Rect:
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int  # exclusive


def draw_rectangles(rng: np.random.Generator, size: int, p: RectanglesParams) -> list[Rect]:
    """count_min..count_max rectangles with uniformly random centres, clipped to the image."""
    scale = size / 64.0
    rects = []
    for _ in range(int(rng.integers(p.count_min, p.count_max + 1))):
        if p.reading == "side":
            w = rng.uniform(p.min, p.max) * scale
            h = rng.uniform(p.min, p.max) * scale
        else:
            area = rng.uniform(p.min, p.max) * scale**2
            aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
            w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
        cx, cy = rng.uniform(0, size), rng.uniform(0, size)
        w, h = max(1, round(w)), max(1, round(h))
        x0 = min(max(0, round(cx - w / 2)), size - 1)
        y0 = min(max(0, round(cy - h / 2)), size - 1)
        rects.append(Rect(x0, y0, min(size, x0 + w), min(size, y0 + h)))
    return rects


def blacken(image: np.ndarray, rects: list[Rect]) -> np.ndarray:
    """Copy of an H x W x 3 uint8 image with every rectangle set to black."""
    out = image.copy()
    for r in rects:
        out[r.y0 : r.y1, r.x0 : r.x1, :] = 0
    return out


@register_corruption("rectangles", params=RectanglesParams)
def rectangles(image: np.ndarray, rng: np.random.Generator, p: RectanglesParams) -> np.ndarray:
    """Black rectangles (RoomCrop)."""
    return blacken(image, draw_rectangles(rng, image.shape[0], p))


# ------------------------------------------------------------------------------------------ noise


@dataclass
class NoiseParams:
    """Additive Gaussian noise, std ``sigma`` in units of the full 0-255 range (0.25 = 64 grey levels)."""

    sigma: float = 0.25

    def __post_init__(self) -> None:
        fields.require(0 < self.sigma <= 2, f"sigma must be in (0, 2], got {self.sigma}")


@register_corruption("noise", params=NoiseParams)
def noise(image: np.ndarray, rng: np.random.Generator, p: NoiseParams) -> np.ndarray:
    """Heavy additive Gaussian noise on every pixel and channel."""
    noisy = image.astype(np.float32) + rng.normal(0.0, 255.0 * p.sigma, image.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------ patch


@dataclass
class PatchParams:
    """A foreign patch pasted at a random place: a checkerboard of two random colours (side in px at 64x64, cell
    size ``cell`` px at 64x64)."""

    min: float = 16.0
    max: float = 28.0
    cell: float = 4.0

    def __post_init__(self) -> None:
        fields.require(0 < self.min <= self.max <= 64, f"need 0 < min <= max <= 64, got [{self.min}, {self.max}]")
        fields.require(self.cell > 0, f"cell must be positive, got {self.cell}")


@register_corruption("patch", params=PatchParams)
def patch(image: np.ndarray, rng: np.random.Generator, p: PatchParams) -> np.ndarray:
    """A pasted checkerboard patch of two random colours (an object that does not belong to the scene)."""
    size = image.shape[0]
    scale = size / 64.0
    side = max(2, round(rng.uniform(p.min, p.max) * scale))
    cell = max(1, round(p.cell * scale))
    x0, y0 = (int(v) for v in rng.integers(0, size - side + 1, size=2))
    colours = rng.integers(0, 256, size=(2, 3)).astype(np.uint8)
    yy, xx = np.mgrid[0:side, 0:side]
    board = colours[((yy // cell + xx // cell) % 2)]
    out = image.copy()
    out[y0 : y0 + side, x0 : x0 + side] = board
    return out


# ------------------------------------------------------------------------------------------ text


@dataclass
class TextParams:
    """A caption stamped on the image: ``words`` random capital words, white with a black outline, in PIL's
    built-in bitmap font scaled to ``height`` px per line at 64x64."""

    words: int = 2
    height: float = 14.0

    def __post_init__(self) -> None:
        fields.require(1 <= self.words <= 6, f"words must be in 1..6, got {self.words}")
        fields.require(4 <= self.height <= 32, f"height must be in [4, 32] px, got {self.height}")


_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


@register_corruption("text", params=TextParams)
def text(image: np.ndarray, rng: np.random.Generator, p: TextParams) -> np.ndarray:
    """A random caption stamped across the image (watermark-like text)."""
    from PIL import Image, ImageDraw, ImageFont

    size = image.shape[0]
    words = ["".join(rng.choice(_LETTERS, size=int(rng.integers(3, 6)))) for _ in range(p.words)]
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.multiline_textbbox((0, 0), "\n".join(words), font=font, stroke_width=1)
    stamp = Image.new("RGBA", (right - left + 2, bottom - top + 2), (0, 0, 0, 0))
    ImageDraw.Draw(stamp).multiline_text((1 - left, 1 - top), "\n".join(words), font=font, fill=(255, 255, 255, 255),
                                         stroke_width=1, stroke_fill=(0, 0, 0, 255))  # fmt: skip
    line_px = max(4, round(p.height * size / 64.0))
    factor = line_px * len(words) / stamp.height
    w, h = max(1, min(size, round(stamp.width * factor))), max(1, min(size, round(stamp.height * factor)))
    stamp = stamp.resize((w, h), Image.Resampling.NEAREST)
    x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
    canvas = Image.fromarray(image).convert("RGBA")
    canvas.alpha_composite(stamp, (x0, y0))
    return np.asarray(canvas.convert("RGB"), dtype=np.uint8)
