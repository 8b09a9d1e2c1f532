"""What the registries (models, datasets) share: per-profile settings with explicit inheritance, and loading the
built-in modules of a package plus the installed plug-ins' entry points."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any, Callable

from bench.errors import BenchError

# Every registered model and dataset gives settings for each of these (bench.config builds the profiles).
PROFILE_NAMES = ("smoke", "demo", "cpu", "paper")


def resolve_profiles(profiles: Any, names: tuple[str, ...], where: str, check: Callable[[str, Any], Any],
                     example: str) -> dict[str, Any]:  # fmt: skip
    """``{profile: settings or "other profile"}`` -> ``{profile: check(profile, settings)}`` for every profile.

    Every profile must be given, or inherit explicitly by naming another one (``{"demo": "smoke"}``); ``check``
    validates one entry and returns what to store. ``example`` completes the "how to fix" of a missing profile.
    """
    if profiles is None:
        profiles = {}
    if not isinstance(profiles, dict):
        raise BenchError(f"{where}: profiles must be a dict of profile name -> settings")
    unknown = sorted(set(profiles) - set(names))
    if unknown:
        raise BenchError(f"{where}: unknown profile '{unknown[0]}' (profiles: {', '.join(names)})")
    missing = [p for p in names if p not in profiles]
    if missing:
        raise BenchError(f"{where} has no settings for profile(s) {', '.join(missing)}: give each one, {example}")
    out = {}
    for p in names:
        value, seen = profiles[p], {p}
        while isinstance(value, str):
            if value not in profiles or value in seen:
                raise BenchError(f"{where}: profile '{p}' inherits from '{value}', which is not a settings entry")
            seen.add(value)
            value = profiles[value]
        out[p] = check(p, value)
    return out


def import_builtin_modules(package: ModuleType) -> None:
    """Import every public module of ``package`` (each registers itself), then the installed plug-ins."""
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    from bench import plugins

    plugins.load_entry_points()
