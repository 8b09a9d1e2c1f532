"""Feature spaces for FID/KID/PRC: torch-fidelity's InceptionV3 from a local weights file, or the inlier
classifier's 128-d penultimate layer as the always-available fallback; batched extraction and a content-keyed
cache of reference features.

Offline and pickle-free by construction: the weights file is loaded by us only, and unpickled with
``torch.load(weights_only=True)`` (tensors and plain containers only: a file carrying code is refused with one
line before anything runs). torch-fidelity never sees the file: it would reload it with ``weights_only=False``. It
is built without a weights path, and while it is built its download hook is replaced by one that hands it the
state dict we loaded, so it neither downloads nor unpickles anything. When no weights file is found the caller gets
``None`` and one notice line per process on stderr.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import atomic
from bench.classifiers.inlier_cnn import (
    InlierCNN,
    as_uint8_images,
    classifier_embeddings,
    classifier_fingerprint,
)
from bench.config import EvalConfig
from bench.errors import BenchError

# The file torch-fidelity 0.4.0 downloads (URL_INCEPTION_V3 in feature_extractor_inceptionv3.py) and therefore
# looks up as <torch.hub.get_dir()>/checkpoints/<this name>.
INCEPTION_WEIGHTS_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_NAME = "inception-v3-compat"
INCEPTION_LAYER = "2048"

_inception_cache: dict[tuple, torch.nn.Module] = {}
_file_hash_cache: dict[tuple, str] = {}


@dataclass(frozen=True)
class FeatureSpace:
    """A feature extractor with a stable identity (used in cache keys, never a bare name)."""

    kind: str  # "inception" or "classifier"
    identity: str  # sha256 of the weights that define the space
    extract_batch: Callable[[torch.Tensor], torch.Tensor]  # uint8 N x 3 x H x W -> N x D float
    batch_size: int


# ---------------------------------------------------------------- InceptionV3 weights


def hub_inception_weights_path() -> Path:
    """Where torch-fidelity's download would put the weights: $TORCH_HOME/hub/checkpoints/<file> by default."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILENAME


def resolve_inception_weights(cfg: EvalConfig) -> Path | None:
    """``cfg.inception_weights`` if set (it must exist: a typo should not silently drop FID), else the torch hub
    cache file if present, else None."""
    if cfg.inception_weights:
        path = Path(cfg.inception_weights).expanduser()
        if not path.is_file():
            raise BenchError(
                f"InceptionV3 weights not found at eval.inception_weights={path}: fix the path, or unset it to use "
                f"{hub_inception_weights_path()} (FID is skipped when neither exists)"
            )
        return path
    path = hub_inception_weights_path()
    return path if path.is_file() else None


_NOTICE_ENV = "BENCH_FID_NOTICE_SHOWN"  # inherited by worker processes started after the driver printed it


def missing_weights_notice() -> None:
    """Print, once per run, the one line saying FID is replaced by fd_classifier: the environment variable marks it
    printed for this process and for the worker processes it starts afterwards."""
    if os.environ.get(_NOTICE_ENV):
        return
    os.environ[_NOTICE_ENV] = "1"
    print(
        f"note: no InceptionV3 weights (eval.inception_weights unset, no {hub_inception_weights_path()}): fid is "
        f"None and fd_classifier (Frechet distance in the inlier classifier's features) is reported instead; "
        f"put {INCEPTION_WEIGHTS_FILENAME} there or set eval.inception_weights to get FID",
        file=sys.stderr,
    )


@contextlib.contextmanager
def _weights_from_memory(state: dict[str, torch.Tensor]) -> Iterator[dict[str, Any]]:
    """While torch-fidelity builds InceptionV3 without a weights path, its download hook returns ``state`` (our
    weights_only load of the local file) instead of going online, and torch.hub's own download function raises.
    Yields a record: ``used`` is True once the hook ran, so a torch-fidelity that takes its weights another way is
    refused instead of trusted."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe_module

    record = {"used": False}

    def hand_over(url, *args, **kwargs):
        record["used"] = True
        return state

    def refuse(url, *args, **kwargs):
        raise BenchError(f"refusing to download {url}: InceptionV3 weights must come from a local file")

    originals = fe_module.load_state_dict_from_url, torch.hub.load_state_dict_from_url
    fe_module.load_state_dict_from_url, torch.hub.load_state_dict_from_url = hand_over, refuse
    try:
        yield record
    finally:
        fe_module.load_state_dict_from_url, torch.hub.load_state_dict_from_url = originals


def _bad_weights(path: Path, why: str) -> BenchError:
    return BenchError(
        f"InceptionV3 weights file {path} {why}: replace it with torch-fidelity's {INCEPTION_WEIGHTS_FILENAME} "
        f"(or unset eval.inception_weights / remove the file to fall back to fd_classifier)"
    )


def _stat_key(path: Path) -> tuple:
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


def load_state_dict_safely(path: Path) -> dict[str, torch.Tensor]:
    """The weights file's state dict, unpickled with ``weights_only=True`` (torch >= 2.6, CVE-2025-32434): garbage,
    or a pickle that would run code, fails here with one line and nothing from the file is executed."""
    path = Path(path).resolve()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _bad_weights(path, f"is not a readable PyTorch state dict ({type(e).__name__})") from None
    if (not isinstance(state, dict) or not state
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())):  # fmt: skip
        raise _bad_weights(path, "does not hold a state dict (a mapping of parameter names to tensors)")
    return state


def _check_is_state_dict(path: Path) -> None:
    """A configured weights file is a plain state dict (checked before any work; see ``load_state_dict_safely``)."""
    load_state_dict_safely(path)


def load_inception_extractor(path: Path) -> torch.nn.Module:
    """torch-fidelity's FeatureExtractorInceptionV3 (layer "2048") with the weights of the local file ``path``, which
    only we read (``load_state_dict_safely``); cached per process. A file that is not a state dict, or one for
    another network, raises BenchError."""
    path = Path(path).resolve()
    key = _stat_key(path)
    if key not in _inception_cache:
        state = load_state_dict_safely(path)
        from torch_fidelity import FeatureExtractorInceptionV3

        try:
            with _weights_from_memory(state) as handed:
                extractor = FeatureExtractorInceptionV3(
                    INCEPTION_NAME, [INCEPTION_LAYER], feature_extractor_weights_path=None
                )
        except RuntimeError as e:  # strict load_state_dict: missing/unexpected keys or shape mismatches
            detail = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e))[:160]
            raise _bad_weights(path, f"does not fit torch-fidelity's InceptionV3 ({detail})") from None
        if not handed["used"]:
            raise BenchError(
                "this torch-fidelity version does not load InceptionV3 weights through its download hook, so the "
                "weights we checked cannot be handed to it: install torch-fidelity 0.3 or 0.4"
            )
        _inception_cache.clear()  # keep at most one network (~100 MB) alive
        _inception_cache[key] = extractor.eval()
    return _inception_cache[key]


def file_sha256(path: Path) -> str:
    path = Path(path).resolve()
    key = _stat_key(path)
    if key not in _file_hash_cache:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _file_hash_cache[key] = h.hexdigest()
    return _file_hash_cache[key]


# ---------------------------------------------------------------- feature spaces


def _three_channels(images: torch.Tensor) -> torch.Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def inception_space(cfg: EvalConfig) -> FeatureSpace | None:
    """InceptionV3 pool features (2048-d), or None (after the one-line notice) when no local weights exist."""
    path = resolve_inception_weights(cfg)
    if path is None:
        missing_weights_notice()
        return None
    extractor = load_inception_extractor(path)

    def extract(batch: torch.Tensor) -> torch.Tensor:
        return extractor(_three_channels(batch))[0]

    return FeatureSpace(
        kind="inception",
        identity=f"{INCEPTION_NAME}-{INCEPTION_LAYER}-{file_sha256(path)}",
        extract_batch=extract,
        batch_size=cfg.feature_batch,
    )


def classifier_space(classifier: InlierCNN, cfg: EvalConfig) -> FeatureSpace:
    """The inlier classifier's 128-d penultimate layer: the fallback space, always available offline."""
    return FeatureSpace(
        kind="classifier",
        identity=f"inlier-cnn-embed-{classifier_fingerprint(classifier)}",
        extract_batch=lambda batch: classifier_embeddings(classifier, batch),
        batch_size=max(cfg.feature_batch, 256),
    )


def extract_features(space: FeatureSpace, images_uint8) -> torch.Tensor:
    """N x D float32 CPU features, computed in batches under inference mode."""
    images = as_uint8_images(images_uint8, "images to featurise")
    with torch.inference_mode():
        parts = [
            space.extract_batch(images[i : i + space.batch_size]).float().cpu()
            for i in range(0, len(images), space.batch_size)
        ]
    return torch.cat(parts) if parts else torch.empty(0, 0)


def images_sha256(images_uint8) -> str:
    images = as_uint8_images(images_uint8).contiguous()
    h = hashlib.sha256(json.dumps([str(images.dtype), list(images.shape)]).encode())
    h.update(images.numpy().tobytes())
    return h.hexdigest()


def reference_features(space: FeatureSpace, reference_uint8, cache_dir: Path) -> torch.Tensor:
    """Features of the real reference set, cached under sha256(image content + extractor identity)."""
    key = hashlib.sha256(f"{space.identity}\n{images_sha256(reference_uint8)}".encode()).hexdigest()
    path = Path(cache_dir) / "features" / f"reference-{space.kind}-{key[:24]}.pt"
    blob = atomic.load_keyed(path, key)
    if blob is not None:
        return blob["features"]
    features = extract_features(space, reference_uint8)
    atomic.torch_save(path, {"key": key, "features": features})
    return features
