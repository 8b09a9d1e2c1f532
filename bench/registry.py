"""Temporary shim: the model registry moved to ``bench.models.registry`` (import it from there). Removed once the
modules that still import ``bench.registry`` are updated."""

from bench.models.registry import *  # noqa: F401,F403
from bench.models.registry import (  # noqa: F401
    _REGISTRY,
    KINDS,
    MODELS,
    NAME_PATTERN,
    ModelSpec,
    get,
    names,
    ordered,
    origin_of,
    register_model,
    resolve,
    title,
)
