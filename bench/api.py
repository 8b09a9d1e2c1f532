"""The public Python API of robust-gen-bench, and everything a plug-in may import.

Run a grid, score samples made elsewhere, read results, build a split::

    from bench import api
    df = api.run(models="gan,vqvae", datasets="facemask", ratios=[0, 30], profile="demo", out="results/demo")
    row = api.score("my_samples/", dataset="facemask", profile="demo", out="results/demo")
    table = api.load_results("results/demo")

Plug-ins subclass :class:`GenerativeModel` (and return a :class:`FitResult` from ``fit``), register it with
:func:`register_model`; datasets subclass :class:`Dataset` (or :class:`TwoFolderDataset` /
:class:`CorruptedDataset`) with :func:`register_dataset`; corruptions and detectors have their own ``register_*``.
Every function validates its input like the command line does: a bad input is one :class:`BenchError` line.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from bench import filtering, grid, loading, registry, robustness, store
from bench import plugins as _plugins
from bench.cell import anchors, evaluator_for, open_split, refusal
from bench.config import PROFILE_NAMES, Profile, load_profile, to_toml
from bench.datasets import Split, skipped_line
from bench.datasets import registry as dataset_registry
from bench.datasets.corrupted import CorruptedDataset, CorruptedSettings
from bench.datasets.corruptions import register_corruption
from bench.datasets.folder import TwoFolderDataset
from bench.datasets.registry import Dataset, DatasetCounts, PaperValues, PoolPair, register_dataset
from bench.detectors import register_detector
from bench.errors import BenchError
from bench.evaluator import Evaluator, Metrics
from bench.models.base import Checkpointer, FitConfig, FitResult, GenerativeModel, to_float, to_uint8
from bench.progress import LineProgress, Progress, null_progress
from bench.registry import register_model
from bench.store import Cell

__all__ = [
    # run, score, read
    "run", "plan", "score", "load_results", "build_split", "check_model", "reevaluate", "print_config",
    # plug-in surface
    "GenerativeModel", "FitResult", "FitConfig", "Checkpointer", "Progress", "null_progress", "to_float", "to_uint8",
    "register_model", "register_dataset", "register_corruption", "register_detector", "Dataset", "DatasetCounts",
    "TwoFolderDataset", "CorruptedDataset", "CorruptedSettings", "PoolPair", "PaperValues",
    # types
    "BenchError", "Cell", "Evaluator", "Metrics", "Split", "PROFILE_NAMES",
]  # fmt: skip


def _overrides(overrides: dict[str, Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``{"models.rvqvae.eta": 0.1}`` and ``models__rvqvae__eta=0.1`` as one {dotted key: value} dict."""
    items = dict(overrides or {})
    items.update({k.replace("__", "."): v for k, v in kwargs.items()})
    return items


def _list(value: Any, parse) -> list:
    if isinstance(value, str):
        return parse(value)
    return list(value)


def parse_ratios(text: str) -> list[float]:
    """``0,5,10`` or the range form ``0,5,...,30`` -> [0.0, 5.0, ...] (percent)."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        if "..." in parts:
            i = parts.index("...")
            if i < 2 or i != len(parts) - 2:
                raise ValueError
            a, b, end = float(parts[i - 2]), float(parts[i - 1]), float(parts[i + 1])
            step = b - a
            if step <= 0:
                raise ValueError
            head = [float(p) for p in parts[: i - 2]]
            n = int(round((end - a) / step))
            values = head + [a + k * step for k in range(n + 1) if a + k * step <= end + 1e-9]
        else:
            values = [float(p) for p in parts]
    except ValueError:
        raise BenchError(f"bad --ratios '{text}': use percents like 0,5,10 or the range form 0,5,...,30") from None
    return check_ratios(values)


def check_ratios(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            raise BenchError(f"bad outlier ratio {v!r}: ratios are percents in [0, 100), e.g. --ratios 0,10,30")
        if not 0 <= v < 100:
            raise BenchError(f"bad outlier ratio {v:g} in --ratios: must be in [0, 100) percent")
        out.append(float(v))
    if not out:
        raise BenchError("no ratio given: pass --ratios, e.g. --ratios 0,5,...,30")
    return list(dict.fromkeys(out))


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise BenchError(f"bad --seeds '{text}': use non-negative integers like 0 or 0,1,2") from None
    return check_seeds(seeds)


def check_seeds(values: Iterable[Any]) -> list[int]:
    out = []
    for s in values:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**31:
            raise BenchError(f"bad seed {s!r}: seeds are integers in [0, 2^31), e.g. --seeds 0,1,2")
        out.append(int(s))
    if not out:
        raise BenchError("no seed given: pass --seeds 0")
    return list(dict.fromkeys(out))


def parse_data_roots(items: Iterable[str], known: Iterable[str] | None = None) -> dict[str, str]:
    """``NAME=PATH`` items -> {name: path}; names must be registered datasets."""
    roots = {}
    for item in items:
        name, eq, path = item.partition("=")
        if not eq or not name.strip() or not path.strip():
            raise BenchError(f"bad --data-root '{item}': expected NAME=PATH, e.g. --data-root facemask=/data/FaceMaskLite")
        dataset_registry.get(name.strip())
        roots[name.strip()] = path.strip()
    return roots


def _profile(profile: str | None, config: str | Path | None, overrides: dict | None, kwargs: dict) -> Profile:
    return load_profile(profile, config, overrides=_overrides(overrides, kwargs))


def _default_datasets(prof: Profile) -> str:
    """What `bench run` uses without --datasets: the profile's ``run.datasets``, else the datasets registered as its
    defaults."""
    return prof.run.datasets or ",".join(dataset_registry.defaults(prof.name))


def plan(
    models: str | Iterable[str] = "all",
    datasets: str | Iterable[str] | None = None,
    ratios: str | Iterable[float] | None = None,
    seeds: str | Iterable[int] = (0,),
    *,
    profile: str | None = None,
    out: str | Path = "results",
    jobs: int | None = None,
    data_roots: dict[str, str] | None = None,
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    filters: str | Iterable[str] = ("none",),
    plugins: Iterable[str] = (),
    backend: str = "loky",
    scheduler: str | None = None,
    command: str = "",
    check_out: bool = True,
    **sets: Any,
) -> tuple[grid.GridSpec, list[grid.PlannedCell]]:
    """Validate everything a grid needs (before any expensive work) and plan its cells: (spec, planned cells).
    ``datasets``, ``ratios`` and ``jobs`` default to the profile's ``run.datasets`` / ``run.ratios`` / ``run.jobs``."""
    loaded = loading.load_all(list(plugins))
    prof = _profile(profile, config, overrides, sets)
    model_names = registry.resolve(models if isinstance(models, str) else ",".join(models))
    if datasets is None:
        datasets = _default_datasets(prof)
    if ratios is None:
        ratios = prof.run.ratios
    if jobs is None:
        jobs = prof.run.jobs
    ds_names = dataset_registry.resolve(datasets if isinstance(datasets, str) else ",".join(datasets))
    ratio_list = _list(ratios, parse_ratios) if isinstance(ratios, str) else check_ratios(ratios)
    seed_list = _list(seeds, parse_seeds) if isinstance(seeds, str) else check_seeds(seeds)
    filter_texts = [f.strip() for f in (filters.split(",") if isinstance(filters, str) else filters)]
    filter_specs = list({(s.label if s else "none"): s for s in map(filtering.parse, filter_texts)}.values()) or [None]
    roots = dict(data_roots or {})
    for name in roots:
        dataset_registry.get(name)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise BenchError(f"bad jobs={jobs!r}: run at least 1 cell at a time (--jobs 1)")
    if backend not in ("loky", "dask"):
        raise BenchError(f"unknown backend '{backend}': choose loky or dask")
    if scheduler is not None and backend != "dask":
        raise BenchError(f"--scheduler {scheduler} is a Dask scheduler: add --backend dask (or drop --scheduler)")
    check_inception_weights(prof)
    spec = grid.GridSpec(
        prof, Path(out), ds_names, model_names, ratio_list, seed_list, roots, filter_specs, jobs, backend, scheduler,
        [p.ref for p in loaded], command,
    )  # fmt: skip
    planned = grid.plan(spec)  # checks the data roots; reads no images and writes nothing
    if check_out:
        grid.check_writable(Path(out))
    return spec, planned


def check_inception_weights(prof: Profile) -> None:
    """A configured InceptionV3 weights file must exist and be a state dict: checked before any work."""
    from bench.classifiers import features

    path = features.resolve_inception_weights(prof.eval)
    if path is not None and prof.eval.inception_weights:
        features._check_is_state_dict(path)


def run(
    models: str | Iterable[str] = "all",
    datasets: str | Iterable[str] | None = None,
    ratios: str | Iterable[float] | None = None,
    seeds: str | Iterable[int] = (0,),
    *,
    profile: str | None = None,
    out: str | Path = "results",
    jobs: int | None = None,
    progress: Progress | None = None,
    **kwargs: Any,
):
    """Run (or reuse) every cell of models x datasets x ratios x seeds; returns their rows as a pandas DataFrame.

    Keyword arguments are those of :func:`plan` (``data_roots``, ``config``, ``overrides``, ``filters``, ...);
    settings can also be given as ``models__rvqvae__eta=0.1``.
    """
    spec, planned = plan(models, datasets, ratios, seeds, profile=profile, out=out, jobs=jobs, **kwargs)
    grid.run(spec, planned, progress or null_progress)
    return store.frame([row for p in planned if (row := store.done_row(p.job.folder)) is not None])


def print_config(models: str | Iterable[str] = "all", datasets: str | Iterable[str] | None = None, *,
                 profile: str | None = None, config: str | Path | None = None, overrides: dict | None = None,
                 plugins: Iterable[str] = (), **sets: Any) -> str:  # fmt: skip
    """The fully resolved configuration as TOML (feed it back with ``config=``/``--config`` for the same cells)."""
    loading.load_all(list(plugins))
    prof = _profile(profile, config, overrides, sets)
    model_names = registry.resolve(models if isinstance(models, str) else ",".join(models))
    if datasets is None:
        datasets = _default_datasets(prof)
    ds = dataset_registry.resolve(datasets if isinstance(datasets, str) else ",".join(datasets))
    return to_toml(prof, model_names, ds)


def build_split(
    dataset: str, ratio: float, seed: int = 0, *, profile: str | None = None, data_root: str | Path | None = None,
    out: str | Path = "results", config: str | Path | None = None, overrides: dict | None = None,
    progress: Progress = null_progress, **sets: Any,
) -> Split:  # fmt: skip
    """The contaminated split (training images + labels, classifier sets, reference set) of one cell, cached."""
    prof = _profile(profile, config, overrides, sets)
    dataset_registry.get(dataset)
    (ratio,) = check_ratios([ratio])
    (seed,) = check_seeds([seed])
    if data_root is not None:
        open_dataset_checked(prof, dataset, data_root)
    grid.check_writable(Path(out))
    return open_split(prof, dataset, ratio, seed, Path(out), None if data_root is None else str(data_root), progress)


def open_dataset_checked(prof: Profile, dataset: str, data_root: str | Path) -> None:
    from bench.datasets import open_dataset

    open_dataset(dataset, prof.data).check_root(Path(data_root).expanduser())


def score(
    samples: Any, dataset: str, *, profile: str | None = None, seed: int = 0, ratio: float | None = None,
    data_root: str | Path | None = None, out: str | Path = "results", append_to: str | Path | None = None,
    model_name: str | None = None, config: str | Path | None = None, overrides: dict | None = None,
    progress: Progress = null_progress, **sets: Any,
) -> dict[str, Any]:  # fmt: skip
    """Score a sample set made anywhere exactly as a cell is scored (classifier, reference set and features of this
    dataset, profile and seed, cached in ``out``/cache). ``append_to`` adds it to a results folder as an external
    cell named ``model_name`` at ``ratio`` (it then appears in `bench report`)."""
    from bench import samples_io

    prof = _profile(profile, config, overrides, sets)
    dataset_registry.get(dataset)
    (seed,) = check_seeds([seed])
    if append_to is not None:
        if model_name is None or ratio is None:
            raise BenchError("--append-to needs --model-name NAME and --ratio R (the training outlier ratio)")
        if not registry.NAME_PATTERN.match(model_name):
            raise BenchError(f"bad --model-name {model_name!r}: use lower-case letters, digits, - or _")
        if model_name in registry.names():
            raise BenchError(f"--model-name {model_name} is a registered model: pick another name for external samples")
        out = Path(append_to)
        grid.check_writable(out)
    if ratio is not None:
        (ratio,) = check_ratios([ratio])
    if data_root is not None:
        open_dataset_checked(prof, dataset, data_root)
    sample_set = samples_io.read_samples(samples, prof.data.size)
    root = None if data_root is None else str(data_root)
    split = open_split(prof, dataset, 0.0 if ratio is None else ratio, seed, Path(out), root, progress)
    t0 = time.perf_counter()
    evaluator = evaluator_for(prof, split, seed, Path(out), progress)
    evaluator.warm()
    prepared_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics = evaluator.score(sample_set.images).to_dict()
    result: dict[str, Any] = {"dataset": dataset, "profile": prof.name, "seed": seed, "ratio": ratio, **metrics}
    if ratio is not None:
        result.update(anchors(evaluator, split, len(sample_set.images), seed))
        result["robustness"] = robustness.robustness_index(result["pct_inliers"], result["pct_replay"],
                                                           result["pct_replay_inliers"])  # fmt: skip
        result["classifier_f1"] = evaluator.f1_table([ratio])[0]["f1"]
    result["score_s"] = round(time.perf_counter() - t0, 3)
    result["prepare_s"] = round(prepared_s, 3)
    result["notes"] = sample_set.notes + ([skipped_line(split)] if skipped_line(split) else [])
    if append_to is not None:
        result["cell"] = str(_append_external(Path(append_to), prof, split, dataset, model_name, ratio, seed,
                                              sample_set, result))  # fmt: skip
    return result


def _append_external(out: Path, prof: Profile, split: Split, dataset: str, model: str, ratio: float, seed: int,
                     sample_set: Any, result: dict[str, Any]) -> Path:  # fmt: skip
    from bench import atomic, identity, provenance
    from bench.classifiers.features import images_sha256
    from bench.grids import save_grid

    ident = identity.external_identity(dataset, model, images_sha256(sample_set.images), prof, ratio, seed)
    cell = Cell(dataset, model, ratio, seed)
    folder = cell.folder(out, ident.config_digest)
    row = {
        **dataclasses.asdict(cell), "variant": "external", "profile": prof.name, "size": prof.data.size,
        "n_inliers": split.n_inliers, "n_outliers": split.n_outliers, "n_samples": result["n"],
        **{k: result.get(k) for k in ("pct_inliers", "robustness", "pct_replay", "pct_replay_inliers", "fid",
                                      "fid_kind", "fd_classifier", "kid", "precision", "recall")},
        "kind": "external", "commit": provenance.LOADED_COMMIT, "config_digest": ident.config_digest,
        "settings_digest": ident.settings_digest,
    }  # fmt: skip
    with atomic.atomic_path(folder / "samples.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, samples=sample_set.images.numpy())
    save_grid(folder / "samples.png", sample_set.images[: prof.run.grid_samples], nrow=10)
    atomic.write_json(folder / "config.json", {
        "cell": dataclasses.asdict(cell), "config_digest": ident.config_digest, "settings_digest": ident.settings_digest,
        "variant": "external", "settings": ident.settings, "profile": prof.to_dict(), "external": True,
        "samples_source": sample_set.source, "split": split.meta, "provenance": provenance.environment(),
        "plugins": _plugins.provenance(),
    })  # fmt: skip
    atomic.write_json(folder / "metrics.json", {"metrics": result, "row": row})
    atomic.write_json(folder / "done.json", {"row": row})
    store.append_row(out, row)
    return folder


def load_results(out: str | Path = "results"):
    """Every finished cell of a results folder as a DataFrame: the cells' own rows (runs.csv is checked against them),
    joined with provenance from each cell's config.json (command, library versions, data source, filter)."""
    import pandas as pd

    out = Path(out)
    if not out.is_dir():
        raise BenchError(f"results folder not found: {out} (run 'bench run --out {out}' first)")
    loaded = store.load_rows(out, repair=False)
    df = store.frame(loaded.rows)
    extra = []
    for _, r in df.iterrows():
        cfg = _cell_config(out, r)
        prov = cfg.get("provenance", {})
        versions = prov.get("versions", {})
        extra.append({
            "command": prov.get("command"), "torch": versions.get("torch"), "python": versions.get("python"),
            "platform": prov.get("platform"), "device": prov.get("device"),
            "data_source": cfg.get("split", {}).get("source"), "filter": (cfg.get("filter") or {}).get("label"),
            "title": registry.title(r.model),
        })  # fmt: skip
    return pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1) if len(df) else df


def _cell_config(out: Path, r) -> dict:
    cell = Cell(r.dataset, r.model, float(r.ratio), int(r.seed))
    digest = r.config_digest
    folder = cell.base(out) if digest == store.LEGACY_DIGEST else cell.folder(out, digest)
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def reevaluate(cell_dir: str | Path, inception_weights: str | None = None, progress: Progress = null_progress) -> dict:
    """Recompute a finished cell's metrics from its stored samples (no retraining); updates its row everywhere."""
    from bench import atomic

    folder = Path(cell_dir)
    if not folder.is_dir():
        raise BenchError(f"cell folder not found: {folder} (pass OUT/cells/<dataset>/<model>/r<ratio>/s<seed>/<digest>)")
    row = store.done_row(folder)
    if row is None or not (folder / "samples.npz").exists():
        raise BenchError(f"{folder} is not a finished cell (needs done.json and samples.npz; run 'bench run' first)")
    config = _read_json(folder / "config.json", "rerun the cell with 'bench run'")
    old_metrics = _read_json(folder / "metrics.json", "delete the cell folder and rerun it with 'bench run'")
    if "config_digest" not in config and "profile" in config:
        raise BenchError(f"{folder}/config.json was written before cell digests: 'bench eval' cannot rebuild its "
                         f"settings; rerun the cell with 'bench run' (its row still appears in reports)")  # fmt: skip
    missing = [k for k in ("cell", "config_digest", "profile") if k not in config]
    if missing:
        raise BenchError(f"{folder}/config.json lacks '{missing[0]}': rerun the cell with 'bench run'")
    loading.load_all([p["ref"] for p in config.get("plugins", []) if p.get("via") != "entry point"])
    prof = Profile.from_dict(config["profile"])
    if inception_weights is not None:
        if not Path(inception_weights).is_file():
            raise BenchError(f"--inception-weights {inception_weights}: file not found")
        prof.eval.inception_weights = inception_weights
        check_inception_weights(prof)
    try:
        cell = Cell(**config["cell"])
    except TypeError:
        raise BenchError(f"{folder}/config.json has a damaged 'cell' entry: rerun the cell with 'bench run'") from None
    parents = folder.resolve().parents
    out = parents[5] if len(parents) > 5 else folder.resolve()
    if cell.folder(out, config["config_digest"]) != folder.resolve():
        raise BenchError(f"{folder} is not inside its results folder (expected OUT/cells/{cell.key}/"
                         f"{config['config_digest'][:12]}): run bench eval on the cell where bench run wrote it")  # fmt: skip
    samples = _stored_samples(folder / "samples.npz", prof.data.size)
    split = open_split(prof, cell.dataset, cell.ratio, cell.seed, out, config.get("data_root"), progress)
    evaluator = evaluator_for(prof, split, cell.seed, out, progress)
    t0 = time.perf_counter()
    metrics = evaluator.score(samples).to_dict()
    if (folder / "model.pt").exists():
        metrics.update(refusal(evaluator, GenerativeModel.load(folder / "model.pt"), split))
    metrics.update(anchors(evaluator, split, len(samples), cell.seed))
    metrics["robustness"] = robustness.robustness_index(metrics["pct_inliers"], metrics["pct_replay"],
                                                        metrics["pct_replay_inliers"])  # fmt: skip
    keys = ("pct_inliers", "robustness", "pct_replay", "pct_replay_inliers", "fid", "fid_kind", "fd_classifier", "kid",
            "precision", "recall")  # fmt: skip
    row = {**row, **{k: metrics.get(k) for k in keys}, "eval_s": round(time.perf_counter() - t0, 2)}
    atomic.write_json(folder / "metrics.json", {**old_metrics, "metrics": metrics, "row": row})
    atomic.write_json(folder / "done.json", {"row": row})
    store.append_row(out, row)
    return row


def _read_json(path: Path, fix: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path} is missing: {fix}") from None
    except (OSError, ValueError):
        raise BenchError(f"{path} is damaged (not readable JSON): {fix}") from None
    if not isinstance(data, dict):
        raise BenchError(f"{path} is damaged (not a JSON object): {fix}")
    return data


def _stored_samples(path: Path, size: int) -> torch.Tensor:
    from bench import samples_io

    try:
        with np.load(path, allow_pickle=False) as z:
            arr = z["samples"]
    except KeyError:
        raise BenchError(f"{path} has no 'samples' array: rerun the cell with 'bench run' (delete its folder first)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise BenchError(f"{path} is damaged (not a readable .npz): delete the cell folder and rerun it with 'bench run'") from None
    return samples_io.read_samples(arr, size).images


def check_model(name: str, plugins: Iterable[str] = (), progress: Progress = null_progress):
    """Run the model contract on tiny synthetic data (``bench check-model``); returns the checklist."""
    from bench import checkmodel

    loading.load_all(list(plugins))
    return checkmodel.check(name, progress)
