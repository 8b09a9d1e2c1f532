"""Command line: ``bench run | report | eval | score | check-model | data build | models | datasets``, a thin layer
over :mod:`bench.api`.

Bad input prints one line (``error: what, where, how to fix``) and exits with status 2, no traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bench.config import PROFILE_NAMES
from bench.errors import BenchError
from bench.progress import status_line

_profile_options = [
    click.option(
        "--profile", default=None, help=f"one of {', '.join(PROFILE_NAMES)} (default: the config file's, else cpu)"
    ),
    click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file overriding the profile"),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override one setting, e.g. data.size=32"),
]
_plugin_option = click.option("--plugin", "plugin_refs", multiple=True, metavar="MODULE_OR_FILE.py",
                              help="import a plug-in (models, datasets, ...) first; also BENCH_PLUGINS=a,b")  # fmt: skip


def profile_options(f):
    for opt in reversed(_profile_options):
        f = opt(f)
    return f


def _alias_datasets() -> list[str]:
    """The paper's datasets get --data-root-NAME aliases of --data-root NAME=PATH."""
    from bench.datasets import registry

    return registry.defaults()


def data_root_options(f):
    for name in reversed(_alias_datasets()):
        f = click.option(f"--data-root-{name}", f"data_root_alias_{name.replace('-', '_')}", default=None,
                         metavar="PATH", help=f"same as --data-root {name}=PATH")(f)  # fmt: skip
    return click.option("--data-root", "data_roots", multiple=True, metavar="NAME=PATH",
                        help="a dataset's folder (default: its embedded synthetic data); repeatable")(f)  # fmt: skip


def collect_roots(data_roots: tuple[str, ...], kwargs: dict) -> dict[str, str]:
    from bench import inputs

    roots = inputs.parse_data_roots(data_roots)
    for name in _alias_datasets():
        value = kwargs.pop(f"data_root_alias_{name.replace('-', '_')}", None)
        if value is not None:
            if name in roots and roots[name] != value:
                raise BenchError(f"--data-root-{name} and --data-root {name}=... disagree: give one of them")
            roots[name] = value
    return roots


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """robust-gen-bench: does a generative model still generate clean data when its training set is contaminated?"""
    status_line.stop()  # the launcher's start-up line ends here; `bench run` starts its own for planning


@cli.command()
@_plugin_option
def models(plugin_refs) -> None:
    """List the registered models (and where each comes from)."""
    from bench import loading, plugins
    from bench.models import registry

    loading.load_all(list(plugin_refs))
    for name in registry.names():
        spec = registry.get(name)
        tags = [spec.kind] + (["oracle"] if spec.oracle else []) + [plugins.origin(spec.module)]
        click.echo(f"{name:15s} {spec.title:24s} [{', '.join(tags)}] {spec.description}")


@cli.command()
@click.option("--ratio", default=30.0, show_default=True, type=float, help="outlier ratio (percent) of the needs")
@profile_options
@_plugin_option
def datasets(ratio, profile, config_file, sets, plugin_refs) -> None:
    """List the registered datasets (with each profile's image needs), corruptions, outlier detectors and filters.

    Without --profile, --config or --set: every profile's needs; with them: the resolved profile's."""
    from bench import detectors, inputs, loading, plugins
    from bench.config import load_profile
    from bench.datasets import corruptions, registry

    loading.load_all(list(plugin_refs))
    (ratio,) = inputs.check_ratios([ratio])
    chosen = profile is not None or config_file is not None or sets
    profiles = [load_profile(profile, config_file, sets)] if chosen else [load_profile(p) for p in PROFILE_NAMES]
    for name in registry.names():
        spec = registry.get(name)
        everywhere = set(spec.default) == set(PROFILE_NAMES)
        default = ", default" if everywhere else f", default in {'/'.join(spec.default)}" if spec.default else ""
        click.echo(f"dataset    {name:12s} {spec.title} [{plugins.origin(spec.module)}{default}] {spec.description}")
        click.echo(
            f"             image needs (set a count with --set data.{name}.<key>=N), outliers at r = {ratio:g} %:"
        )
        for prof in profiles:
            click.echo(f"             {prof.name:6s}  {_image_needs(prof.data.dataset(name), ratio)}")
    for kind, listed in (("corruption", corruptions), ("detector", detectors)):
        for name in listed.names():
            spec = listed.get(name)
            click.echo(f"{kind:10s} {name:12s} [{plugins.origin(spec.fn.__module__)}] {spec.description}")
    click.echo("filters    --filter DETECTOR:FRACTION or DETECTOR:auto (the share estimated), self-trim:FRACTION|auto "
               "(the model's own score, refitted), outliers-only (the capacity control), none")  # fmt: skip


def _image_needs(settings, ratio: float) -> str:
    """One profile's needs of one dataset, each count under its ``data.<dataset>.<key>`` (the count error's words)."""
    from bench.config import COUNT_KEYS
    from bench.datasets import counts_for

    c = counts_for(settings, ratio)
    held = " + ".join(str(getattr(settings, k)) for k in COUNT_KEYS[1:3])
    line = (f"{c.inliers_needed:,} inlier images = {' + '.join(f'{getattr(settings, k)} {k}' for k in COUNT_KEYS)}; "
            f"{c.outliers_needed:,} outlier images = {held} + {c.train_outliers} training outliers")  # fmt: skip
    if hasattr(settings, "pool_per_half"):  # one folder cut in two halves: each half holds one of the two needs
        folder = 2 * max(c.inliers_needed, c.outliers_needed)
        line += f"; pool_per_half {settings.pool_per_half}: a folder of at least {folder:,} images"
    return line


@cli.group()
def data() -> None:
    """Build and inspect contaminated splits."""


@data.command("build")
@click.option("--dataset", required=True, help="a registered dataset (bench datasets)")
@click.option("--data-root", default=None, help="its folder, PATH or NAME=PATH (default: its embedded synthetic data)")
@click.option("--ratio", required=True, type=float, help="outlier ratio in percent, e.g. 30")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print one JSON object describing the split")
@profile_options
@_plugin_option
def data_build(dataset, data_root, ratio, seed, out, as_json, profile, config_file, sets, plugin_refs) -> None:
    """Build (or load from cache) one split and write a preview grid PNG."""
    import torch

    from bench import api, inputs, loading
    from bench.datasets import describe, skipped_line
    from bench.image_grid import save_grid
    from bench.store import ResultsStore

    loading.load_all(list(plugin_refs))
    if data_root is not None and "=" in data_root:
        roots = inputs.parse_data_roots([data_root])
        if set(roots) != {dataset}:
            raise BenchError(f"--data-root {data_root} names another dataset than --dataset {dataset}")
        data_root = roots[dataset]
    split = api.build_split(dataset, ratio, seed, profile=profile, data_root=data_root, out=out, config=config_file,
                            overrides=_overrides(sets))  # fmt: skip
    inl = torch.nonzero(~split.train_is_outlier)[:32, 0]
    outl = torch.nonzero(split.train_is_outlier)[:32, 0]
    preview = ResultsStore(out).preview(split)
    save_grid(preview, split.train_images[torch.cat([inl, outl])], nrow=16)
    info = {**describe(split), "preview": str(preview)}
    skipped = skipped_line(split)
    if skipped:
        click.echo(f"note: {skipped}", err=True)
    if as_json:
        click.echo(json.dumps(info, sort_keys=True))
    else:
        click.echo(
            f"{dataset} r={ratio:g}%: {info['n_inliers']} inliers + {info['n_outliers']} outliers at "
            f"{info['size']}px -> {info['path']} (preview {preview})"
        )


def _value(item: str):
    from bench.config import parse_value

    key, eq, raw = item.partition("=")
    if not eq or not key.strip():
        raise BenchError(f"bad --set '{item}': expected KEY=VALUE, e.g. --set data.size=32")
    return parse_value(raw.strip())


def _overrides(sets) -> dict:
    return {s.partition("=")[0].strip(): _value(s) for s in sets}


@cli.command()
@click.option("--models", "models_", default=None, help="all or a comma list (default: run.models, all)")
@click.option("--datasets", "datasets_", default=None, help="comma list (default: the profile's run.datasets)")
@click.option("--ratios", default=None, help="outlier ratios in percent (default: the profile's run.ratios)")
@click.option("--seeds", default=None, help="comma list of seeds (default: run.seeds, 0)")
@data_root_options
@click.option("--out", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--jobs", default=None, type=int, help="cells in parallel, worker processes (default: run.jobs)")
@click.option("--backend", default=None, help="loky or dask (default: run.backend, loky)")
@click.option("--scheduler", default=None, help="Dask scheduler address (with --backend dask)")
@click.option("--filter", "filters", multiple=True, metavar="DETECTOR:FRACTION",
              help="train behind a label-free outlier filter, e.g. pca:0.3, mcd:auto (estimated share) or "
                   "self-trim:0.3 (the model's own score, refitted); repeatable; 'none' = unfiltered; "
                   "outliers-only = the capacity control (default: run.filters)")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="list the cells (done / todo / stale) and exit")
@click.option("--print-config", is_flag=True,
              help="print the fully resolved configuration as TOML, the grid's selection included, and exit "
                   "(--config of it plans the same cells)")  # fmt: skip
@click.option("--no-report", is_flag=True, help="do not write the report at the end")
@click.option("--inception-weights", default=None, help="local InceptionV3 weights file for FID (never downloaded)")
@profile_options
@_plugin_option
def run(models_, datasets_, ratios, seeds, data_roots, out, jobs, backend, scheduler, filters, dry_run, print_config,
        no_report, inception_weights, profile, config_file, sets, plugin_refs, **aliases) -> None:  # fmt: skip
    """Run the grid of models x datasets x ratios x seeds; one row per cell in OUT/runs.csv, then the report."""
    from bench import progress

    with status_line.shown("planning the cells: checking the configuration, the data folders and the finished cells"):
        from bench import api, grid, provenance

        roots = collect_roots(data_roots, aliases)
        overrides = _overrides(sets)
        if inception_weights is not None:
            if not Path(inception_weights).is_file():
                raise BenchError(f"--inception-weights {inception_weights}: file not found")
            overrides["eval.inception_weights"] = inception_weights
        # An option not given is None: the --config file's run.* (else the profile's) decides it.
        selection = dict(jobs=jobs, data_roots=roots, filters=filters or None, backend=backend)
        if print_config:
            toml = api.print_config(models_, datasets_, ratios, seeds, profile=profile, config=config_file,
                                    overrides=overrides, plugins=plugin_refs, **selection)  # fmt: skip
        else:
            spec, planned = api.plan(
                models_, datasets_, ratios, seeds, profile=profile, out=out, config=config_file, overrides=overrides,
                plugins=plugin_refs, scheduler=scheduler, command=provenance.command_line(), check_out=not dry_run,
                **selection,
            )  # fmt: skip
    if print_config:
        click.echo(toml, nl=False)
        return
    for line in spec.notes:
        click.echo(line, err=True)
    if dry_run:
        click.echo("\n".join(grid.dry_run_lines(planned)))
        return
    reporter = progress.for_terminal(spec.jobs)
    try:
        _run_planned(spec, planned, reporter, no_report)
    finally:
        getattr(reporter, "close", lambda: None)()  # no open phase bar left above an error line


def _run_planned(spec, planned, reporter, no_report: bool) -> None:
    """Run the planned cells with ``reporter`` saying what happens, write the report, print the end-of-run summary."""
    from bench import api, progress, summary

    if spec.profile.meaningless:
        progress.note(
            reporter,
            "SMOKE PROFILE: a plumbing check on tiny data and models; its numbers carry no meaning",
            phase=None,
        )
    todo = sum(p.state != "done" for p in planned)
    for p in planned:
        if p.state == "done":  # reused, never retrained: say which finished cell answers it
            progress.note(reporter, f"reusing finished cell {p.cell.key} (digest {p.job.identity.short})", phase=None)
    progress.note(
        reporter,
        f"{len(planned)} cells ({todo} to run, {len(planned) - todo} already done) in {spec.out}",
        phase="start" if todo else None,
    )  # nothing to run: no phase for the heartbeat to keep reporting
    outcome = api.execute(spec, planned, reporter, report=not no_report)
    click.echo(summary.end_of_run(spec, outcome.records, outcome.report_path))


@cli.command("eval")
@click.option("--cell", "cell_dir", required=True, type=click.Path(file_okay=False), help="a finished cell folder")
@click.option("--inception-weights", default=None, help="local InceptionV3 weights file (never downloaded)")
@_plugin_option
def eval_(cell_dir, inception_weights, plugin_refs) -> None:
    """Re-evaluate a finished cell's stored samples without retraining; updates its row in runs.csv."""
    from bench import api

    row = api.reevaluate(Path(cell_dir), inception_weights, plugins=plugin_refs).to_row()
    click.echo(json.dumps({k: row.get(k) for k in ("dataset", "model", "variant", "ratio", "seed", "pct_inliers",
                                                   "robustness", "fid", "fid_kind", "fd_classifier", "kid")}))  # fmt: skip


@cli.command()
@click.argument("samples", type=click.Path())
@click.option("--dataset", required=True, help="whose protocol (classifier, reference set) scores the samples")
@click.option("--data-root", "data_roots", multiple=True, metavar="NAME=PATH", help="the dataset's folder")
@click.option("--seed", default=0, show_default=True, type=int, help="the split / classifier seed")
@click.option(
    "--ratio", default=None, type=float, help="training outlier ratio in percent: F1 row, robustness, --append-to"
)
@click.option("--out", default="results", show_default=True, type=click.Path(file_okay=False), help="cache folder")
@click.option("--append-to", default=None, type=click.Path(file_okay=False), help="add as an external cell to OUT")
@click.option("--model-name", default=None, help="name of the external model (with --append-to)")
@click.option("--replace", is_flag=True, help="replace another sample set appended under the same name, ratio and seed")
@click.option("--json", "as_json", is_flag=True, help="print the row as one JSON object")
@profile_options
@_plugin_option
def score(samples, dataset, data_roots, seed, ratio, out, append_to, model_name, replace, as_json, profile,
          config_file, sets, plugin_refs) -> None:  # fmt: skip
    """Score generated images made anywhere (image folder, .npz with 'samples', .pt tensor) as a cell is scored."""
    from bench import api, inputs, loading, progress

    loading.load_all(list(plugin_refs))
    roots = inputs.parse_data_roots(data_roots)
    if set(roots) - {dataset}:
        raise BenchError(f"--data-root names {', '.join(sorted(set(roots) - {dataset}))}, not --dataset {dataset}")
    result = api.score(samples, dataset, profile=profile, seed=seed, ratio=ratio, data_root=roots.get(dataset),
                       out=out, append_to=append_to, model_name=model_name, replace=replace, config=config_file,
                       overrides=_overrides(sets), progress=progress.LineProgress())  # fmt: skip
    for line in result.get("notes", []):
        click.echo(f"note: {line}", err=True)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    from bench.scoring import Score

    keys = ("n", *Score.columns(), "classifier_f1")
    click.echo(
        f"{dataset} protocol, profile {result['profile']}, seed {seed}"
        + (f", r = {ratio:g} %" if ratio is not None else "")
    )
    for k in keys:
        if result.get(k) is not None:
            v = result[k]
            click.echo(f"  {k:20s} {v:.4g}" if isinstance(v, float) else f"  {k:20s} {v}")
    if result.get("fid") is None:
        click.echo("  (fid is empty: no local InceptionV3 weights; fd_classifier is a Frechet distance in the "
                   "classifier's features, not FID)")  # fmt: skip
    click.echo(f"  {result['classifier_validity']}")
    if "cell" in result:
        click.echo(f"appended as an external cell: {result['cell']}")


@cli.command("check-model")
@click.argument("name")
@_plugin_option
def check_model(name, plugin_refs) -> None:
    """Check a registered model against the contract in seconds (tiny synthetic data); exit 2 if any item fails."""
    from bench import api

    report = api.check_model(name, plugins=plugin_refs)
    click.echo("\n".join(report.lines()))
    if report.failed:
        raise BenchError(f"check-model {name}: failed: {'; '.join(i.name for i in report.failed)}")


@cli.command()
@click.option("--out", default="results", show_default=True, type=click.Path(file_okay=False))
@_plugin_option
def report(out, plugin_refs) -> None:
    """Regenerate the tables, Fig. 4 and sample grids from OUT's cells (never retrains); print the headline table."""
    from bench import loading, summary
    from bench import report as report_mod

    loading.load_all(list(plugin_refs))
    out = Path(out)
    if not out.is_dir():
        raise BenchError(f"results folder not found: {out} (pass the --out of a 'bench run')")
    echo = lambda line: click.echo(line, err=True)  # noqa: E731
    report_mod.report_folder(out)  # a file in the report's place is said before anything else
    ctx = report_mod.load_context(out, echo)
    path = report_mod.write_report(out, echo, context=ctx)
    click.echo("\n".join(summary.headline(ctx)).rstrip())
    click.echo(f"report written to {path}")


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            cli.main(args=argv, prog_name="bench", standalone_mode=False)
        finally:
            status_line.stop()  # erased before any error line: a rejected input leaves exactly that line
    except BenchError as e:
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()} (see 'bench --help')", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except OSError as e:  # disk full, read-only results, a folder where a file belongs: writes are atomic
        where = f" ({e.filename})" if e.filename else ""
        click.echo(f"error: {e.strerror or e}{where}: free some space or pass a writable --out; finished cells are "
                   f"kept", err=True)  # fmt: skip
        return 2
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
