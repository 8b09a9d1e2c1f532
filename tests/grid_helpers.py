"""Shared by the grid, report and plug-in tests: the mean-image test double as a plug-in, tiny settings, a runner."""

from pathlib import Path

import pytest

from bench import api, grid, plugins, registries

MEAN_PLUGIN = str(Path(__file__).resolve().parent / "plugins" / "mean_model.py")
FAST = {
    "data.facemask.inliers": 40, "data.facemask.classifier_train_per_class": 20,
    "data.facemask.classifier_test_per_class": 10, "data.facemask.reference": 20,
    "eval.classifier_epochs": 2, "eval.max_generated": 40,
}  # fmt: skip
FAST_SETS = [f"{k}={v}" for k, v in FAST.items()]
ROOMCROP_FAST = {
    "data.roomcrop.inliers": 40, "data.roomcrop.classifier_train_per_class": 20,
    "data.roomcrop.classifier_test_per_class": 10, "data.roomcrop.reference": 20, "data.roomcrop.pool_per_half": 100,
}  # fmt: skip


@pytest.fixture
def mean_plugin():
    """The test double registered for one test (and forgotten afterwards, so `--models all` elsewhere is unchanged)."""
    plugins.load(MEAN_PLUGIN)
    yield MEAN_PLUGIN
    forget_plugin(MEAN_PLUGIN, "test_mean")


def forget_plugin(ref: str, *models: str) -> None:
    """Undo a plug-in's import and registrations of every kind (tests only); ``models``: model names to forget too."""
    import sys

    info = plugins._loaded.pop(ref, None)
    if info is not None:
        sys.modules.pop(info.module, None)
    for kind in registries.KIND_MODULES:
        registry = registries.registry_of(kind)
        for entry in registry.entries():
            if info is not None and (entry.module == info.module or entry.module.startswith(info.module + ".")):
                registry.remove(entry.name)
    for m in models:
        registries.registry_of("model").remove(m)


def run_grid(out, models, datasets=("facemask",), ratios=(0, 30), seeds=(0,), jobs=1, backend="loky", **overrides):
    spec, planned = api.plan(list(models), list(datasets), list(ratios), list(seeds), profile="smoke", out=out,
                             jobs=jobs, backend=backend, overrides={**FAST, **overrides})  # fmt: skip
    return [record.to_row() for record in grid.run(spec, planned)], planned
