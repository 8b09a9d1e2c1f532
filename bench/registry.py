"""Model registry: ``@register_model("name", config=Cfg, profiles={...})`` on a GenerativeModel subclass.

Every module in ``bench/models/`` is imported on first use, so adding a model is one file with one decorator.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

from bench.errors import BenchError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    config_cls: type
    # Per-profile defaults layered over the config dataclass's own defaults (which are the paper's values).
    profile_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""

    def make_config(self, profile: str, overrides: dict[str, Any] | None = None) -> Any:
        values = {**self.profile_defaults.get(profile, {}), **(overrides or {})}
        known = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BenchError(
                f"unknown setting models.{self.name}.{unknown[0]}: {self.name} has {', '.join(sorted(known))}"
            )
        try:
            return self.config_cls(**values)
        except (ValueError, TypeError) as e:  # a config's own validation, e.g. an unknown loss variant
            raise BenchError(f"bad setting for models.{self.name}: {e}") from None

    def build(self, profile: str, image_size: int, overrides: dict[str, Any] | None = None) -> Any:
        return self.cls(self.make_config(profile, overrides), image_size)


_REGISTRY: dict[str, ModelSpec] = {}
_loaded = False


def register_model(
    name: str, *, config: type, profiles: dict[str, dict[str, Any]] | None = None, description: str = ""
) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"model name '{name}' registered twice")
        cls.name = name
        _REGISTRY[name] = ModelSpec(name, cls, config, dict(profiles or {}), description or (cls.__doc__ or "").strip().split("\n")[0])
        return cls

    return deco


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    import bench.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"bench.models.{info.name}")
    _loaded = True


def names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> ModelSpec:
    _load_all()
    if name not in _REGISTRY:
        raise BenchError(f"unknown model '{name}': choose from {', '.join(sorted(_REGISTRY)) or '(none registered)'}")
    return _REGISTRY[name]


def resolve(models: str) -> list[str]:
    """``all`` or a comma list -> validated model names, in the given order."""
    if models.strip() == "all":
        return names()
    out = [m.strip() for m in models.split(",") if m.strip()]
    if not out:
        raise BenchError("no model given: pass --models all or a comma list, e.g. --models rvqvae,vqvae")
    for m in out:
        get(m)
    return out
