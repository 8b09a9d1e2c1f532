"""What a user types, validated: outlier ratios, seeds, data roots and a grid's whole selection (models, datasets,
ratios, seeds, filters, data roots, jobs, backend) from the command line, a config file or the API, each bad value
one :class:`~bench.errors.BenchError` line saying how to fix it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench import filtering
from bench.config import Profile
from bench.datasets import registry as dataset_registry
from bench.errors import BenchError
from bench.models import registry


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
            raise BenchError(
                f"bad --data-root '{item}': expected NAME=PATH, e.g. --data-root facemask=/data/FaceMaskLite"
            )
        dataset_registry.get(name.strip())
        roots[name.strip()] = path.strip()
    return roots


def default_datasets(prof: Profile) -> str:
    """What `bench run` uses without --datasets: the profile's ``run.datasets``, else the datasets registered as its
    defaults."""
    return prof.run.datasets or ",".join(dataset_registry.defaults(prof.name))


@dataclasses.dataclass
class Selection:
    """A grid's selection, resolved: the command's options where given, else the profile's ``run.*``."""

    models: list[str]
    datasets: list[str]
    ratios: list[float]
    seeds: list[int]
    filters: list[filtering.FilterSpec | None]
    data_roots: dict[str, str]
    jobs: int
    backend: str


def select(prof: Profile, models: Any, datasets: Any, ratios: Any, seeds: Any, filters: Any,
               data_roots: dict[str, str] | None, jobs: Any, backend: Any) -> Selection:  # fmt: skip
    """Resolve and check the selection; ``prof.run`` then holds it, resolved (names, not ``all``; ratios and seeds
    listed; data roots absolute), so that ``--print-config`` writes exactly what ``plan`` runs. An option given
    (not None) overrides the profile's ``run.*`` (a ``--config`` file's, or the profile's default)."""
    from bench.config import number_text

    run = prof.run
    models = run.models if models is None else models
    model_names = registry.resolve(models if isinstance(models, str) else ",".join(models))
    if datasets is None:
        datasets = default_datasets(prof)
    ds_names = dataset_registry.resolve(datasets if isinstance(datasets, str) else ",".join(datasets))
    ratios = run.ratios if ratios is None else ratios
    ratio_list = parse_ratios(ratios) if isinstance(ratios, str) else check_ratios(ratios)
    seeds = run.seeds if seeds is None else seeds
    seed_list = parse_seeds(seeds) if isinstance(seeds, str) else check_seeds(seeds)
    filters = run.filters if filters is None else filters
    texts = [f.strip() for f in (filters.split(",") if isinstance(filters, str) else filters)] or ["none"]
    chosen: dict[str, tuple[str, filtering.FilterSpec | None]] = {}
    for text in texts:
        spec = filtering.parse(text)
        chosen.setdefault(spec.label if spec else "none", (text or "none", spec))
    explicit = dict(data_roots or {})
    for name in [*explicit, *run.data_roots]:
        dataset_registry.get(name)
    unused = sorted(set(explicit) - set(ds_names))
    if unused:
        raise BenchError(f"--data-root {unused[0]}=... names a dataset this grid does not run (--datasets "
                         f"{','.join(ds_names)}): add it to --datasets or drop the --data-root")  # fmt: skip
    # the config's roots of datasets this grid does not run are left out; a root given here replaces the config's
    roots = {n: r for n, r in run.data_roots.items() if n in ds_names} | explicit
    jobs = run.jobs if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise BenchError(f"bad jobs={jobs!r}: run at least 1 cell at a time (--jobs 1)")
    backend = run.backend if backend is None else backend
    if backend not in ("loky", "dask"):
        raise BenchError(f"unknown backend '{backend}': choose loky or dask")
    prof.run = dataclasses.replace(
        run, models=",".join(model_names), datasets=",".join(ds_names), ratios=",".join(map(number_text, ratio_list)),
        seeds=",".join(map(str, seed_list)), filters=[t for t, _ in chosen.values()], jobs=jobs, backend=backend,
        data_roots={n: str(Path(r).expanduser().absolute()) for n, r in roots.items()},
    )  # fmt: skip
    return Selection(model_names, ds_names, ratio_list, seed_list, [f for _, f in chosen.values()], roots, jobs,
                      backend)  # fmt: skip
