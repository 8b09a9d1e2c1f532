"""One registry class for every kind of plug-in: models, datasets, corruptions and detectors.

Each kind holds one :class:`Registry` (``bench.models.registry.MODELS``, ``bench.datasets.registry.DATASETS``,
``bench.datasets.corruptions.CORRUPTIONS``, ``bench.detectors.DETECTORS``); its ``register_*`` decorator checks what
is particular to the kind (config dataclass, profiles, params) and leaves the rest to the registry:

- the name: ``NAME_PATTERN`` (lower-case, at most 40 characters), one rule for every kind;
- what may be registered: a subclass of the kind's base class, or a callable;
- the "name taken" rule: a name belongs to the first class or function that registers it. Registering the same one
  again (same module and qualified name: a module imported again) replaces it; anything else is refused. A name held
  by a built-in (a module under ``bench.``) is never given to a module outside ``bench.``, whatever its class or
  function is called, and the built-ins are all imported before anything outside ``bench.`` registers, so a plug-in
  cannot take a built-in name by loading first (a plug-in is code running in this process: the rule stops clashes,
  it is no sandbox);
- where each entry comes from (:attr:`Entry.origin`): ``"built-in"``, or the module, file hash and distribution of the
  plug-in (found through ``bench.plugins``), JSON-serialisable and the same on every machine;
- lazy import of the built-in modules (``BUILTIN_PACKAGES``, ``BUILTIN_MODULES``) and the installed plug-ins' entry
  points on the first look-up;
- ``get`` with a one-line "unknown X 'name': choose from ..." error, ``names``.

Every error is a one-line :class:`~bench.errors.BenchError` saying what, where and how to fix it. Also here: the
profile names every model and dataset gives settings for, and their explicit inheritance (``resolve_profiles``).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from bench import plugins
from bench.errors import BenchError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

# Every registered model and dataset gives settings for each of these (bench.config builds the profiles).
PROFILE_NAMES = ("smoke", "demo", "cpu", "paper")

# The origin of everything registered by a module under ``bench.``.
BUILT_IN = "built-in"

# Where the built-ins of every kind live: every public module of these packages, and these modules. All of them are
# imported before the first look-up and before anything outside ``bench.`` registers (of any kind: a model module
# registers detectors too).
BUILTIN_PACKAGES = ("bench.models", "bench.datasets")
BUILTIN_MODULES = ("bench.detectors", "bench.detectors_learned")

# The module holding each kind's registry (``registry_of`` imports it on first use).
KIND_MODULES = {
    "model": "bench.models.registry",
    "dataset": "bench.datasets.registry",
    "corruption": "bench.datasets.corruptions",
    "detector": "bench.detectors",
}

T = TypeVar("T")


def is_builtin(module: str) -> bool:
    """Whether ``module`` is part of this package (what it registers is built-in)."""
    return module == "bench" or module.startswith("bench.")


@dataclass(frozen=True)
class PluginOrigin:
    """Where a plug-in's entry comes from: the module that defines it (a ``--plugin`` / ``BENCH_PLUGINS`` file: the
    file's name, since its import name depends on the folder it lies in), the sha256 of that module's file (None when
    it has none), and ``name==version`` of the installed distribution it came from (None when not installed)."""

    module: str
    sha256: str | None
    distribution: str | None

    def to_json(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registration: the kind's spec (``value``, what ``get`` returns), the class or function registered and
    where it was defined, and where it comes from (``plugin`` is None for a built-in)."""

    kind: str
    name: str
    value: T
    obj: Any
    module: str
    qualname: str
    plugin: PluginOrigin | None

    @property
    def builtin(self) -> bool:
        return self.plugin is None

    @property
    def origin(self) -> str | dict[str, str | None]:
        """``"built-in"``, or ``{"module": ..., "sha256": ..., "distribution": ...}`` (a new dict on every call)."""
        return BUILT_IN if self.plugin is None else self.plugin.to_json()

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.qualname}"


# ---- built-ins -----------------------------------------------------------------------------------------------------

_builtins_state = "not loaded"  # -> "loading" -> "loaded"


def load_builtins() -> None:
    """Import every built-in module of every kind, once (no plug-in is imported here)."""
    global _builtins_state
    if _builtins_state != "not loaded":
        return
    _builtins_state = "loading"
    try:
        for package_name in BUILTIN_PACKAGES:
            package = importlib.import_module(package_name)
            for info in pkgutil.iter_modules(package.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{package_name}.{info.name}")
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
    except BaseException:
        _builtins_state = "not loaded"
        raise
    _builtins_state = "loaded"


def load_all() -> None:
    """The built-ins, then the installed plug-ins' entry points (each once; a look-up made by a built-in module while
    the built-ins are being imported loads no plug-in)."""
    load_builtins()
    if _builtins_state == "loaded":
        plugins.load_entry_points()


def registry_of(kind: str) -> Registry[Any]:
    """The registry of ``kind`` (model, dataset, corruption, detector), importing its module on first use."""
    if kind not in KIND_MODULES:
        raise BenchError(f"unknown kind of plug-in '{kind}': choose from {', '.join(KIND_MODULES)}")
    if kind not in _REGISTRIES:
        importlib.import_module(KIND_MODULES[kind])
    return _REGISTRIES[kind]


_REGISTRIES: dict[str, Registry[Any]] = {}


# ---- the registry --------------------------------------------------------------------------------------------------


class Registry(Generic[T]):
    """Name -> spec for one kind of plug-in.

    ``kind``: the word used in messages ("model"). ``decorator``: the registering function's name, for messages.
    ``base``: the class every registered object must subclass, or None for a callable. ``expects``: what the decorator
    takes, in words (e.g. "a bench.api.GenerativeModel subclass"). ``hint``: appended to the unknown-name error.
    ``order``: sorts names for ``names`` and the unknown-name error (default: alphabetical).
    """

    def __init__(
        self,
        kind: str,
        *,
        decorator: str,
        expects: str,
        base: type | None = None,
        hint: str = "",
        order: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        self.kind = kind
        self.decorator = decorator
        self.expects = expects
        self.base = base
        self.hint = hint
        self._order = order
        previous = _REGISTRIES.get(kind)  # its module imported again: keep what was registered
        self._entries: dict[str, Entry[T]] = previous._entries if previous is not None else {}
        _REGISTRIES[kind] = self

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} registered)"

    # ---- registering ----------------------------------------------------------------------------------------------

    def where(self, name: Any, obj: Any = None) -> str:
        """How messages name a registration: ``model 'gan' (bench.models.gan)``."""
        module = getattr(obj, "__module__", None)
        return f"{self.kind} '{name}'" + (f" ({module})" if module else "")

    def check_name(self, name: Any, obj: Any = None) -> None:
        """BenchError unless ``name`` matches ``NAME_PATTERN``."""
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            module = getattr(obj, "__module__", None)
            raise BenchError(
                f"bad {self.kind} name {name!r}" + (f" in {module}" if module else "")
                + f": use lower-case letters, digits, - or _ (at most 40, starting with a letter), e.g. 'my-{self.kind}'"
            )  # fmt: skip

    def check_object(self, name: str, obj: Any) -> None:
        """BenchError unless ``obj`` subclasses the kind's base class (or, without one, is callable)."""
        if self.base is not None:
            ok = isinstance(obj, type) and issubclass(obj, self.base)
        else:
            ok = callable(obj)
        if not ok:
            raise BenchError(f"{self.where(name, obj)}: {self.decorator} decorates {self.expects}, got {obj!r}")

    def add(self, name: str, obj: Any, value: T) -> T:
        """Register ``value`` (the kind's spec) for ``obj`` under ``name``; returns ``value``.

        Checks the name and the object, imports the built-ins first when ``obj`` is not one, and applies the "name
        taken" rule. Registering the same class or function again (a module imported again) replaces the entry in
        place.
        """
        self.check_name(name, obj)
        self.check_object(name, obj)
        module, qualname = self.check_free(name, obj)
        plugin = None if is_builtin(module) else _plugin_origin(module)
        self._entries[name] = Entry(self.kind, name, value, obj, module, qualname, plugin)
        return value

    def check_free(self, name: str, obj: Any) -> tuple[str, str]:
        """The "name taken" rule (``add`` applies it; a decorator may call it early, before costlier checks):
        BenchError unless ``name`` is free or held by this same class or function (same module and qualified name).
        Imports the built-ins first when ``obj`` is not one. Returns ``obj``'s (module, qualified name)."""
        module = getattr(obj, "__module__", None) or "?"
        qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
        if not is_builtin(module):
            if _builtins_state == "loading":
                raise BenchError(
                    f"{self.where(name, obj)} registers while the built-ins are being imported: a module under bench. "
                    "must not import plug-ins (load them with --plugin, BENCH_PLUGINS or an entry point)"
                )
            load_builtins()  # every built-in name is taken before anything else may register
        old = self._entries.get(name)
        if old is not None and (
            old.builtin and not is_builtin(module) or (old.module, old.qualname) != (module, qualname)
        ):
            raise BenchError(self._taken(name, old))
        return module, qualname

    def _taken(self, name: str, old: Entry[T]) -> str:
        if old.builtin:
            return f"{self.kind} name '{name}' is taken by the built-in {old.dotted}: pick another name"
        return f"{self.kind} name '{name}' is taken by {old.dotted} ({plugins.origin(old.module)}): pick another name"

    def remove(self, name: str) -> None:
        """Forget a plug-in's entry (tests only; a built-in cannot be removed)."""
        entry = self._entries.get(name)
        if entry is None:
            return
        if entry.builtin:
            raise BenchError(f"{self.kind} '{name}' is built-in: it cannot be removed")
        del self._entries[name]

    # ---- looking up -----------------------------------------------------------------------------------------------

    def load(self) -> None:
        """Import the built-ins of every kind and the installed plug-ins' entry points (once)."""
        load_all()

    def names(self) -> list[str]:
        """Every registered name, in the kind's order (alphabetical unless it has its own)."""
        self.load()
        return self._sorted(list(self._entries))

    def _sorted(self, names: list[str]) -> list[str]:
        return self._order(names) if self._order is not None else sorted(names)

    def entry(self, name: str) -> Entry[T]:
        """The registration of ``name`` (spec, registered object, origin); BenchError with the choices if unknown.

        A name registered already is final (nothing outside ``bench.`` registers before the built-ins are all in), so
        it is returned without loading anything: a built-in module may look up its own kind while it is imported.
        """
        entry = self._entries.get(name)
        if entry is None:
            self.load()
            entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(self._sorted(list(self._entries))) or "(none registered)"
            raise BenchError(
                f"unknown {self.kind} '{name}': choose from {known}" + (f" {self.hint}" if self.hint else "")
            )
        return entry

    def get(self, name: str) -> T:
        """The spec registered under ``name``; BenchError "unknown X 'name': choose from ..." if there is none."""
        return self.entry(name).value

    def origin(self, name: str) -> str | dict[str, str | None]:
        """``"built-in"`` or the plug-in's ``{"module", "sha256", "distribution"}`` (see :class:`PluginOrigin`)."""
        return self.entry(name).origin

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self.load()
        return name in self._entries

    def values(self) -> list[T]:
        """Every spec, in registration order (built-ins first)."""
        self.load()
        return [e.value for e in self._entries.values()]

    def entries(self) -> list[Entry[T]]:
        """Every entry, in registration order (built-ins first)."""
        self.load()
        return list(self._entries.values())

    @property
    def mapping(self) -> MutableMapping[str, T]:
        """A name -> spec view of what is registered now (no loading; deleting forgets a plug-in): what the former
        module-level ``_REGISTRY`` dicts were, for code that still uses them."""
        return _SpecView(self)


class _SpecView(MutableMapping):
    def __init__(self, registry: Registry[Any]) -> None:
        self._registry = registry

    def __getitem__(self, name: str) -> Any:
        return self._registry._entries[name].value

    def __setitem__(self, name: str, value: Any) -> None:
        raise TypeError(f"register a {self._registry.kind} with {self._registry.decorator}, not by assignment")

    def __delitem__(self, name: str) -> None:
        if name not in self._registry._entries:
            raise KeyError(name)
        self._registry.remove(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._registry._entries))

    def __len__(self) -> int:
        return len(self._registry._entries)


def _plugin_origin(module: str) -> PluginOrigin:
    """The origin of something defined in ``module`` (outside ``bench.``), from ``bench.plugins``."""
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None) if mod is not None else None
    return PluginOrigin(plugins.public_module_name(module), plugins.file_sha256(file), plugins.distribution_of(module))


# ---- per-profile settings ------------------------------------------------------------------------------------------


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
