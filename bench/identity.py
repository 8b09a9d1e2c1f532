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
- ``protocol_digest`` = sha256 of what makes two rows comparable: the settings minus the model (``model``,
  ``model_config``, ``model_origin``) and the filter, plus the profile's name (:func:`protocol_settings`): the harness
  protocol version, the dataset, its images' content fingerprint, the data settings and the evaluation settings
  (the held-out classifier and reference set). Rows of different protocol digests never share a table, a figure or
  an average. It is an extra column: the settings and config digests above do not include it (they are unchanged).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bench.config import Profile, default_profile
from bench.models import registry
from bench.registries import BUILT_IN

# Bump when the pipeline changes what a cell computes (split assembly, evaluation, sample count): old cells then stop
# matching and are reported as stale instead of being reused.
PROTOCOL_VERSION = 4  # 4: the classifier that passes validity on every seed (cosine rate, heavier augmentation)
# 3: the validated classifier (bench/validity.py) and the coverage columns
EVAL_KEYS_IGNORED = ("feature_batch", "inception_weights")  # batching and a weights path do not change a number


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class CellIdentity:
    settings: dict
    settings_digest: str
    config_digest: str
    variant: str
    protocol_digest: str = ""

    @property
    def short(self) -> str:
        return self.config_digest[:12]


def dataset_settings(profile: Profile, dataset: str) -> dict[str, Any]:
    s = profile.data.dataset(dataset)
    values = dataclasses.asdict(s)
    if hasattr(s, "corruption_params"):  # the corruption's full parameters, so defaults and overrides digest alike
        values["params"] = dataclasses.asdict(s.corruption_params())
    return values


def _eval_settings(profile: Profile) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(profile.eval).items() if k not in EVAL_KEYS_IGNORED}


PROTOCOL_KEYS = ("protocol", "dataset", "source", "data", "eval")  # the settings that make rows comparable


def protocol_of(settings: dict[str, Any], profile_name: str) -> dict[str, Any]:
    """The protocol part of a cell's ``settings`` (:func:`settings_of`, as written in its config.json), with the
    profile's name: what two rows must share to be compared (see the module docstring)."""
    return {**{k: settings.get(k) for k in PROTOCOL_KEYS}, "profile": profile_name}


def protocol_settings(profile: Profile, dataset: str, source: str) -> dict[str, Any]:
    """The protocol of ``dataset`` under ``profile`` on the images whose content fingerprint is ``source``."""
    return {
        "protocol": PROTOCOL_VERSION,
        "dataset": dataset,
        "source": source,
        "data": {"size": profile.data.size, **dataset_settings(profile, dataset)},
        "eval": _eval_settings(profile),
        "profile": profile.name,
    }


def protocol_digest(profile: Profile, dataset: str, source: str) -> str:
    return digest(protocol_settings(profile, dataset, source))


def settings_of(
    profile: Profile, dataset: str, model: str, source: str, filter_spec: dict | None = None
) -> dict[str, Any]:
    """Everything that determines a cell's result except ratio and seed (see the module docstring)."""
    model_cfg = registry.get(model).make_config(profile.name, profile.models.get(model))
    protocol = protocol_settings(profile, dataset, source)
    settings = {
        **{k: protocol[k] for k in PROTOCOL_KEYS},
        "model": model,
        "model_config": dataclasses.asdict(model_cfg),
        "filter": filter_spec,
    }
    precision = registry.get(model).training_precision(profile.run.precision)
    if precision != "fp32":  # bf16 training is another cell (fp32 cells keep their digests)
        settings["precision"] = precision
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
    if settings.get("precision", "fp32") != defaults.get("precision", "fp32"):
        parts.append(f"precision={settings.get('precision', 'fp32')}")
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
    return CellIdentity(settings, settings_digest, config_digest, variant_label(settings, defaults),
                        digest(protocol_of(settings, profile.name)))  # fmt: skip


def external_identity(
    dataset: str, model: str, samples_sha256: str, profile: Profile, ratio: float, seed: int, source: str = ""
) -> CellIdentity:
    """An externally generated sample set scored with `bench score --append-to`: its settings are the evaluation
    protocol and the model's name (one report line per name); the samples' hash makes the cell. ``source`` (the
    content fingerprint of the data that scored it) goes into its protocol digest only (its settings are unchanged,
    so are its digests)."""
    ev = _eval_settings(profile)
    settings = {
        "protocol": PROTOCOL_VERSION, "dataset": dataset, "model": model, "external": True,
        "data": {"size": profile.data.size, **dataset_settings(profile, dataset)}, "eval": ev,
    }  # fmt: skip
    settings_digest = digest(settings)
    config_digest = digest({"settings": settings_digest, "ratio": float(ratio), "seed": int(seed),
                            "samples": samples_sha256})  # fmt: skip
    return CellIdentity(settings, settings_digest, config_digest, "external", protocol_digest(profile, dataset, source))


def source_id(source: str) -> str:
    """8 hex characters naming a data source's content fingerprint in captions (its first 8 hex digits, or those of
    its sha256 when it does not start with hex)."""
    head = source[:8]
    if len(head) == 8 and all(c in "0123456789abcdef" for c in head):
        return head
    return hashlib.sha256(source.encode()).hexdigest()[:8]


def data_description(dataset: str, source: str, synthetic: bool | None) -> dict[str, Any]:
    """What the report says about the data of one protocol: the dataset, its content fingerprint and whether it is
    the embedded synthetic data. Never a path (a results folder is read on other machines)."""
    return {"dataset": dataset, "source": source, "synthetic": synthetic}


def data_of(profile: Profile, dataset: str, data_root: Any, cache_dir: Any) -> dict[str, Any]:
    """The content fingerprint of the data ``dataset`` is read from (``data_root``, or its embedded synthetic data
    when None), its description and the protocol digest it gives under ``profile`` (``bench score --append-to``)."""
    from pathlib import Path

    from bench.datasets import images, open_dataset

    root = None if data_root is None else Path(data_root).expanduser()
    with images.hash_memo(Path(cache_dir) / "file-hashes.json"):  # the split cache's memo: each file hashed once
        source = open_dataset(dataset, profile.data).source_fingerprint(root)
    return {"source": source, "protocol_digest": protocol_digest(profile, dataset, source),
            "description": data_description(dataset, source, root is None)}  # fmt: skip
