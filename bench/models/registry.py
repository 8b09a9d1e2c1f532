"""Model registry: ``@register_model("name", config=Cfg, profiles={...})`` on a GenerativeModel subclass.

Every module in ``bench/models/`` is imported on first use, so adding a built-in model is one file with one
decorator; plug-ins (entry points, ``--plugin``, ``BENCH_PLUGINS``) register theirs the same way. Registration checks
the contract up front: a GenerativeModel subclass, a config dataclass, settings for every profile (or an explicit
``"profile": "other profile"`` inheritance) whose values type-check against the config. The name rules, the "name
taken" rule (a plug-in never takes a built-in's name) and each model's origin are the generic registry's
(``bench.registries``). Titles and the paper's order live here, with each model, and nowhere else.

This module imports ``bench.models.base``, never the other way round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import fields
from bench.errors import BenchError
from bench.models.base import GenerativeModel
from bench.registries import NAME_PATTERN, PROFILE_NAMES, Registry, resolve_profiles

__all__ = [
    "KINDS", "MODELS", "NAME_PATTERN", "ModelSpec", "get", "names", "ordered", "origin_of", "register_model",
    "resolve", "title",
]  # fmt: skip

KINDS = ("model", "reference")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    config_cls: type
    # Per-profile defaults layered over the config dataclass's own defaults (which are the paper's values).
    profile_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""
    title: str = ""  # how reports name it
    paper_name: str | None = None  # its name in the paper's tables (the key of a dataset's paper values)
    paper_rank: int | None = None  # position in the paper's model order (reports list models in that order)
    kind: str = "model"  # "model" or "reference" (reference generators: set apart in reports)
    oracle: bool = False  # trains on the outlier labels by design (a ceiling, never a method)
    module: str = ""
    bf16: bool = True  # may train in bf16 when run.precision is bf16 (False: always fp32, with the reason at register)

    def training_precision(self, requested: str) -> str:
        """The precision this model trains in when the run asks for ``requested`` (already resolved for the device)."""
        return requested if self.bf16 else "fp32"

    def make_config(self, profile: str, overrides: dict[str, Any] | None = None) -> Any:
        defaults = fields.field_defaults(self.config_cls)
        values = {**self.profile_defaults.get(profile, {}), **(overrides or {})}
        return fields.build(self.config_cls, values, f"models.{self.name}", reference=defaults)

    def build(self, profile: str, image_size: int, overrides: dict[str, Any] | None = None) -> Any:
        return self.cls(self.make_config(profile, overrides), image_size)


def _report_order(models) -> list[str]:
    return ordered(models)


MODELS: Registry[ModelSpec] = Registry(
    "model", decorator="register_model", base=GenerativeModel, expects="a bench.api.GenerativeModel subclass",
    hint="(a model of your own: --plugin FILE.py or BENCH_PLUGINS)", order=_report_order,
)  # fmt: skip
_REGISTRY = MODELS.mapping  # name -> ModelSpec, what is registered now (the former dict; tests)


def register_model(
    name: str,
    *,
    config: type,
    profiles: dict[str, Any] | None = None,
    description: str = "",
    title: str | None = None,
    paper_name: str | None = None,
    paper_rank: int | None = None,
    kind: str = "model",
    oracle: bool = False,
    bf16: bool = True,
) -> Callable[[type], type]:
    """Register a GenerativeModel subclass under ``name``.

    ``profiles`` maps every profile (``bench.config.PROFILE_NAMES``) to its overrides of the config's defaults (the
    paper's values), or to the name of another profile to inherit from, e.g. ``{"paper": {}, "cpu": {"epochs": 8},
    "smoke": {"epochs": 1}, "demo": "smoke"}``. A name taken by another model (a built-in's above all) is refused.

    ``bf16=False`` keeps the model in fp32 when a run asks for bf16 (``run.precision``): for a model with nothing to
    train, or one whose bf16 results were measured outside one seed's noise of its fp32 results.
    """

    def deco(cls: type) -> type:
        where = MODELS.where(name, cls)
        MODELS.check_name(name, cls)
        MODELS.check_object(name, cls)
        missing = [
            m
            for m in ("fit", "sample", "state_dict", "load_state_dict")
            if m in getattr(cls, "__abstractmethods__", ())
        ]
        if missing:
            raise BenchError(f"{where} does not implement {', '.join(missing)}: see bench.api.GenerativeModel")
        MODELS.check_free(name, cls)
        if not dataclasses.is_dataclass(config):
            raise BenchError(f"{where}: config must be a dataclass, got {config!r}")
        if kind not in KINDS:
            raise BenchError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        resolved = _resolve_profiles(profiles, PROFILE_NAMES, where)
        spec = ModelSpec(
            name, cls, config, resolved, description or (cls.__doc__ or "").strip().split("\n")[0],
            title or name, paper_name, paper_rank, kind, oracle, cls.__module__, bool(bf16),
        )  # fmt: skip
        for p in PROFILE_NAMES:  # every profile's settings must build (types, ranges) now, not in a worker later
            try:
                spec.make_config(p)
            except BenchError as e:
                raise BenchError(f"{where}, profile '{p}': {e}") from None
        MODELS.add(name, cls, spec)
        cls.name = name
        return cls

    return deco


def _resolve_profiles(profiles: Any, names: tuple[str, ...], where: str) -> dict[str, dict[str, Any]]:
    def check(p: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise BenchError(f"{where}: profile '{p}' settings must be a dict, got {type(value).__name__}")
        return dict(value)

    example = "e.g. profiles={'paper': {}, 'cpu': {...}, 'smoke': {...}, 'demo': 'smoke'} (a string inherits)"
    return resolve_profiles(profiles, names, where, check, example)


def names(kind: str | None = None) -> list[str]:
    """Registered model names (of one kind, if given), in report order."""
    return [n for n in MODELS.names() if kind is None or MODELS.mapping[n].kind == kind]


def ordered(models) -> list[str]:
    """``models`` in report order: the paper's models in the paper's order, other models by name, reference
    generators last."""
    MODELS.load()
    models = set(models)
    specs = MODELS.mapping

    def key(m: str) -> tuple:
        spec = specs.get(m)
        if spec is None:  # e.g. an external model scored with `bench score`
            return (1, 1, m)
        rank = spec.paper_rank if spec.paper_rank is not None else 1_000
        if spec.kind == "reference":  # the index's two anchors, then the other references (the gaming probes)
            return (2, 0 if m in ("replay", "replay-inliers") else 1, m)
        return (0, rank, m)

    return sorted(models, key=key)


def get(name: str) -> ModelSpec:
    """The model registered as ``name``; BenchError "unknown model 'name': choose from ..." if there is none."""
    return MODELS.get(name)


def origin_of(name: str) -> str | dict[str, str | None]:
    """Where model ``name`` comes from: ``"built-in"`` (``bench.registries.BUILT_IN``), or for a plug-in
    ``{"module": ..., "sha256": ..., "distribution": ...}`` (see ``bench.registries.PluginOrigin``). JSON-serialisable
    and the same on every machine: fit for a cell's digest."""
    return MODELS.origin(name)


def title(name: str) -> str:
    MODELS.load()
    spec = MODELS.mapping.get(name)
    return spec.title if spec is not None else name


def resolve(models: str) -> list[str]:
    """``all`` (every model and reference generator) or a comma list -> validated model names, in the given order."""
    if models.strip() == "all":
        return names()
    out = [m.strip() for m in models.split(",") if m.strip()]
    if not out:
        raise BenchError("no model given: pass --models all or a comma list, e.g. --models rvqvae,vqvae")
    for m in out:
        get(m)
    return list(dict.fromkeys(out))
