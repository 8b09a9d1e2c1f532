"""The public Python API of robust-gen-bench: the one surface the command line wraps.

Run a grid, score samples made elsewhere, read results, build a split::

    from bench import api
    df = api.run(models="gan,vqvae", datasets="facemask", ratios=[0, 30], profile="demo", out="results/demo")
    row = api.score("my_samples/", dataset="facemask", profile="demo", out="results/demo")
    table = api.load_results("results/demo")

``bench run`` is :func:`plan` + :func:`execute`. Plug-ins import from :mod:`bench.plugin` (the contract: base
classes and ``register_*``); the same names are importable from here too, for code written against earlier versions.
Every function validates its input like the command line does: a bad input is one :class:`BenchError` line.
"""

from __future__ import annotations

import dataclasses
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import grid, loading, precision
from bench import plugins as _plugins
from bench.cell import evaluator_for, open_split
from bench.config import PROFILE_NAMES, Profile, load_profile, to_toml
from bench.datasets import Split, skipped_line
from bench.datasets import registry as dataset_registry
from bench.evaluator import Evaluator, Metrics
from bench.inputs import check_ratios, check_seeds, select
from bench.models import registry
from bench.plugin import (
    BenchError,
    Checkpointer,
    CorruptedDataset,
    CorruptedSettings,
    Dataset,
    DatasetCounts,
    FitConfig,
    FitResult,
    GenerativeModel,
    PaperValues,
    PoolPair,
    Progress,
    TwoFolderDataset,
    null_progress,
    register_corruption,
    register_dataset,
    register_detector,
    register_model,
    to_float,
    to_uint8,
)  # fmt: skip
from bench.progress import LineProgress
from bench.record import Cell, CellRecord
from bench.scoring import Score, score_samples
from bench.store import JsonUnreadable, ResultsStore, frame, read_json

__all__ = [
    # run, score, read
    "run", "plan", "execute", "score", "load_results", "build_split", "check_model", "reevaluate", "print_config",
    # the plug-in contract (bench.plugin), importable from here too
    "GenerativeModel", "FitResult", "FitConfig", "Checkpointer", "Progress", "null_progress", "to_float", "to_uint8",
    "register_model", "register_dataset", "register_corruption", "register_detector", "Dataset", "DatasetCounts",
    "TwoFolderDataset", "CorruptedDataset", "CorruptedSettings", "PoolPair", "PaperValues",
    # types
    "BenchError", "Cell", "CellRecord", "Score", "Evaluator", "Metrics", "Split", "PROFILE_NAMES", "LineProgress",
]  # fmt: skip


def _overrides(overrides: dict[str, Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``{"models.rvqvae.eta": 0.1}`` and ``models__rvqvae__eta=0.1`` as one {dotted key: value} dict."""
    items = dict(overrides or {})
    items.update({k.replace("__", "."): v for k, v in kwargs.items()})
    return items


def _profile(profile: str | None, config: str | Path | None, overrides: dict | None, kwargs: dict) -> Profile:
    return load_profile(profile, config, overrides=_overrides(overrides, kwargs))


def plan(
    models: str | Iterable[str] | None = None,
    datasets: str | Iterable[str] | None = None,
    ratios: str | Iterable[float] | None = None,
    seeds: str | Iterable[int] | None = None,
    *,
    profile: str | None = None,
    out: str | Path = "results",
    jobs: int | None = None,
    data_roots: dict[str, str] | None = None,
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    filters: str | Iterable[str] | None = None,
    plugins: Iterable[str] = (),
    backend: str | None = None,
    scheduler: str | None = None,
    command: str = "",
    check_out: bool = True,
    **sets: Any,
) -> tuple[grid.GridSpec, list[grid.PlannedCell]]:
    """Validate everything a grid needs (before any expensive work) and plan its cells: (spec, planned cells).
    The selection (``models``, ``datasets``, ``ratios``, ``seeds``, ``filters``, ``data_roots``, ``jobs``,
    ``backend``) defaults to the profile's ``run.*`` (a config file's, else the profile's: all models, its default
    datasets, ``run.ratios``, seed 0, unfiltered, embedded data, ``run.jobs``, loky); ``data_roots`` given here
    replace the config's for the same dataset."""
    loaded = loading.load_all(list(plugins))
    prof = _profile(profile, config, overrides, sets)
    sel = select(prof, models, datasets, ratios, seeds, filters, data_roots, jobs, backend)
    if scheduler is not None and sel.backend != "dask":
        raise BenchError(f"--scheduler {scheduler} is a Dask scheduler: add --backend dask (or drop --scheduler)")
    check_inception_weights(prof)
    if sel.backend == "dask" and scheduler is not None and check_out:
        grid.check_scheduler(scheduler)  # an address that does not answer fails before any preparation
    used, why = precision.resolve(prof.run.precision, prof.run.device)
    prof.run.precision = used  # the precision the cells train in: in their digest, variant and config.json
    spec = grid.GridSpec(
        prof, Path(out), sel.datasets, sel.models, sel.ratios, sel.seeds, sel.data_roots, sel.filters, sel.jobs,
        sel.backend, scheduler, [p.ref for p in loaded], command, [f"note: {why}"] if why else [],
    )  # fmt: skip
    planned = grid.plan(spec)  # checks the data roots; reads no images and writes nothing
    if check_out:
        spec.store.check_writable()
    return spec, planned


def check_inception_weights(prof: Profile) -> None:
    """A configured InceptionV3 weights file must exist and be a state dict: checked before any work."""
    from bench.classifiers import features

    path = features.resolve_inception_weights(prof.eval)
    if path is not None and prof.eval.inception_weights:
        features._check_is_state_dict(path)


def run(
    models: str | Iterable[str] | None = None,
    datasets: str | Iterable[str] | None = None,
    ratios: str | Iterable[float] | None = None,
    seeds: str | Iterable[int] | None = None,
    *,
    profile: str | None = None,
    out: str | Path = "results",
    jobs: int | None = None,
    progress: Progress | None = None,
    report: bool = False,
    **kwargs: Any,
):
    """Run (or reuse) every cell of models x datasets x ratios x seeds; returns their rows as a pandas DataFrame
    (and writes ``out``/report when ``report``).

    Keyword arguments are those of :func:`plan` (``data_roots``, ``config``, ``overrides``, ``filters``, ...);
    settings can also be given as ``models__rvqvae__eta=0.1``.
    """
    spec, planned = plan(models, datasets, ratios, seeds, profile=profile, out=out, jobs=jobs, **kwargs)
    return frame(execute(spec, planned, progress or null_progress, report=report).records)


@dataclasses.dataclass
class Outcome:
    """What running a planned grid gave: every planned cell's record (finished now or before) and the report."""

    records: list[CellRecord]
    report_path: Path | None


def execute(spec: grid.GridSpec, planned: list[grid.PlannedCell], progress: Progress = null_progress, *,
            report: bool = True) -> Outcome:  # fmt: skip
    """Run the cells :func:`plan` returned that are not done, then (``report``) write the report when a cell was
    run or none exists yet. ``bench run`` is plan + execute."""
    from bench import progress as progress_mod
    from bench import report as report_mod

    new = grid.run(spec, planned, progress)
    report_path = None
    if report and (new or not (spec.store.report_dir / "report.md").exists()):
        progress_mod.note(progress, "writing the report (tables, Fig. 4, sample grids)")
        report_path = report_mod.write_report(spec.out)
        progress_mod.note(progress, f"report written to {report_path}", phase=None)
    return Outcome([r for p in planned if (r := spec.store.finished(p.job.folder)) is not None], report_path)


def print_config(models: str | Iterable[str] | None = None, datasets: str | Iterable[str] | None = None,
                 ratios: str | Iterable[float] | None = None, seeds: str | Iterable[int] | None = None, *,
                 profile: str | None = None, config: str | Path | None = None, overrides: dict | None = None,
                 filters: str | Iterable[str] | None = None, data_roots: dict[str, str] | None = None,
                 jobs: int | None = None, backend: str | None = None, plugins: Iterable[str] = (),
                 **sets: Any) -> str:  # fmt: skip
    """The fully resolved configuration as TOML, the grid's selection in its ``[run]`` table (models, datasets,
    ratios, seeds, filters, data roots, jobs, backend; the arguments as :func:`plan` takes them): fed back with
    ``config=`` / ``--config``, :func:`plan` gives the same cells (the same digests)."""
    loading.load_all(list(plugins))
    prof = _profile(profile, config, overrides, sets)
    sel = select(prof, models, datasets, ratios, seeds, filters, data_roots, jobs, backend)
    return to_toml(prof, sel.models, sel.datasets)


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
    store = ResultsStore(out)
    store.check_writable()
    return open_split(prof, dataset, ratio, seed, store, None if data_root is None else str(data_root), progress)


def open_dataset_checked(prof: Profile, dataset: str, data_root: str | Path) -> None:
    from bench.datasets import open_dataset

    open_dataset(dataset, prof.data).check_root(Path(data_root).expanduser())


def score(
    samples: Any, dataset: str, *, profile: str | None = None, seed: int = 0, ratio: float | None = None,
    data_root: str | Path | None = None, out: str | Path = "results", append_to: str | Path | None = None,
    model_name: str | None = None, replace: bool = False, config: str | Path | None = None,
    overrides: dict | None = None, progress: Progress = null_progress, **sets: Any,
) -> dict[str, Any]:  # fmt: skip
    """Score a sample set made anywhere exactly as a cell is scored (classifier, reference set and features of this
    dataset, profile and seed, cached in ``out``/cache). ``append_to`` adds it to a results folder as an external
    cell named ``model_name`` at ``ratio`` (it then appears in `bench report`); one sample set per name, ratio and
    seed: a different one needs ``replace=True``."""
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
        ResultsStore(out).check_writable()
    if ratio is not None:
        (ratio,) = check_ratios([ratio])
    if data_root is not None:
        open_dataset_checked(prof, dataset, data_root)
    store = ResultsStore(out)
    data = None
    if append_to is not None:  # the data that scores it: its protocol must be one of the folder's for this dataset
        from bench import identity, report

        data = identity.data_of(prof, dataset, data_root, store.cache_dir)
        report.refuse_incomparable(store, dataset, data["protocol_digest"], data["description"], prof.name)
    sample_set = samples_io.read_samples(samples, prof.data.size)
    root = None if data_root is None else str(data_root)
    split = open_split(prof, dataset, 0.0 if ratio is None else ratio, seed, store, root, progress)
    t0 = time.perf_counter()
    evaluator = evaluator_for(prof, split, seed, store, progress)
    evaluator.warm()
    prepared_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scored = score_samples(evaluator, split, sample_set.images, seed, with_anchors=ratio is not None)
    result: dict[str, Any] = {"dataset": dataset, "profile": prof.name, "seed": seed, "ratio": ratio,
                              **scored.to_dict()}  # fmt: skip
    if ratio is not None:
        result["classifier_f1"] = evaluator.f1_table([ratio])[0]["f1"]
    result["classifier_validity"] = evaluator.validity.summary()
    result["classifier_valid"] = evaluator.validity.passed
    result["score_s"] = round(time.perf_counter() - t0, 3)
    result["prepare_s"] = round(prepared_s, 3)
    result["notes"] = sample_set.notes + ([skipped_line(split)] if skipped_line(split) else [])
    if append_to is not None:
        folder = _append_external(store, prof, split, dataset, model_name, ratio, seed, sample_set, scored, result,
                                  replace, data)  # fmt: skip
        result["cell"] = str(folder)
    return result


def _append_external(store: ResultsStore, prof: Profile, split: Split, dataset: str, model: str, ratio: float,
                     seed: int, sample_set: Any, scored: Score, result: dict[str, Any],
                     replace: bool, data: dict[str, Any]) -> Path:  # fmt: skip
    from bench import identity, provenance
    from bench.classifiers.features import images_sha256

    ident = identity.external_identity(dataset, model, images_sha256(sample_set.images), prof, ratio, seed,
                                       data["source"])  # fmt: skip
    cell = Cell(dataset, model, ratio, seed)
    folder = store.cell_folder(cell, ident.config_digest)
    others = {d: r for d, r in store.finished_variants(cell).items() if d != ident.config_digest}
    if others and not replace:
        raise BenchError(
            f"{store.out} already holds another sample set as {cell.key} (digest "
            f"{next(iter(others))[:12]}): pass --replace to replace it, or another --model-name or --seed"
        )
    for digest in others:
        store.remove_cell(store.cell_folder(cell, digest))
    record = CellRecord(
        **dataclasses.asdict(cell), variant="external", profile=prof.name, size=prof.data.size,
        n_inliers=split.n_inliers, n_outliers=split.n_outliers, n_samples=scored.n, score=scored, kind="external",
        commit=provenance.LOADED_COMMIT, protocol_digest=ident.protocol_digest, config_digest=ident.config_digest,
        settings_digest=ident.settings_digest,
    )  # fmt: skip
    store.begin_cell(folder, {
        "cell": dataclasses.asdict(cell), "config_digest": ident.config_digest, "settings_digest": ident.settings_digest,
        "variant": "external", "settings": ident.settings, "profile": prof.to_dict(), "external": True,
        "protocol": {"digest": ident.protocol_digest, "data": data["description"]},
        "samples_source": sample_set.source, "split": split.meta, "provenance": provenance.environment(),
        "plugins": _plugins.provenance(),
    })  # fmt: skip
    store.write_samples(folder, sample_set.images, prof.run.grid_samples)
    store.finish_cell(folder, record, {"metrics": result})
    store.add_to_index(record)
    return folder


def load_results(out: str | Path = "results"):
    """Every finished cell of a results folder as a DataFrame: the cells' own records (runs.csv is checked against
    them), joined with provenance from each cell's config.json (command, library versions, data source, filter)."""
    import pandas as pd

    store = ResultsStore(out)
    if not store.out.is_dir():
        raise BenchError(f"results folder not found: {out} (run 'bench run --out {out}' first)")
    records = store.load(repair=False).records
    df = frame(records)
    extra = []
    for record in records:
        cfg = store.read_config(record)
        prov = cfg.get("provenance", {})
        versions = prov.get("versions", {})
        extra.append({
            "command": prov.get("command"), "torch": versions.get("torch"), "python": versions.get("python"),
            "platform": prov.get("platform"), "device": prov.get("device"),
            "data_source": cfg.get("split", {}).get("source"), "filter": (cfg.get("filter") or {}).get("label"),
            "title": registry.title(record.model),
        })  # fmt: skip
    return pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1) if len(df) else df


def reevaluate(cell_dir: str | Path, inception_weights: str | None = None, progress: Progress = null_progress,
               plugins: Iterable[str] = ()) -> CellRecord:  # fmt: skip
    """Recompute a finished cell's scores from its stored samples (no retraining); updates its record everywhere.
    A cell made by a plug-in model needs that plug-in in ``plugins`` (what the cell's config.json names is only
    checked against it, never imported)."""
    folder = Path(cell_dir)
    if not folder.is_dir():
        raise BenchError(
            f"cell folder not found: {folder} (pass OUT/cells/<dataset>/<model>/r<ratio>/s<seed>/<digest>)"
        )
    store = ResultsStore.of_cell_folder(folder)
    found = store.read_cell(folder)
    if found is None or not (folder / "samples.npz").exists():
        raise BenchError(f"{folder} is not a finished cell (needs done.json and samples.npz; run 'bench run' first)")
    if not isinstance(found, CellRecord):
        raise BenchError(found.line(store.out).removeprefix("note: "))
    config = _read_json(folder / "config.json", "rerun the cell with 'bench run'")
    old_metrics = _read_json(folder / "metrics.json", "delete the cell folder and rerun it with 'bench run'")
    if "config_digest" not in config and "profile" in config:
        raise BenchError(f"{folder}/config.json was written before cell digests: 'bench eval' cannot rebuild its "
                         f"settings; rerun the cell with 'bench run' (its row still appears in reports)")  # fmt: skip
    missing = [k for k in ("cell", "config_digest", "profile") if k not in config]
    if missing:
        raise BenchError(f"{folder}/config.json lacks '{missing[0]}': rerun the cell with 'bench run'")
    loading.load_all(list(plugins))
    cell = found.cell
    if found.kind != "external":
        _check_model_plugin(cell.model, config, folder)
    prof = Profile.from_dict(config["profile"])
    if inception_weights is not None:
        if not Path(inception_weights).is_file():
            raise BenchError(f"--inception-weights {inception_weights}: file not found")
        prof.eval.inception_weights = inception_weights
        check_inception_weights(prof)
    samples = _stored_samples(folder / "samples.npz", prof.data.size)
    split = open_split(prof, cell.dataset, cell.ratio, cell.seed, store, config.get("data_root"), progress)
    evaluator = evaluator_for(prof, split, cell.seed, store, progress)
    t0 = time.perf_counter()
    model = GenerativeModel.load(folder / "model.pt") if (folder / "model.pt").exists() else None
    scored = score_samples(evaluator, split, samples, cell.seed, model=model)
    timing = dataclasses.replace(found.timing, eval_s=round(time.perf_counter() - t0, 2))
    record = dataclasses.replace(found, score=scored, timing=timing)
    store.finish_cell(
        folder, record, {k: v for k, v in old_metrics.items() if k != "row"} | {"metrics": scored.to_dict()}
    )
    store.add_to_index(record)
    return record


def _check_model_plugin(model: str, config: dict, folder: Path) -> None:
    """The model a cell was made by is registered now, from the same plug-in file it was made with (sha256)."""
    recorded = [p for p in config.get("plugins", []) if isinstance(p, dict)]
    if model not in registry.names():
        refs = ", ".join(str(p.get("ref")) for p in recorded if p.get("ref")) or "its plug-in"
        raise BenchError(f"{folder} was made by model '{model}', which is not registered here: pass its plug-in with "
                         f"--plugin (the cell names {refs}; it is never imported from the results folder)")  # fmt: skip
    origin = registry.origin_of(model)
    if not isinstance(origin, dict):
        return
    current = origin.get("sha256")
    hashes = {p.get("sha256") for p in recorded if p.get("sha256")}
    if current is not None and hashes and current not in hashes:
        raise BenchError(f"the plug-in that registers '{model}' here (sha256 {current[:12]}) differs from the one "
                         f"{folder} was made with (sha256 {', '.join(sorted(h[:12] for h in hashes))}): pass the "
                         f"same file with --plugin")  # fmt: skip


def _read_json(path: Path, fix: str) -> dict:
    try:
        return read_json(path)
    except JsonUnreadable as e:
        why = "missing" if str(e) == "missing" else f"damaged ({e})"
        raise BenchError(f"{path} is {why}: {fix}") from None


def _stored_samples(path: Path, size: int) -> torch.Tensor:
    from bench import samples_io

    try:
        with np.load(path, allow_pickle=False) as z:
            arr = z["samples"]
    except KeyError:
        raise BenchError(
            f"{path} has no 'samples' array: rerun the cell with 'bench run' (delete its folder first)"
        ) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise BenchError(
            f"{path} is damaged (not a readable .npz): delete the cell folder and rerun it with 'bench run'"
        ) from None
    return samples_io.read_samples(arr, size).images


def check_model(name: str, plugins: Iterable[str] = (), progress: Progress = null_progress):
    """Run the model contract on tiny synthetic data (``bench check-model``); returns the checklist."""
    from bench import checkmodel

    loading.load_all(list(plugins))
    return checkmodel.check(name, progress)
