"""Command line: ``bench run | report | eval | data build | models``.

Bad input prints one line (``error: what, where, how to fix``) and exits with status 2, no traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bench.config import DEFAULT_PROFILE, PROFILES, load_profile
from bench.errors import BenchError

_profile_options = [
    click.option("--profile", default=DEFAULT_PROFILE, show_default=True, help=f"one of {', '.join(PROFILES)}"),
    click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file overriding the profile"),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override one setting, e.g. data.size=32"),
]


def profile_options(f):
    for opt in reversed(_profile_options):
        f = opt(f)
    return f


def parse_ratios(text: str) -> list[float]:
    """``0,5,10`` or the range form ``0,5,...,30`` -> [0.0, 5.0, ...] (percent)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
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
    if not values:
        raise BenchError("no ratio given: pass --ratios, e.g. --ratios 0,5,...,30")
    for v in values:
        if not 0 <= v < 100:
            raise BenchError(f"bad outlier ratio {v:g} in --ratios: must be in [0, 100) percent")
    return values


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise BenchError(f"bad --seeds '{text}': use integers like 0 or 0,1,2") from None
    if not seeds:
        raise BenchError("no seed given: pass --seeds 0")
    return seeds


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """robust-gen-bench: does a generative model still generate clean data when its training set is contaminated?"""


@cli.command()
def models() -> None:
    """List the registered models."""
    from bench import registry

    for name in registry.names():
        click.echo(f"{name:10s} {registry.get(name).description}")


@cli.group()
def data() -> None:
    """Build and inspect contaminated splits."""


@data.command("build")
@click.option("--dataset", required=True, help="facemask or roomcrop")
@click.option("--data-root", default=None, help="dataset folder (default: the embedded synthetic data)")
@click.option("--ratio", required=True, type=float, help="outlier ratio in percent, e.g. 30")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print one JSON object describing the split")
@profile_options
def data_build(dataset, data_root, ratio, seed, out, as_json, profile, config_file, sets) -> None:
    """Build (or load from cache) one split and write a preview grid PNG."""
    import torch

    from bench.datasets import build_split, describe, resolve_datasets
    from bench.datasets.split import n_outliers_for
    from bench.grids import save_grid

    n_outliers_for(ratio, 1)  # validate the ratio before touching any data
    (dataset,) = resolve_datasets(dataset)
    prof = load_profile(profile, config_file, sets)
    out = Path(out)
    split = build_split(dataset, prof.data, ratio, seed, out / "cache", data_root)
    inl = torch.nonzero(~split.train_is_outlier)[:32, 0]
    outl = torch.nonzero(split.train_is_outlier)[:32, 0]
    preview = out / "previews" / f"{dataset}_r{ratio:g}_s{seed}_{prof.data.size}px.png"
    save_grid(preview, split.train_images[torch.cat([inl, outl])], nrow=16)
    info = {**describe(split), "preview": str(preview), "profile": prof.name}
    if as_json:
        click.echo(json.dumps(info, sort_keys=True))
    else:
        click.echo(
            f"{dataset} r={ratio:g}%: {info['n_inliers']} inliers + {info['n_outliers']} outliers at "
            f"{info['size']}px -> {info['path']} (preview {preview})"
        )


@cli.command()
@click.option("--models", "models_", default="all", show_default=True, help="all or a comma list")
@click.option("--datasets", default="facemask,roomcrop", show_default=True)
@click.option("--ratios", default="0,5,...,30", show_default=True, help="outlier ratios in percent")
@click.option("--seeds", default="0", show_default=True)
@click.option("--data-root-facemask", default=None, help="Face Mask Lite folder (default: synthetic faces)")
@click.option("--data-root-roomcrop", default=None, help="LSUN bedroom LMDB or image folder (default: synthetic)")
@click.option("--out", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1), help="cells in parallel")
@click.option("--backend", default="loky", show_default=True, type=click.Choice(["loky", "dask"]))
@click.option("--scheduler", default=None, help="Dask scheduler address (with --backend dask)")
@click.option("--dry-run", is_flag=True, help="list the cells and exit")
@click.option("--inception-weights", default=None, help="local InceptionV3 weights file for FID (never downloaded)")
@profile_options
def run(models_, datasets, ratios, seeds, data_root_facemask, data_root_roomcrop, out, jobs, backend, scheduler,
        dry_run, inception_weights, profile, config_file, sets) -> None:  # fmt: skip
    """Run the grid of models x datasets x ratios x seeds; one row per cell in OUT/runs.csv."""
    from bench import registry, runner, store
    from bench.datasets import resolve_datasets
    from bench.progress import tqdm_progress

    prof = load_profile(profile, config_file, sets)
    if inception_weights is not None:
        if not Path(inception_weights).is_file():
            raise BenchError(f"--inception-weights {inception_weights}: file not found")
        prof.eval.inception_weights = inception_weights
    names = registry.resolve(models_)
    for name, overrides in prof.models.items():
        registry.get(name).make_config(prof.name, overrides)  # reject unknown model settings up front
    cells = runner.expand(resolve_datasets(datasets), names, parse_ratios(ratios), parse_seeds(seeds))
    roots = {"facemask": data_root_facemask, "roomcrop": data_root_roomcrop}
    for ds, root in roots.items():
        if root is not None and not Path(root).is_dir():
            raise BenchError(f"--data-root-{ds} {root}: folder not found")
    spec = runner.GridSpec(prof, Path(out), roots, jobs)
    if dry_run:
        for c in cells:
            state = "done" if store.done_row(c.folder(spec.out)) else "todo"
            click.echo(f"{state}  {c.key}")
        click.echo(f"{len(cells)} cells, profile {prof.name}")
        return
    from tqdm.auto import tqdm

    show = sys.stderr.isatty()
    with tqdm(total=len(cells), desc="grid", position=0, disable=not show) as bar:
        runner.run_grid(spec, cells, on_row=lambda row: bar.update(1), progress=tqdm_progress(1, show),
                        backend=backend, scheduler=scheduler)  # fmt: skip
    click.echo(summary_table(spec.out, cells))


def summary_table(out: Path, cells) -> str:
    """Per dataset: % generated inliers and FID (or the fallback FD) per model and ratio."""
    from bench import store

    df = store.read_frame(out)
    if df.empty:
        return "(no finished cells)"
    wanted = {(c.dataset, c.model, float(c.ratio), c.seed) for c in cells}
    df = df[[(d, m, float(r), int(s)) in wanted for d, m, r, s in zip(df.dataset, df.model, df.ratio, df.seed)]]
    lines = []
    for ds, part in df.groupby("dataset"):
        for metric in ("pct_inliers", "fid", "fd_classifier"):
            if part[metric].notna().any():
                table = part.pivot_table(index="model", columns="ratio", values=metric, aggfunc="mean")
                table.columns = [f"{c:g}%" for c in table.columns]
                lines += [f"\n{ds}: {metric} (mean over seeds)", table.round(2).to_string()]
    return "\n".join(lines).lstrip("\n")


@cli.command("eval")
@click.option("--cell", "cell_dir", required=True, type=click.Path(file_okay=False), help="a finished cell folder")
@click.option("--inception-weights", default=None, help="local InceptionV3 weights file (never downloaded)")
def eval_(cell_dir, inception_weights) -> None:
    """Re-evaluate a finished cell's stored samples without retraining; updates its row in runs.csv."""
    from bench import runner

    if inception_weights is not None and not Path(inception_weights).is_file():
        raise BenchError(f"--inception-weights {inception_weights}: file not found")
    row = runner.reevaluate_cell(Path(cell_dir), inception_weights)
    click.echo(json.dumps({k: row.get(k) for k in ("dataset", "model", "ratio", "seed", "pct_inliers", "fid",
                                                   "fid_kind", "fd_classifier", "kid")}))  # fmt: skip


@cli.command()
@click.option("--out", default="results", show_default=True, type=click.Path(file_okay=False))
def report(out) -> None:
    """Regenerate Tables 1-5, Fig. 4 and sample grids from OUT/runs.csv (never retrains)."""
    from bench import report as report_mod

    path = report_mod.write_report(Path(out))
    click.echo(f"report written to {path}")


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="bench", standalone_mode=False)
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
    return 0



def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
