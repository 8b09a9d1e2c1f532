"""The grid: which cells, in what order, where they run (in process, loky workers or Dask), and the shared work done
once before any worker starts (splits, the classifier, reference features, Table 5, detector tables).

Each cell is identified by its config digest (``bench/identity.py``): a finished cell with the same digest is reused,
a finished cell with other settings is "stale" and stays where it is, beside the new one. Only this process writes
runs.csv, and only for cells finished in this run: a rerun with nothing new to do writes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from bench import claims, detector_table, filtering, identity
from bench.cell import CellJob, evaluator_for, open_split, run_cell
from bench.config import Profile
from bench.datasets import open_dataset, skipped_line
from bench.errors import BenchError
from bench.models import registry
from bench.progress import LineProgress, Progress, note, null_progress
from bench.record import Cell, CellRecord
from bench.store import ResultsStore


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
    notes: list[str] = field(
        default_factory=list
    )  # one line each, said before the grid runs (e.g. a precision fallback)

    @property
    def store(self) -> ResultsStore:
        return ResultsStore(self.out)


@dataclass
class PlannedCell:
    job: CellJob
    state: str  # "done", "todo" or "stale" (finished with other settings)
    stale_digests: list[str]  # "digest [variant]" of the same cell finished with other settings

    @property
    def cell(self) -> Cell:
        return self.job.cell


def check_pool_sizes(dataset: Any, root: Path, ratio: float) -> None:
    """Enough image files for the profile's counts at the largest ratio (counted, not decoded: unreadable files can
    still make the split fail later, with the count of what was skipped). Too few: one line with what each count
    takes and ``--set`` values that fit the folder (every count scaled down by one factor)."""
    from bench.config import COUNT_KEYS, MIN_COUNTS, fitting_counts, image_needs
    from bench.datasets import counts_for

    s, name = dataset.settings, dataset.name
    counts = counts_for(s, ratio)
    pools = dataset.open(root, 0, counts.inliers_needed)
    have_in, have_out = len(pools.inliers), len(pools.outliers)
    short = [w for w, have, need in (("inlier", have_in, counts.inliers_needed),
                                     ("outlier", have_out, counts.outliers_needed)) if have < need]  # fmt: skip
    if not short:
        return
    has = "each half of the folder has" if hasattr(s, "pool_per_half") else "the folder has"  # corrupted: halves
    held = " + ".join(f"{getattr(s, k)} {k}" for k in COUNT_KEYS[1:3])
    needs = (f"at r = {ratio:g} % the profile needs {' + '.join(f'{getattr(s, k)} {k}' for k in COUNT_KEYS)} = "
             f"{counts.inliers_needed} inlier images ({has} {have_in}) and {held} + {counts.train_outliers} training "
             f"outliers = {counts.outliers_needed} outlier images ({has} {have_out})")  # fmt: skip
    fit = fitting_counts(s, ratio, have_in, have_out)
    if fit is None:
        smallest = {k: min(getattr(s, k), MIN_COUNTS[k]) for k in COUNT_KEYS}
        least = image_needs(smallest, ratio)
        listed = ", ".join(f"{k}={v}" for k, v in smallest.items())
        fix = (f"the folder is too small even for the smallest counts ({listed}: {least[0]} inlier and {least[1]} "
               f"outlier images): add images")  # fmt: skip
    else:
        scaled, factor = fit
        sets = " ".join(f"--set data.{name}.{k}={v}" for k, v in scaled.items())
        fix = f"counts that fit the folder: {sets} (every count x {factor:.2f}, rounded down); or add images" + (
            ", or lower the largest --ratios" if "outlier" in short else ""
        )
    raise BenchError(f"not enough {name} {' and '.join(short)} images in {root}: {needs}; {fix}")


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
                        if filt is not None and filt.capacity_control and r == 0:
                            continue  # no training outliers to train the control on
                        if filt is not None and filt.self_trim and not registry.get(m).cls.scores_training_images():
                            raise BenchError(f"--filter {filt.label} refits the model by its own score, and model "
                                             f"'{m}' has none (training_scores): drop it from --models or put it "
                                             f"behind a detector, e.g. --filter mcd:auto")  # fmt: skip
                        cell = Cell(ds, m, float(r), int(s))
                        ident = identity.identify(spec.profile, ds, m, r, s, sources[ds],
                                                  None if filt is None else filt.to_dict())  # fmt: skip
                        job = CellJob(cell, ident, str(spec.out), profile_dict, spec.data_roots.get(ds),
                                      None if filt is None else filt.to_dict(), list(spec.plugins), spec.jobs,
                                      spec.command)  # fmt: skip
                        variants = spec.store.finished_variants(cell)
                        others = [d for d in variants if d != ident.config_digest]
                        state = "done" if ident.config_digest in variants else "stale" if others else "todo"
                        stale = [f"{d[:12]} [{variants[d].variant or 'profile defaults'}]" for d in others]
                        planned.append(PlannedCell(job, state, stale))
    return planned


def dry_run_lines(planned: list[PlannedCell]) -> list[str]:
    lines = []
    for p in planned:
        what = f"{p.job.identity.short}  {p.cell.key}" + (
            f"  [{p.job.identity.variant}]" if p.job.identity.variant else ""
        )
        extra = f"  (also finished with other settings: {'; '.join(p.stale_digests)})" if p.stale_digests else ""
        lines.append(f"{p.state:5s}  {what}{extra}")
    counts = {s: sum(p.state == s for p in planned) for s in ("done", "todo", "stale")}
    profile = planned[0].job.profile["name"] if planned else "?"
    precision = planned[0].job.profile["run"].get("precision", "fp32") if planned else "fp32"
    lines.append(f"{len(planned)} cells (profile {profile}, training in {precision}): {counts['done']} done, {counts['todo']} todo, {counts['stale']} stale "
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
        split = open_split(
            spec.profile, c.dataset, c.ratio, c.seed, spec.store, spec.data_roots.get(c.dataset), progress
        )
        line = skipped_line(split)
        if line:
            note(progress, line)
        if spec.store.detector_table(split).exists():
            tables_written.add((c.dataset, c.ratio, c.seed))
        if (c.dataset, c.seed) not in heldout:
            heldout.add((c.dataset, c.seed))
            note(progress, f"preparing {c.dataset} seed {c.seed}: inlier classifier and reference features")
            evaluator = evaluator_for(spec.profile, split, c.seed, spec.store, progress)
            evaluator.warm()
            write_f1_table(spec.store, spec.profile, split, evaluator, p.job.identity.protocol_digest)
            write_validity_table(spec.store, spec.profile, split, evaluator, p.job.identity.protocol_digest)
            note(progress, f"{c.dataset} seed {c.seed}: {evaluator.validity.summary()}")
        for filt in {p.job.filter["label"]: p.job.filter for p in todo if p.job.filter and p.cell.dataset == c.dataset
                     and p.cell.ratio == c.ratio and p.cell.seed == c.seed}.values():  # fmt: skip
            filt_spec = filtering.FilterSpec.from_dict(filt)
            if filt_spec is not None and not filt_spec.self_trim:  # self-trim fits the cell's model: in the cell
                filtering.training_set(split, filt_spec, c.seed, spec.store.cache_dir, progress)
    return tables_written


def write_f1_table(store: ResultsStore, profile: Profile, split: Any, evaluator: Any, protocol: str = "") -> None:
    """Table 5 for this dataset, seed and held-out protocol (the same for every ratio, so once per pair)."""
    _write_heldout_rows(store, store.f1_table(split), evaluator.f1_table(), profile, split, protocol, ("ratio", "f1"))


def write_validity_table(store: ResultsStore, profile: Profile, split: Any, evaluator: Any, protocol: str = "") -> None:
    """The classifier's validity check (``bench/validity.py``) for this dataset, seed and held-out protocol."""
    _write_heldout_rows(store, store.validity_table(split), evaluator.validity.to_records(), profile, split, protocol,
                        ("degradation", "passed"))  # fmt: skip


def _write_heldout_rows(store: ResultsStore, path: Path, records: list[dict], profile: Profile, split: Any,
                        protocol: str, needed: tuple[str, ...]) -> None:  # fmt: skip
    """Rows of one held-out protocol into its file. Each row carries the cells' protocol digest (``protocol``,
    bench/identity.py) so the report never averages the rows of different data or classifiers; the file (one per
    held-out split) keeps the rows of other protocols that share its held-out images, and rows written before
    protocol digests are replaced."""
    import pandas as pd

    keep = None
    if path.exists():
        try:
            exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}  # kept rows
            current = pd.read_csv(path, dtype={"protocol": str}, **exact)
        except (OSError, ValueError, pd.errors.ParserError):
            current = None  # damaged: written again below
        if current is not None and set(needed) <= set(current.columns):
            if "protocol" not in current.columns:
                if not protocol:
                    return  # neither knows its protocol: as before
            elif (current.protocol.fillna("") == protocol).any():
                return
            else:
                keep = current
    rows = pd.DataFrame(records).assign(dataset=split.dataset, seed=split.seed, profile=profile.name, protocol=protocol)
    store.write_table(path, rows if keep is None else pd.concat([keep, rows], ignore_index=True))


def _clock(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run(
    spec: GridSpec,
    planned: list[PlannedCell],
    progress: Progress = null_progress,
    on_record: Callable[[CellRecord], None] = lambda record: None,
) -> list[CellRecord]:
    """Run every planned cell that is not done; each finished cell goes to runs.csv as it arrives."""
    tables_written = prepare(spec, planned, progress)
    done = [r for p in planned if p.state == "done" and (r := spec.store.finished(p.job.folder)) is not None]
    spec.store.add_to_index(*done)  # a cell finished after a killed driver's last index write gets its line now
    todo = [p for p in planned if p.state != "done"]
    records, t0 = [], time.monotonic()
    for i, record in enumerate(_dispatch(spec, todo, progress, tables_written), start=1):
        spec.store.add_to_index(record)
        records.append(record)
        elapsed = time.monotonic() - t0
        eta = elapsed / i * (len(todo) - i)
        variant = f" [{record.variant}]" if record.variant else ""
        t = record.timing
        took = (t.train_s or 0) + (t.sample_s or 0) + (t.eval_s or 0)
        note(progress, f"cell {i}/{len(todo)} finished: {record.cell.key}{variant} {record.score.pct_inliers:.1f} % "
                       f"inliers, {took / 60:.1f} min; grid elapsed {_clock(elapsed)}, ETA {_clock(eta)}", phase=None)  # fmt: skip
        on_record(record)
    return records


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


def run_job(job: Any) -> CellRecord | None:
    """A worker's entry point: a cell (returns its record) or a detector table (returns None)."""
    if isinstance(job, detector_table.TableJob):
        detector_table.run_table_job(job)
        return None
    return run_cell(job)


def _dispatch(spec: GridSpec, todo: list[PlannedCell], progress: Progress,
              tables_written: set[tuple]) -> Iterator[CellRecord]:  # fmt: skip
    for record in _dispatch_jobs(spec, [p.job for p in todo] + table_jobs(spec, todo, tables_written), progress):
        if record is not None:
            yield record


def _dispatch_jobs(spec: GridSpec, jobs: list[Any], progress: Progress) -> Iterator[CellRecord | None]:
    """Run ``jobs`` on the spec's backend; yield each cell's record (None for a detector table) as it finishes.

    Every cell is run under its claim (``bench/claims.py``): a cell another bench run on the same ``--out`` is
    computing is left to it, and waited for at the end (its record is yielded when its done.json appears); if that
    run's claim goes stale first, the cell is run here."""
    owner = claims.Owner.this_run()
    client = _dask_client(spec, progress) if spec.backend == "dask" else None
    try:
        pending = list(jobs)
        while pending:
            deferred = []
            for result in _dispatch_round(spec, pending, progress, owner, client):
                if isinstance(result, ClaimedElsewhere):
                    note(progress, f"cell {result.job.cell.key}: {result.busy.line()}: left to that run, waited for "
                                   f"after the other cells", phase=None)  # fmt: skip
                    deferred.append(result.job)
                else:
                    yield result
            pending = []
            yield from _wait_for_other_runs(spec, deferred, progress, owner, pending)
    finally:
        if client is not None:
            _close(client)


# ---------------------------------------------------------------------------------------------- dispatch helpers

WAIT_POLL_S = 2.0  # how often a driver looks at the cells other bench runs hold
DASK_CONNECT_TIMEOUT_S = 10  # how long `--scheduler ADDRESS` may take to answer
PROGRESS_TOPIC = "bench-progress"  # Dask event topic: a worker's cell lines, printed by the driver


@dataclass(frozen=True)
class ClaimedElsewhere:
    """A worker's answer for a cell that another bench run holds the claim of."""

    job: CellJob
    busy: claims.Busy


def run_claimed(job: Any, owner: claims.Owner | None,
                progress: Progress | None = None) -> CellRecord | ClaimedElsewhere | None:  # fmt: skip
    """A worker's entry point: a detector table (None), or a cell under its claim: its record, or ClaimedElsewhere
    when another bench run holds the cell. The claim goes when the cell ends, finished or failed."""
    if isinstance(job, detector_table.TableJob):
        return run_job(job)
    if owner is None:
        return run_cell(job, progress)
    finished = job.store.finished(job.folder)
    if finished is not None:
        return finished
    got = claims.take(job.folder, owner)
    if isinstance(got, claims.Busy):
        return ClaimedElsewhere(job, got)
    with got:
        return run_cell(job, progress)


def _dispatch_round(spec: GridSpec, jobs: list[Any], progress: Progress, owner: claims.Owner,
                    client: Any) -> Iterator[Any]:  # fmt: skip
    if client is not None:
        yield from _dask_round(client, spec, jobs, progress, owner)
        return
    if spec.jobs <= 1:
        for job in jobs:
            if isinstance(job, detector_table.TableJob):
                note(progress, job.key)
                yield run_job(job)
                continue
            note(progress, f"cell {job.cell.key}" + (f" [{job.identity.variant}]" if job.identity.variant else ""))
            cell_progress = progress.child(f"{job.cell.key}: ") if hasattr(progress, "child") else progress
            yield run_claimed(job, owner, cell_progress)
        return
    from joblib import Parallel, delayed

    note(progress, f"{len(jobs)} jobs (cells and detector tables) on {spec.jobs} worker processes; each worker prints "
                   f"its cell's progress", phase=None)  # fmt: skip
    parallel = Parallel(n_jobs=spec.jobs, backend=spec.backend, return_as="generator_unordered")
    yield from parallel(delayed(run_claimed)(job, owner) for job in jobs)


def _wait_for_other_runs(spec: GridSpec, deferred: list[CellJob], progress: Progress, owner: claims.Owner,
                         again: list[CellJob]) -> Iterator[CellRecord]:  # fmt: skip
    """Yield the record of each deferred cell when the run holding it finishes it; put in ``again`` those whose claim
    went stale (that run died) without a done.json."""
    if not deferred:
        return
    note(progress, f"waiting for {len(deferred)} cell(s) that other bench runs on {spec.out} are computing")
    waiting = list(deferred)
    while waiting:
        still = []
        for job in waiting:
            record = job.store.finished(job.folder)
            if record is not None:
                yield record
            elif claims.holder(job.folder, owner) is None:
                note(progress, f"cell {job.cell.key}: the other run's claim is gone without a result: running it here",
                     phase=None)  # fmt: skip
                again.append(job)
            else:
                still.append(job)
        waiting = still
        if waiting:
            time.sleep(WAIT_POLL_S)


def dask_resources(job: Any) -> dict[str, int] | None:
    """The Dask worker resources a job needs on a cluster: a cell whose profile trains on CUDA takes one ``GPU``
    (workers started with ``--resources GPU=1`` run one such cell at a time); anything else needs none."""
    if isinstance(job, CellJob) and str(job.profile.get("run", {}).get("device", "cpu")).startswith("cuda"):
        return {"GPU": 1}
    return None


def connect_scheduler(address: str, timeout: float = DASK_CONNECT_TIMEOUT_S) -> Any:
    """A Dask client of the scheduler at ``address``, or a BenchError naming it when it does not answer in time."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BenchError(f"cannot reach the Dask scheduler at {address} ({why}): start one ('dask scheduler') with "
                         f"its workers ('dask worker {address}') and pass the address it prints, e.g. --scheduler "
                         f"tcp://HOST:8786, or drop --scheduler for a local cluster") from None  # fmt: skip


def check_scheduler(address: str) -> None:
    """Fail fast, before any preparation, when ``--scheduler ADDRESS`` does not answer (a BenchError naming it)."""
    _close(connect_scheduler(address))


def _dask_client(spec: GridSpec, progress: Progress) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise BenchError("--backend dask needs Dask's distributed package: pip install -e '.[dask]'") from None
    if spec.scheduler:
        client = connect_scheduler(spec.scheduler)
    else:
        # A local cluster of worker *processes*, one thread each (cells seed torch's global RNG, so two cells must
        # never share a process at the same time).
        client = Client(processes=True, n_workers=spec.jobs, threads_per_worker=1, set_as_default=False)
    client.subscribe_topic(PROGRESS_TOPIC, lambda event: note(progress, str(event[1]), phase=None))
    # A lost scheduler is said in one line (_dask_result); the client's own log would add tracebacks.
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    return client


def _close(client: Any) -> None:
    try:
        client.close(timeout=5)
    except Exception:  # a scheduler already gone: nothing left to release
        pass
    logging.getLogger("distributed.client").setLevel(logging.NOTSET)


def _for_workers(job: Any) -> Any:
    """The job with the paths a worker opens (--out, the data root, --plugin files) made absolute: a Dask worker's
    working directory is its own, not the driver's. The cell is the same (its identity was computed here)."""
    import dataclasses
    import os

    def absolute(path: str | None) -> str | None:
        return None if path is None else os.path.abspath(os.path.expanduser(path))

    plugins = [absolute(r) if (r.endswith(".py") or "/" in r) and os.path.exists(os.path.expanduser(r)) else r
               for r in job.plugins]  # fmt: skip
    return dataclasses.replace(job, out=absolute(job.out), data_root=absolute(job.data_root), plugins=plugins)


def _task_key(job: Any) -> str:
    import uuid

    what = job.key if isinstance(job, detector_table.TableJob) else f"cell {job.cell.key} {job.identity.short}"
    return f"bench {what} {uuid.uuid4().hex[:8]}"


def _dask_round(client: Any, spec: GridSpec, jobs: list[Any], progress: Progress,
                owner: claims.Owner) -> Iterator[Any]:  # fmt: skip
    from distributed import as_completed

    external = bool(spec.scheduler)  # a local cluster's workers have no resources: nothing is asked of them
    workers = client.scheduler_info().get("workers", {})
    where = f"the Dask scheduler {spec.scheduler}" if external else "a local Dask cluster"
    note(progress, f"{len(jobs)} jobs (cells and detector tables) on {where} ({len(workers)} worker(s) now); the "
                   f"workers' cell lines are shown here", phase=None)  # fmt: skip
    n_gpu = sum(dask_resources(job) is not None for job in jobs) if external else 0
    if n_gpu and not any((w.get("resources") or {}).get("GPU") for w in workers.values()):
        note(progress, f"no Dask worker offers the GPU resource yet: the {n_gpu} cuda cell(s) wait until one joins "
                       f"(start workers with --resources GPU=1)", phase=None)  # fmt: skip
    futures = {client.submit(_dask_run, _for_workers(job), owner, key=_task_key(job),
                             resources=dask_resources(job) if external else None): job for job in jobs}  # fmt: skip
    try:
        for fut in as_completed(futures, loop=client.loop):
            yield _dask_result(client, fut, futures[fut], spec)
    finally:
        try:
            client.cancel([f for f in futures if not f.done()])
        except Exception:
            pass


def _dask_result(client: Any, fut: Any, job: Any, spec: GridSpec) -> Any:
    from distributed import KilledWorker

    what = job.key if isinstance(job, detector_table.TableJob) else f"cell {job.cell.key}"
    try:
        return fut.result()
    except BenchError:
        raise
    except KilledWorker:
        raise BenchError(f"{what}: every Dask worker that ran it died (out of memory? see the workers' logs); "
                         f"finished cells are kept: rerun the same command to continue") from None  # fmt: skip
    except Exception as e:
        if getattr(client, "status", "running") == "running" and not _scheduler_lost(e):
            raise
        address = spec.scheduler or "of the local cluster"
        raise BenchError(f"lost the Dask scheduler {address} while running {what} ({type(e).__name__}): finished "
                         f"cells are kept; restart the scheduler and its workers, then rerun the same command"
                         ) from None  # fmt: skip


def _scheduler_lost(e: BaseException) -> bool:
    from distributed.comm.core import CommClosedError

    return isinstance(e, (CommClosedError, OSError, TimeoutError)) or "scheduler" in str(e).lower()


def _dask_run(job: Any, owner: claims.Owner) -> Any:
    """On a Dask worker: the job, with the cell's lines on the worker's stderr and sent to the driver."""
    return run_claimed(job, owner, _forwarding_progress(job))


def _forwarding_progress(job: Any) -> Progress | None:
    if isinstance(job, detector_table.TableJob):
        return None
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    host = str(worker.address).split("://")[-1]
    return LineProgress(f"{job.cell.key} [{host}]: ", every_s=15.0, stream=_ToDriver(worker))


class _ToDriver:
    """A text stream for a worker's LineProgress: each line goes to the worker's stderr and, as a Dask event, to the
    driver (without the worker's clock: the driver prints it with its own)."""

    def __init__(self, worker: Any):
        self.worker, self.buffer = worker, ""

    def write(self, text: str) -> int:
        import re
        import sys

        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            print(line, file=sys.stderr, flush=True)
            try:
                self.worker.log_event(PROGRESS_TOPIC, re.sub(r"^\[[\d:]+\] ", "", line))
            except Exception:
                pass  # the line is in the worker's log all the same
        return len(text)

    def flush(self) -> None:
        pass
