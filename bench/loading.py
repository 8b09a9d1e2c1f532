"""Everything registered, in a fixed order: the built-ins of every kind (models, datasets, corruptions, detectors),
installed plug-ins (entry points), then ``BENCH_PLUGINS``, then ``--plugin``. A plug-in cannot take a built-in name
whatever the order (``bench.registries``), but listing them in a fixed order keeps "taken by" messages the same.
Called by every command and by every worker before it looks anything up."""

from __future__ import annotations

from bench import plugins, registries


def load_all(refs: list[str] | tuple[str, ...] = ()) -> list[plugins.LoadedPlugin]:
    """Returns what ``refs`` and the variable loaded, in order (entry points are in ``plugins.provenance()``)."""
    registries.load_all()
    out = [plugins.load(r, plugins.ENV_VAR) for r in plugins.from_environment()]
    out += [plugins.load(r, "--plugin") for r in refs]
    return out
