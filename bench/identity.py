"""Cell identity: a cell is its full resolved configuration, not (dataset, model, ratio, seed).

``settings`` gathers everything that determines a cell's result apart from ratio and seed: the harness protocol
version, the dataset and the identity of its images (content, not path), the data protocol (size, counts,
corruption), the evaluation settings, the model and its resolved config, and the training-set filter. Timings,
threads, the device, checkpoint intervals, grid sizes and paths are left out: they do not change the numbers.

A plug-in model's settings also hold where it comes from (its module, file sha256 and distribution), so a changed
plug-in is a new cell and a plug-in can never answer for another model's cells.

- ``settings_digest`` = sha256 of the settings: the same method under the same protocol (one line in a report; its
  seeds are averaged, nothing else is).
- ``config_digest`` = sha256 of (settings_digest, ratio, seed): one cell. A rerun reuses a cell only when this matches;
  other settings are another cell, stored beside it (``cells/<dataset>/<model>/r<ratio>/s<seed>/<digest[:12]>/``).
- ``variant``: the non-default settings in a few words (``eta=0.1``, ``filter=pca:0.3``), "" for the profile's
  defaults; reports name a variant's row by it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bench.models import registry
from bench.registries import BUILT_IN
from bench.config import Profile, default_profile

# Bump when the pipeline changes what a cell computes (split assembly, evaluation, sample count): old cells then stop
# matching and are reported as stale instead of being reused.
PROTOCOL_VERSION = 2
EVAL_KEYS_IGNORED = ("feature_batch", "inception_weights")  # batching and a weights path do not change a number


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class CellIdentity:
    settings: dict
    settings_digest: str
    config_digest: str
    variant: str

    @property
    def short(self) -> str:
        return self.config_digest[:12]


def dataset_settings(profile: Profile, dataset: str) -> dict[str, Any]:
    s = profile.data.dataset(dataset)
    values = dataclasses.asdict(s)
    if hasattr(s, "corruption_params"):  # the corruption's full parameters, so defaults and overrides digest alike
        values["params"] = dataclasses.asdict(s.corruption_params())
    return values


def settings_of(
    profile: Profile, dataset: str, model: str, source: str, filter_spec: dict | None = None
) -> dict[str, Any]:
    """Everything that determines a cell's result except ratio and seed (see the module docstring)."""
    model_cfg = registry.get(model).make_config(profile.name, profile.models.get(model))
    ev = {k: v for k, v in dataclasses.asdict(profile.eval).items() if k not in EVAL_KEYS_IGNORED}
    settings = {
        "protocol": PROTOCOL_VERSION,
        "dataset": dataset,
        "source": source,
        "data": {"size": profile.data.size, **dataset_settings(profile, dataset)},
        "eval": ev,
        "model": model,
        "model_config": dataclasses.asdict(model_cfg),
        "filter": filter_spec,
    }
    origin = registry.origin_of(model)
    if origin != BUILT_IN:  # a plug-in's code is part of what it is (built-in code is versioned by the protocol)
        settings["model_origin"] = origin
    return settings


def _leaves(prefix: str, obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_leaves(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: obj}


def _show(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def variant_label(settings: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The settings that differ from the profile's defaults: the model's own fields by name first (``eta=0.1``), then
    the protocol's by full key (``data.size=24``, ``data.facemask.inliers=500``, ``eval.classifier_epochs=5``), then
    the filter."""
    ours, base = _leaves("", settings), _leaves("", defaults)
    model, protocol = [], []
    for key in sorted(ours):
        if ours[key] == base.get(key) or not key.startswith(("model_config.", "data.", "eval.")):
            continue
        if key.startswith("model_config."):
            model.append(f"{key.removeprefix('model_config.')}={_show(ours[key])}")
        elif key.startswith("data.") and key != "data.size":
            protocol.append(f"data.{settings['dataset']}.{key[5:]}={_show(ours[key])}")
        else:
            protocol.append(f"{key}={_show(ours[key])}")
    parts = model + protocol
    if settings.get("filter"):
        parts.append(f"filter={settings['filter']['label']}")
    return ", ".join(parts)


def identify(
    profile: Profile, dataset: str, model: str, ratio: float, seed: int, source: str, filter_spec: dict | None = None
) -> CellIdentity:
    settings = settings_of(profile, dataset, model, source, filter_spec)
    defaults = settings_of(default_profile(profile.name), dataset, model, source, None)
    settings_digest = digest(settings)
    config_digest = digest({"settings": settings_digest, "ratio": float(ratio), "seed": int(seed)})
    return CellIdentity(settings, settings_digest, config_digest, variant_label(settings, defaults))


def external_identity(
    dataset: str, model: str, samples_sha256: str, profile: Profile, ratio: float, seed: int
) -> CellIdentity:
    """An externally generated sample set scored with `bench score --append-to`: its settings are the evaluation
    protocol and the model's name (one report line per name); the samples' hash makes the cell."""
    ev = {k: v for k, v in dataclasses.asdict(profile.eval).items() if k not in EVAL_KEYS_IGNORED}
    settings = {
        "protocol": PROTOCOL_VERSION, "dataset": dataset, "model": model, "external": True,
        "data": {"size": profile.data.size, **dataset_settings(profile, dataset)}, "eval": ev,
    }  # fmt: skip
    settings_digest = digest(settings)
    config_digest = digest({"settings": settings_digest, "ratio": float(ratio), "seed": int(seed),
                            "samples": samples_sha256})  # fmt: skip
    return CellIdentity(settings, settings_digest, config_digest, "external")
