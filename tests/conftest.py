from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def shared_path(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"stand-in data not available at {path} (the ../shared folder beside the checkout is absent)")
    return path


def write_images(folder: Path, n: int, colour: tuple[int, int, int], size=(40, 30), suffix=".png", mode="RGB") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash((str(folder), n))) % 2**32)
    for i in range(n):
        arr = np.clip(np.array(colour) + rng.integers(-20, 21, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, "RGB")
        if mode != "RGB":
            img = img.convert(mode)
        img.save(folder / f"{i:04d}{suffix}")


def data_config(size: int = 16, **settings):
    """A DataConfig holding only the named datasets' settings, given as positional tuples of their settings class,
    e.g. ``data_config(16, facemask=(60, 20, 10, 20), roomcrop=(60, 20, 10, 20, 140))``."""
    from bench.config import DataConfig
    from bench.datasets import registry

    return DataConfig(size=size, datasets={n: registry.get(n).settings_cls(*v) for n, v in settings.items()})
