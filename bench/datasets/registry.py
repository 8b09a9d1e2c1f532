"""Dataset registry: ``@register_dataset("name", ...)`` on a :class:`Dataset` subclass (the counterpart of
``register_model``).

A registration holds everything the harness needs to know about a dataset, so no dataset name is written anywhere
but in the dataset's own module:

- how to read its inlier and outlier pools from a root folder (``Dataset.pools``), and its embedded synthetic
  fallback for runs without ``--data-root`` (``Dataset.synthetic_pools``, optional);
- its settings dataclass (a :class:`DatasetCounts` subclass) and the defaults of every profile;
- its title, what its inliers and outliers are, and the paper's published values (optional), for reports.

Built-in datasets live in ``bench/datasets/*.py`` and are imported on first use; plug-ins register theirs the same way.
The name rules, the "name taken" rule (a plug-in never takes a built-in's name) and each dataset's origin are the
generic registry's (``bench.registries``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import fields
from bench.datasets.pools import Pool
from bench.errors import BenchError
from bench.registries import NAME_PATTERN, PROFILE_NAMES, Registry, resolve_profiles

__all__ = [
    "DATASETS", "NAME_PATTERN", "Dataset", "DatasetCounts", "DatasetSpec", "PaperValues", "PoolPair", "defaults", "get",
    "names", "origin_of", "register_dataset", "resolve",
]  # fmt: skip


@dataclass
class DatasetCounts:
    """How many images of one dataset each set gets. Held-out sets never overlap the training images."""

    inliers: int  # training inliers (all of them in every cell; outliers are added to reach the ratio)
    classifier_train_per_class: int
    classifier_test_per_class: int
    reference: int  # real inliers for FID / KID / precision-recall

    def __post_init__(self) -> None:
        fields.require_positive(
            self, ("inliers", "classifier_train_per_class", "classifier_test_per_class", "reference")
        )


@dataclass(frozen=True)
class PoolPair:
    """What a dataset reads from its root: the inlier and outlier pools, and where they came from (for reports)."""

    inliers: Pool
    outliers: Pool
    source: str  # a folder, or "synthetic ..."


@dataclass
class PaperValues:
    """A dataset's published numbers, keyed by the paper's model names (``register_model(paper_name=...)``) and
    ratio in percent. Any of them may be empty."""

    pct_inliers: dict[str, dict[float, float]] = field(default_factory=dict)
    fid: dict[str, dict[float, float]] = field(default_factory=dict)
    f1: dict[float, float] = field(default_factory=dict)
    table_numbers: tuple[int, int] | None = None  # the paper's (% inliers table, FID table), e.g. (1, 3)


class Dataset:
    """Base class of a registered dataset; an instance holds the resolved settings of one profile."""

    name: str = ""  # set by @register_dataset

    def __init__(self, settings: DatasetCounts):
        self.settings = settings

    def pools(self, root: Path, seed: int) -> PoolPair:
        """Inlier and outlier pools read from ``root`` (a BenchError naming the fix when the layout is wrong)."""
        raise NotImplementedError

    def synthetic_pools(self, seed: int, length: int) -> PoolPair | None:
        """Embedded fallback for runs without a data root (``length`` images per pool at least); None: none."""
        return None

    def open(self, root: Path | None, seed: int, synthetic_length: int) -> PoolPair:
        if root is not None:
            return self.pools(root, seed)
        pair = self.synthetic_pools(seed, synthetic_length)
        if pair is None:
            raise BenchError(
                f"dataset '{self.name}' has no embedded data: pass its folder with --data-root {self.name}=PATH"
            )
        return pair

    def check_root(self, root: Path) -> None:
        """Cheap layout check of a data root, run before any expensive work (default: it is a folder)."""
        if not root.exists():
            raise BenchError(f"data root for '{self.name}' not found: {root}")
        if not root.is_dir():
            raise BenchError(f"data root for '{self.name}' is not a folder: {root}")

    def root_fingerprint(self, root: Path) -> str:
        """Identity of the images under ``root`` (their content, not the path)."""
        raise NotImplementedError

    def synthetic_fingerprint(self) -> str:
        """Identity of the embedded fallback (a version string of its drawing code)."""
        return "none"

    def source_fingerprint(self, root: Path | None) -> str:
        """Identity of the images a split is drawn from: part of every cell's config digest."""
        return self.synthetic_fingerprint() if root is None else self.root_fingerprint(root)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    cls: type
    settings_cls: type
    profiles: dict[str, DatasetCounts]
    title: str
    inlier_name: str
    outlier_name: str
    description: str
    paper: PaperValues | None
    default: tuple[str, ...]  # the profiles in whose default --datasets of `bench run` it is
    module: str

    def settings_for(self, profile: str) -> DatasetCounts:
        return copy.deepcopy(self.profiles[profile])

    def build(self, settings: DatasetCounts) -> Dataset:
        return self.cls(settings)


DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", decorator="register_dataset", base=Dataset, expects="a bench.api.Dataset subclass"
)
_REGISTRY = DATASETS.mapping  # name -> DatasetSpec, what is registered now (the former dict; tests)


def register_dataset(
    name: str,
    *,
    title: str,
    settings: type = DatasetCounts,
    profiles: dict[str, Any],
    inlier_name: str = "inliers",
    outlier_name: str = "outliers",
    paper: PaperValues | None = None,
    default: bool | Iterable[str] = False,
    description: str = "",
) -> Callable[[type], type]:
    """Register a :class:`Dataset` subclass under ``name``.

    ``profiles`` maps every profile name (``bench.config.PROFILE_NAMES``) to an instance of ``settings``, or to the
    name of another profile whose settings it reuses (explicit inheritance, e.g. ``{"demo": "smoke"}``).
    ``default``: whether `bench run` without --datasets runs it: True (every profile), False, or the profile names
    where it does (e.g. ``("smoke", "cpu", "paper")`` keeps a dataset out of the demo profile's main job).
    """

    def deco(cls: type) -> type:
        where = DATASETS.where(name, cls)
        DATASETS.check_name(name, cls)
        DATASETS.check_object(name, cls)
        DATASETS.check_free(name, cls)
        if not (dataclasses.is_dataclass(settings) and issubclass(settings, DatasetCounts)):
            raise BenchError(f"{where}: settings must be a dataclass subclassing DatasetCounts")
        resolved = _resolve_profiles(profiles, PROFILE_NAMES, settings, where)
        default_in = _default_profiles(default, where)
        DATASETS.add(name, cls, DatasetSpec(
            name, cls, settings, resolved, title, inlier_name, outlier_name,
            description or (cls.__doc__ or "").strip().split("\n")[0], paper, default_in, cls.__module__,
        ))  # fmt: skip
        cls.name = name
        return cls

    return deco


def _default_profiles(default: Any, where: str) -> tuple[str, ...]:
    if isinstance(default, bool):
        return PROFILE_NAMES if default else ()
    chosen = tuple(default) if not isinstance(default, str) and isinstance(default, Iterable) else None
    if chosen is None or any(p not in PROFILE_NAMES for p in chosen):
        raise BenchError(
            f"{where}: default must be True, False or profile names from {', '.join(PROFILE_NAMES)}, got {default!r}"
        )
    return chosen


def _resolve_profiles(profiles: Any, names: tuple[str, ...], settings: type, where: str) -> dict[str, DatasetCounts]:
    def check(p: str, value: Any) -> DatasetCounts:
        if not isinstance(value, settings):
            raise BenchError(
                f"{where}: profile '{p}' must be a {settings.__name__} instance, got {type(value).__name__}"
            )
        return value

    return resolve_profiles(profiles, names, where, check, "or inherit, e.g. profiles={..., 'demo': 'smoke'}")


def names() -> list[str]:
    """Registered dataset names, sorted."""
    return DATASETS.names()


def get(name: str) -> DatasetSpec:
    """The dataset registered as ``name``; BenchError "unknown dataset 'name': choose from ..." if there is none."""
    return DATASETS.get(name)


def origin_of(name: str) -> str | dict[str, str | None]:
    """``"built-in"`` or the plug-in's ``{"module", "sha256", "distribution"}`` (``bench.registries.PluginOrigin``)."""
    return DATASETS.origin(name)


def defaults(profile: str | None = None) -> list[str]:
    """The datasets `bench run` uses without --datasets under ``profile`` (registration order); without a profile,
    every dataset that is a default anywhere (the paper's)."""
    return [s.name for s in DATASETS.values() if (profile in s.default if profile else s.default)]


def resolve(text: str) -> list[str]:
    """A comma list of dataset names -> validated names, in the given order."""
    out = [d.strip() for d in text.split(",") if d.strip()]
    if not out:
        raise BenchError(f"no dataset given: pass --datasets, e.g. --datasets {','.join(defaults())}")
    for d in out:
        get(d)
    return list(dict.fromkeys(out))
