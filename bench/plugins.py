"""Plug-ins: third-party models, datasets, corruptions and detectors that register themselves on import.

Three ways in, all loaded in the driving process **and in every worker** (the grid sends the plug-in list with each
cell), and in ``bench eval``, ``report``, ``score``, ``check-model`` and ``models``:

- entry points of any installed distribution, groups ``robust_gen_bench.models`` and ``robust_gen_bench.datasets``
  (loaded with the registries, so every command sees them);
- ``--plugin MODULE_OR_FILE.py`` (repeatable), for code that is not installed;
- the environment variable ``BENCH_PLUGINS`` (a comma list of the same).

A plug-in that fails to import, registers a taken name or breaks the contract stops the command with one line.
``provenance()`` says what was loaded (module, file hash, distribution version) for every cell's config.json;
``public_module_name``, ``file_sha256`` and ``distribution_of`` give the registries (``bench.registries``) the origin
of each entry a plug-in registers, while it is being imported.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.errors import BenchError

ENTRY_POINT_GROUPS = ("robust_gen_bench.models", "robust_gen_bench.datasets")
ENV_VAR = "BENCH_PLUGINS"


@dataclass(frozen=True)
class LoadedPlugin:
    ref: str  # what was asked for: a module name, a file path, or "dist:entry-point"
    module: str  # the module name it was imported as
    file: str | None
    sha256: str | None  # of the module's file (None for a namespace package)
    distribution: str | None  # "name==version" when it came from an installed distribution
    via: str  # "entry point", "--plugin", "BENCH_PLUGINS"


_loaded: dict[str, LoadedPlugin] = {}
_entry_points_loaded = False
# Module name -> distribution ("name==version" or None) of every plug-in imported or being imported: filled *before*
# the import runs, so what a plug-in registers while it is imported is known to come from it.
_owners: dict[str, str | None] = {}
# Module names given to ``.py`` files (bench_plugin_<stem>_<hash of the path>) -> the file.
_files: dict[str, str] = {}


def file_sha256(path: str | None) -> str | None:
    """sha256 of a file's bytes (None when ``path`` is not a file)."""
    if not path or not os.path.isfile(path):
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _owner(module: str) -> str | None:
    """The plug-in module that ``module`` belongs to (itself or a package above it), or None."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in _owners:
            return ".".join(parts[:i])
    return None


def distribution_of(module: str) -> str | None:
    """``name==version`` of the installed distribution whose plug-in (entry point) holds ``module`` (the entry point's
    module, a module under it, or one of the same top-level package), else None."""
    owner = _owner(module)
    if owner is not None and _owners[owner] is not None:
        return _owners[owner]
    top = module.split(".")[0]
    return next((d for m, d in _owners.items() if d is not None and m.split(".")[0] == top), None)


def public_module_name(module: str) -> str:
    """``module``, except for a ``.py`` file loaded by path: the file's name (its import name holds a hash of the
    folder it lies in, which differs between machines)."""
    file = _files.get(module)
    return Path(file).name if file is not None else module


def _why(exc: BaseException) -> str:
    """The last line of the plug-in's own traceback: file:line and the error."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")


def _import_file(path: Path) -> object:
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"bench_plugin_{''.join(c if c.isalnum() else '_' for c in path.stem)}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BenchError(f"plug-in {path} is not a Python file: pass a .py file or an importable module name")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _files[name] = str(path)
    _owners.setdefault(name, None)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load(ref: str, via: str = "--plugin") -> LoadedPlugin:
    """Import one plug-in (a ``.py`` file or a module name) once per process; BenchError with one line on failure."""
    ref = ref.strip()
    if ref in _loaded:
        return _loaded[ref]
    if not ref:
        raise BenchError(f"empty plug-in name in {via}: pass a module name or a .py file")
    is_file = ref.endswith(".py") or os.sep in ref or "/" in ref
    try:
        if is_file:
            path = Path(ref).expanduser()
            if not path.is_file():
                raise BenchError(f"plug-in file not found: {ref} ({via}; pass an existing .py file or a module name)")
            module = _import_file(path.resolve())
        else:
            _owners.setdefault(ref, None)
            module = importlib.import_module(ref)
    except BenchError as e:
        raise BenchError(f"plug-in {ref} ({via}): {e}") from None
    except ModuleNotFoundError as e:
        if not is_file and e.name == ref.split(".")[0]:
            raise BenchError(
                f"plug-in module '{ref}' not found ({via}): install it, add its folder to PYTHONPATH, or pass its .py file"
            ) from None
        raise BenchError(f"plug-in {ref} ({via}) failed to import: {_why(e)}") from None
    except SystemExit as e:  # a plug-in must not end the process: say so in one line
        raise BenchError(
            f"plug-in {ref} ({via}) called sys.exit({e.code!r}) while importing: remove that call"
        ) from None
    except Exception as e:
        raise BenchError(f"plug-in {ref} ({via}) failed to import: {_why(e)}") from None
    file = getattr(module, "__file__", None)
    info = LoadedPlugin(ref, module.__name__, file, file_sha256(file), None, via)
    _loaded[ref] = info
    return info


def load_entry_points() -> None:
    """Import every installed distribution's ``robust_gen_bench.models`` / ``.datasets`` entry points, once."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for group in ENTRY_POINT_GROUPS:
        for ep in entry_points(group=group):
            dist = f"{ep.dist.name}=={ep.dist.version}" if ep.dist is not None else None
            ref = f"{dist or '?'}:{ep.name}"
            if ref in _loaded:
                continue
            _owners[ep.module] = dist
            try:
                obj = ep.load()
            except BenchError as e:
                raise BenchError(f"plug-in entry point '{ep.name}' of {dist} ({group}): {e}") from None
            except (Exception, SystemExit) as e:
                raise BenchError(
                    f"plug-in entry point '{ep.name}' = {ep.value} of {dist} ({group}) failed to import: {_why(e)}"
                ) from None
            module = sys.modules.get(getattr(obj, "__module__", None) or ep.module)
            file = getattr(module, "__file__", None) if module is not None else None
            _loaded[ref] = LoadedPlugin(ref, ep.module, file, file_sha256(file), dist, "entry point")


def from_environment() -> list[str]:
    return [p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip()]


def provenance() -> list[dict]:
    """Every plug-in loaded in this process, for config.json."""
    return [asdict(p) for p in _loaded.values()]


def origin(module: str) -> str:
    """Where a registered model or dataset comes from, for `bench models`."""
    for p in _loaded.values():
        if p.module == module or module.startswith(p.module + "."):
            return p.distribution or f"{p.via} {p.ref}"
    return "built-in" if module.startswith("bench.") else module
