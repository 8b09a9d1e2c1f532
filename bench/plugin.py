"""The plug-in contract: everything a model, dataset, corruption or detector plug-in may import, and nothing else.

A plug-in imports from here only::

    from bench.plugin import FitResult, GenerativeModel, register_model

This module sits low in the import graph: it pulls in the base classes and the registries, never the grid, the
evaluator or the report, so importing a plug-in stays cheap and a plug-in cannot come to depend on the harness's
internals. The contract itself is documented in docs/plugins.md; ``bench check-model NAME --plugin FILE`` checks a
model against it.
"""

from __future__ import annotations

from bench.datasets.corrupted import CorruptedDataset, CorruptedSettings
from bench.datasets.corruptions import register_corruption
from bench.datasets.folder import TwoFolderDataset
from bench.datasets.registry import Dataset, DatasetCounts, PaperValues, PoolPair, register_dataset
from bench.detectors import register_detector
from bench.errors import BenchError
from bench.models.base import Checkpointer, FitConfig, FitResult, GenerativeModel, to_float, to_uint8
from bench.models.registry import register_model
from bench.progress import Progress, null_progress

__all__ = [
    # models
    "GenerativeModel", "FitResult", "FitConfig", "Checkpointer", "Progress", "null_progress", "to_float", "to_uint8",
    "register_model",
    # datasets, corruptions, detectors
    "Dataset", "DatasetCounts", "TwoFolderDataset", "CorruptedDataset", "CorruptedSettings", "PoolPair", "PaperValues",
    "register_dataset", "register_corruption", "register_detector",
    # errors a plug-in may raise (one line, exit 2)
    "BenchError",
]  # fmt: skip
