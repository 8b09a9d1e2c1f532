"""Everything registered, in a fixed order: built-in models and datasets, installed plug-ins (entry points), then
``BENCH_PLUGINS``, then ``--plugin`` (so a plug-in cannot take a built-in name). Called by every command and by every
worker before it looks anything up."""

from __future__ import annotations

from bench import plugins, registry
from bench.datasets import registry as datasets


def load_all(refs: list[str] | tuple[str, ...] = ()) -> list[plugins.LoadedPlugin]:
    """Returns what ``refs`` and the variable loaded, in order (entry points are in ``plugins.provenance()``)."""
    registry.names()
    datasets.names()
    out = [plugins.load(r, plugins.ENV_VAR) for r in plugins.from_environment()]
    out += [plugins.load(r, "--plugin") for r in refs]
    return out
