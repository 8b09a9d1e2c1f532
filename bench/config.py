"""Profiles (``smoke``, ``cpu``, ``paper``) as dataclasses, with TOML and ``--set key=value`` overrides.

A profile fixes the data protocol (resolution, counts, RoomCrop corruption), the evaluation budget and run
settings. Per-model hyper-parameters live with each model (its config dataclass and per-profile defaults in
the registry); a profile may override them under ``models.<name>.<field>``.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError


@dataclass
class DatasetCounts:
    """How many images of one dataset each set gets. Held-out sets never overlap the training images."""

    inliers: int  # training inliers (all of them in every cell; outliers are added to reach the ratio)
    classifier_train_per_class: int
    classifier_test_per_class: int
    reference: int  # real inliers for FID / KID / precision-recall
    pool_per_half: int = 0  # RoomCrop only: bedrooms in each of the two disjoint halves (inlier / outlier pool)


@dataclass
class DataConfig:
    size: int = 64
    # FaceMask (paper §4.2): all 10,000 unmasked faces are training inliers; masked faces are outliers.
    facemask: DatasetCounts = field(default_factory=lambda: DatasetCounts(10_000, 2_000, 1_000, 5_000))
    # RoomCrop (paper §4.2): 30,000 inliers and a 30,000 outlier pool (plus what the held-out sets need).
    roomcrop: DatasetCounts = field(default_factory=lambda: DatasetCounts(30_000, 2_000, 1_000, 5_000, 38_000))
    # RoomCrop corruption. "side": each rectangle side drawn from [rect_min, rect_max] px at 64x64 (scaled
    # with resolution); "area": rectangle area drawn from [rect_min, rect_max] px^2 at 64x64 (scaled).
    rect_reading: str = "side"
    rect_min: float = 15.0
    rect_max: float = 25.0
    rects_min: int = 1
    rects_max: int = 3


@dataclass
class EvalConfig:
    # Generated samples per cell = number of training inliers (paper §4.3), capped here.
    max_generated: int = 100_000
    classifier_epochs: int = 20
    classifier_batch: int = 64
    classifier_lr: float = 1e-3
    feature_batch: int = 100
    kid_subset_size: int = 1_000
    # Local InceptionV3 weights (torch-fidelity's pt_inception-2015-12-05 file); None = look in TORCH_HOME.
    inception_weights: str | None = None


@dataclass
class RunConfig:
    # 0 = all cores divided by the number of parallel jobs. More threads than free cores is catastrophic for
    # small convnets (OpenMP spin-waits: a 4 s smoke GAN fit took 54 s with 2 threads while one core was busy).
    threads: int = 0
    checkpoint_every_s: float = 300.0
    grid_samples: int = 100
    # Where models train and sample: "cpu", "cuda" or "cuda:N". Data, classifier and metrics stay on the CPU.
    device: str = "cpu"


@dataclass
class Profile:
    name: str = "paper"
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    # Per-model hyper-parameter overrides: {"rvqvae": {"eta": 0.1}, ...}; validated by the registry.
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _paper() -> Profile:
    """The paper's protocol (§4.2, §4.3): 64x64, FaceMask 10k inliers, RoomCrop 30k/30k, 400 epochs, batch 10."""
    return Profile(name="paper")


def _cpu() -> Profile:
    """32x32 and a few thousand inliers: one dataset's whole grid in about 2 h on 2 cores.

    Counts fit the stand-ins in ../shared/data: FaceMask uses 3,000+900+500+1,400 = 5,800 of 5,932 unmasked
    and at most 1,286+900+500 = 2,686 of 5,710 masked faces; RoomCrop's 5,000 bedrooms split into halves of
    2,500: 1,200+400+250+600 = 2,450 inliers and at most 514+400+250 outliers.
    """
    return Profile(
        name="cpu",
        data=DataConfig(
            size=32,
            facemask=DatasetCounts(3_000, 900, 500, 1_400),
            roomcrop=DatasetCounts(1_200, 400, 250, 600, 2_500),
        ),
        eval=EvalConfig(max_generated=3_000, classifier_epochs=15, kid_subset_size=500),
        run=RunConfig(checkpoint_every_s=120.0),
    )


def _smoke() -> Profile:
    """CI: 16x16, ~150 training images, one or two epochs; seconds per cell."""
    return Profile(
        name="smoke",
        data=DataConfig(
            size=16,
            facemask=DatasetCounts(120, 60, 40, 60),
            roomcrop=DatasetCounts(120, 60, 40, 60, 300),
        ),
        eval=EvalConfig(
            max_generated=120, classifier_epochs=40, classifier_batch=32, feature_batch=60, kid_subset_size=50
        ),
        run=RunConfig(threads=1, checkpoint_every_s=30.0, grid_samples=36),  # tiny nets gain nothing from 2 threads
    )


def _demo() -> Profile:
    """The README's main job: all five models on synthetic FaceMask at 0/10/20/30 %, a few minutes on 2 cores.

    ``bench run --profile demo --models all --ratios 0,10,20,30 --datasets facemask --jobs 2``: 20 cells, 16x16,
    600 training inliers; per-model budgets are the ``demo`` entries of the models' profile dicts. RoomCrop counts
    are set so it runs too, but it doubles the cost (docs/demo-profile.md). Tiny models, synthetic data: the
    numbers show the harness working, not the paper's results.
    """
    return Profile(
        name="demo",
        data=DataConfig(
            size=16,
            facemask=DatasetCounts(600, 300, 200, 300),
            roomcrop=DatasetCounts(600, 300, 200, 300, 1_400),
        ),
        eval=EvalConfig(
            max_generated=600, classifier_epochs=20, classifier_batch=32, feature_batch=100, kid_subset_size=100
        ),
        run=RunConfig(threads=1, checkpoint_every_s=120.0),
    )


PROFILES = {"smoke": _smoke, "demo": _demo, "cpu": _cpu, "paper": _paper}
DEFAULT_PROFILE = "cpu"


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML literal (``3``, ``0.2``, ``true``, ``"x"``) or, failing that, a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _apply(target: Any, key: str, dotted: str, value: Any) -> None:
    """Set ``dotted`` (relative path) on a dataclass, checking the field exists and the type fits."""
    head, _, rest = dotted.partition(".")
    if isinstance(target, dict):  # the free-form models section: models.<name>.<field>
        if not rest:
            raise BenchError(f"bad setting '{key}': expected models.<model>.<field>=VALUE")
        target.setdefault(head, {})[rest] = value
        return
    names = {f.name: f for f in dataclasses.fields(target)}
    if head not in names or head == "name":
        known = ", ".join(n for n in names if n != "name")
        raise BenchError(f"unknown setting '{key}': '{head}' is not one of: {known}")
    current = getattr(target, head)
    if rest:
        if not (dataclasses.is_dataclass(current) or isinstance(current, dict)):
            raise BenchError(f"unknown setting '{key}': '{head}' has no fields")
        _apply(current, key, rest, value)
        return
    if dataclasses.is_dataclass(current) or isinstance(current, dict):
        raise BenchError(f"bad setting '{key}': name a field inside '{head}', e.g. {head}.<field>=VALUE")
    setattr(target, head, _coerce(key, current, value))


def _coerce(key: str, current: Any, value: Any) -> Any:
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(current, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(current, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(current, str):
        if isinstance(value, str):
            return value
    else:
        return value
    raise BenchError(
        f"bad value for '{key}': {value!r} is not a {type(current).__name__} (e.g. --set {key}={current!r})"
    )


def _flatten(prefix: str, table: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in table.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.extend(_flatten(key, v))
        else:
            out.append((key, v))
    return out


def load_profile(
    name: str = DEFAULT_PROFILE, config_file: str | Path | None = None, sets: list[str] | tuple[str, ...] = ()
) -> Profile:
    """Profile ``name``, then the TOML file's tables, then each ``key=value`` in ``sets`` (later wins)."""
    if name not in PROFILES:
        raise BenchError(f"unknown profile '{name}': choose one of {', '.join(PROFILES)}")
    profile = PROFILES[name]()
    if config_file is not None:
        path = Path(config_file)
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BenchError(f"config file not found: {path} (pass an existing TOML file to --config)") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise BenchError(f"config file {path} is not valid TOML: {e}") from None
        table.pop("profile", None)
        for key, value in _flatten("", table):
            _apply(profile, key, key, value)
    for item in sets:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise BenchError(f"bad --set '{item}': expected KEY=VALUE, e.g. --set data.size=32")
        _apply(profile, key, key, parse_value(raw.strip()))
    validate(profile)
    return copy.deepcopy(profile)


def profile_from_dict(d: dict[str, Any]) -> Profile:
    """Inverse of ``Profile.to_dict`` (used to re-evaluate a stored cell with the settings it ran with)."""
    data = dict(d["data"])
    for ds in ("facemask", "roomcrop"):
        data[ds] = DatasetCounts(**data[ds])
    return Profile(
        name=d["name"], data=DataConfig(**data), eval=EvalConfig(**d["eval"]), run=RunConfig(**d["run"]),
        models=dict(d.get("models", {})),
    )  # fmt: skip


def validate(p: Profile) -> None:
    validate_device(p.run.device)
    d = p.data
    if d.size < 8 or d.size % 4:
        raise BenchError(f"bad data.size={d.size}: must be a multiple of 4 and at least 8 (e.g. 16, 32, 64)")
    for ds in ("facemask", "roomcrop"):
        for f in dataclasses.fields(DatasetCounts):
            value = getattr(getattr(d, ds), f.name)
            if value < 1 and not (f.name == "pool_per_half" and ds == "facemask"):
                raise BenchError(f"bad data.{ds}.{f.name}={value}: must be a positive count")
    if d.rect_reading not in ("side", "area"):
        raise BenchError(f"bad data.rect_reading='{d.rect_reading}': choose 'side' or 'area'")
    if not 0 < d.rect_min <= d.rect_max:
        raise BenchError(f"bad rectangle range [{d.rect_min}, {d.rect_max}]: need 0 < data.rect_min <= data.rect_max")
    if not 1 <= d.rects_min <= d.rects_max:
        raise BenchError(f"bad rectangle count [{d.rects_min}, {d.rects_max}]: need 1 <= rects_min <= rects_max")


def validate_device(device: str) -> None:
    """``run.device`` must name the CPU or a CUDA device that this machine has."""
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return
    if kind != "cuda" or (index and not index.isdigit()):
        raise BenchError(f"bad run.device='{device}': choose 'cpu', 'cuda' or 'cuda:N'")
    import torch

    if not torch.cuda.is_available():
        raise BenchError(f"run.device='{device}' but torch sees no CUDA device here: use --set run.device=cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise BenchError(f"run.device='{device}' but only {torch.cuda.device_count()} CUDA device(s) exist")
