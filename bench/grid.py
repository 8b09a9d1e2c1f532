"""The grid: which cells, in what order, where they run (in process, loky workers or Dask), and the shared work done
once before any worker starts (splits, the classifier, reference features, Table 5, detector tables).

Each cell is identified by its config digest (``bench/identity.py``): a finished cell with the same digest is reused,
a finished cell with other settings is "stale" and stays where it is, beside the new one. Only this process writes
runs.csv, and only for cells finished in this run: a rerun with nothing new to do writes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from bench import detector_table, filtering, identity, registry, store
from bench.cell import CellJob, evaluator_for, open_split, run_cell
from bench.config import Profile
from bench.datasets import open_dataset, skipped_line
from bench.errors import BenchError
from bench.progress import Progress, note, null_progress
from bench.store import Cell


@dataclass
class GridSpec:
    """Everything a grid needs, validated by ``plan`` before any expensive work."""

    profile: Profile
    out: Path
    datasets: list[str]
    models: list[str]
    ratios: list[float]
    seeds: list[int]
    data_roots: dict[str, str | None] = field(default_factory=dict)
    filters: list[filtering.FilterSpec | None] = field(default_factory=lambda: [None])
    jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    plugins: list[str] = field(default_factory=list)
    command: str = ""

    @property
    def cache_dir(self) -> Path:
        return self.out / "cache"


@dataclass
class PlannedCell:
    job: CellJob
    state: str  # "done", "todo" or "stale" (finished with other settings)
    stale_digests: list[str]  # "digest [variant]" of the same cell finished with other settings

    @property
    def cell(self) -> Cell:
        return self.job.cell


def check_writable(out: Path) -> None:
    """The results folder can be created and written (checked before any work)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".bench-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except (OSError, ValueError) as e:
        raise BenchError(f"cannot write results to --out {out}: {e.strerror or e} (pass a writable folder)") from None


def check_pool_sizes(dataset: Any, root: Path, ratio: float) -> None:
    """Enough image files for the profile's counts at the largest ratio (counted, not decoded: unreadable files can
    still make the split fail later, with the count of what was skipped)."""
    from bench.datasets import counts_for

    counts = counts_for(dataset.settings, ratio)
    pools = dataset.open(root, 0, counts.inliers_needed)
    for what, pool, need in (("inlier", pools.inliers, counts.inliers_needed),
                             ("outlier", pools.outliers, counts.outliers_needed)):  # fmt: skip
        if len(pool) < need:
            raise BenchError(
                f"not enough {dataset.name} {what} images in {root}: the profile needs {need} at r = {ratio:g} %, the "
                f"folder has {len(pool)}; use more images, a smaller profile (--profile smoke) or lower counts "
                f"(e.g. --set data.{dataset.name}.inliers=N)"
            )


def plan(spec: GridSpec) -> list[PlannedCell]:
    """Every cell's identity and state. Validates data roots and settings; reads no images."""
    sources = {}
    for ds in spec.datasets:
        root = spec.data_roots.get(ds)
        dataset = open_dataset(ds, spec.profile.data)
        if root is not None:
            dataset.check_root(Path(root).expanduser())
            check_pool_sizes(dataset, Path(root).expanduser(), max(spec.ratios))
        sources[ds] = dataset.source_fingerprint(Path(root).expanduser() if root is not None else None)
    profile_dict = spec.profile.to_dict()
    planned = []
    for ds in spec.datasets:
        for r in spec.ratios:
            for s in spec.seeds:
                for filt in spec.filters:
                    for m in spec.models:
                        if filt is not None and registry.get(m).kind == "reference":
                            continue  # a filter in front of a replay generator is not a method
                        cell = Cell(ds, m, float(r), int(s))
                        ident = identity.identify(spec.profile, ds, m, r, s, sources[ds],
                                                  None if filt is None else filt.to_dict())  # fmt: skip
                        job = CellJob(cell, ident, str(spec.out), profile_dict, spec.data_roots.get(ds),
                                      None if filt is None else filt.to_dict(), list(spec.plugins), spec.jobs,
                                      spec.command)  # fmt: skip
                        variants = store.finished_variants(spec.out, cell)
                        others = [d for d in variants if d != ident.config_digest]
                        state = "done" if ident.config_digest in variants else "stale" if others else "todo"
                        stale = [f"{d[:12]} [{variants[d].get('variant') or 'profile defaults'}]" for d in others]
                        planned.append(PlannedCell(job, state, stale))
    return planned


def dry_run_lines(planned: list[PlannedCell]) -> list[str]:
    lines = []
    for p in planned:
        what = f"{p.job.identity.short}  {p.cell.key}" + (f"  [{p.job.identity.variant}]" if p.job.identity.variant else "")
        extra = f"  (also finished with other settings: {'; '.join(p.stale_digests)})" if p.stale_digests else ""
        lines.append(f"{p.state:5s}  {what}{extra}")
    counts = {s: sum(p.state == s for p in planned) for s in ("done", "todo", "stale")}
    profile = planned[0].job.profile["name"] if planned else "?"
    lines.append(f"{len(planned)} cells (profile {profile}): {counts['done']} done, {counts['todo']} todo, {counts['stale']} stale "
                 f"(stale: only finished with other settings; these settings run as a new cell beside them)")  # fmt: skip
    return lines


def prepare(spec: GridSpec, planned: list[PlannedCell], progress: Progress = null_progress) -> set[tuple]:
    """Build every split, the classifier, reference features and Table 5 once, before any worker starts. Returns
    the (dataset, ratio, seed) splits whose detector table is already written, so no job is sent for them."""
    todo = [p for p in planned if p.state != "done"]
    seen, heldout, tables_written = set(), set(), set()
    for p in todo:
        c = p.cell
        if (c.dataset, c.ratio, c.seed) in seen:
            continue
        seen.add((c.dataset, c.ratio, c.seed))
        note(progress, f"preparing {c.dataset} r={c.ratio:g}% seed {c.seed}: split")
        split = open_split(spec.profile, c.dataset, c.ratio, c.seed, spec.out, spec.data_roots.get(c.dataset), progress)
        line = skipped_line(split)
        if line:
            note(progress, line)
        if detector_table.table_path(spec.out, split).exists():
            tables_written.add((c.dataset, c.ratio, c.seed))
        if (c.dataset, c.seed) not in heldout:
            heldout.add((c.dataset, c.seed))
            note(progress, f"preparing {c.dataset} seed {c.seed}: inlier classifier and reference features")
            evaluator = evaluator_for(spec.profile, split, c.seed, spec.out, progress)
            evaluator.warm()
            write_f1_table(spec.out, spec.profile, split, evaluator)
        for filt in {p.job.filter["label"]: p.job.filter for p in todo if p.job.filter and p.cell.dataset == c.dataset
                     and p.cell.ratio == c.ratio and p.cell.seed == c.seed}.values():  # fmt: skip
            filtering.training_set(split, filtering.FilterSpec.from_dict(filt), c.seed, spec.cache_dir, progress)
    return tables_written


def f1_path(out: Path, split: Any) -> Path:
    return Path(out) / "f1" / f"{split.dataset}_s{split.seed}_{split.heldout_hash[:10]}.csv"


def write_f1_table(out: Path, profile: Profile, split: Any, evaluator: Any) -> None:
    """Table 5 for this dataset, seed and held-out protocol (the same for every ratio, so once per pair)."""
    import pandas as pd

    from bench import atomic

    path = f1_path(out, split)
    if path.exists():
        try:
            if {"ratio", "f1"} <= set(pd.read_csv(path).columns):
                return
        except (OSError, ValueError, pd.errors.ParserError):
            pass  # damaged: written again below
    frame = pd.DataFrame(evaluator.f1_table()).assign(dataset=split.dataset, seed=split.seed, profile=profile.name)
    atomic.write_text(path, frame.to_csv(index=False))


def _clock(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run(
    spec: GridSpec,
    planned: list[PlannedCell],
    progress: Progress = null_progress,
    on_row: Callable[[dict[str, Any]], None] = lambda row: None,
) -> list[dict[str, Any]]:
    """Run every planned cell that is not done; each finished row goes to runs.csv as it arrives."""
    tables_written = prepare(spec, planned, progress)
    todo = [p for p in planned if p.state != "done"]
    rows, t0 = [], time.monotonic()
    for i, row in enumerate(_dispatch(spec, todo, progress, tables_written), start=1):
        store.append_row(spec.out, row)
        rows.append(row)
        elapsed = time.monotonic() - t0
        eta = elapsed / i * (len(todo) - i)
        key = f"{row['dataset']}/{row['model']}/r{float(row['ratio']):g}/s{row['seed']}"
        variant = f" [{row['variant']}]" if row.get("variant") else ""
        took = float(row.get("train_s") or 0) + float(row.get("sample_s") or 0) + float(row.get("eval_s") or 0)
        note(progress, f"cell {i}/{len(todo)} finished: {key}{variant} {row['pct_inliers']:.1f} % inliers, "
                       f"{took / 60:.1f} min; grid elapsed {_clock(elapsed)}, ETA {_clock(eta)}", phase=None)  # fmt: skip
        on_row(row)
    return rows


def table_jobs(spec: GridSpec, todo: list[PlannedCell],
               written: set[tuple] = frozenset()) -> list[detector_table.TableJob]:  # fmt: skip
    """The label-free detectors' table of every contaminated split this run touches, except those ``written``."""
    jobs, seen = [], set(written)
    profile = spec.profile.to_dict()
    for p in todo:
        c = p.cell
        if c.ratio > 0 and (c.dataset, c.ratio, c.seed) not in seen:
            seen.add((c.dataset, c.ratio, c.seed))
            jobs.append(detector_table.TableJob(str(spec.out), profile, c.dataset, c.ratio, c.seed,
                                                spec.data_roots.get(c.dataset), list(spec.plugins), spec.jobs))  # fmt: skip
    return jobs


def run_job(job: Any) -> dict | None:
    """A worker's entry point: a cell (returns its row) or a detector table (returns None)."""
    if isinstance(job, detector_table.TableJob):
        detector_table.run_table_job(job)
        return None
    return run_cell(job)


def _dispatch(spec: GridSpec, todo: list[PlannedCell], progress: Progress,
              tables_written: set[tuple]) -> Iterator[dict]:  # fmt: skip
    for row in _dispatch_jobs(spec, [p.job for p in todo] + table_jobs(spec, todo, tables_written), progress):
        if row is not None:
            yield row


def _dispatch_jobs(spec: GridSpec, jobs: list[Any], progress: Progress) -> Iterator[dict | None]:
    if spec.jobs <= 1 and spec.backend == "loky":
        for job in jobs:
            if isinstance(job, detector_table.TableJob):
                note(progress, job.key)
                yield run_job(job)
                continue
            note(progress, f"cell {job.cell.key}" + (f" [{job.identity.variant}]" if job.identity.variant else ""))
            cell_progress = progress.child(f"{job.cell.key}: ") if hasattr(progress, "child") else progress
            yield run_cell(job, cell_progress)
        return
    if spec.backend == "dask":
        from distributed import Client, as_completed

        # Without a scheduler: a local cluster of worker *processes*, one thread each (cells seed torch's global
        # RNG, so two cells must never share a process at the same time).
        client = Client(spec.scheduler) if spec.scheduler else Client(processes=True, n_workers=spec.jobs,
                                                                       threads_per_worker=1)  # fmt: skip
        try:
            futures = [client.submit(run_job, job, pure=False) for job in jobs]
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.close()
        return
    from joblib import Parallel, delayed

    note(progress, f"{len(jobs)} jobs (cells and detector tables) on {spec.jobs} worker processes; each worker prints "
                   f"its cell's progress", phase=None)  # fmt: skip
    parallel = Parallel(n_jobs=spec.jobs, backend=spec.backend, return_as="generator_unordered")
    yield from parallel(delayed(run_job)(job) for job in jobs)
