"""Plug-ins: a model and a dataset from outside the package, by file (--plugin, BENCH_PLUGINS) and by entry point,
in the driver and in every worker; bad plug-ins as one line; bench check-model."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from tests.grid_helpers import FAST_SETS, forget_plugin

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "plugin_example"
MODEL_FILE = EXAMPLE / "bench_plugin_example" / "model.py"


def bench(*args, env_extra=None, pythonpath=(), timeout=600):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *map(str, pythonpath)])}
    env.pop("BENCH_PLUGINS", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "bench.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)  # fmt: skip


def installed_style(tmp_path: Path) -> Path:
    """A site folder holding the example package and a .dist-info with its entry points, as pip would leave it."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE / "bench_plugin_example", site / "bench_plugin_example")
    info = site / "bench_plugin_example-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-plugin-example\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[robust_gen_bench.models]\npcagauss = bench_plugin_example.model\n\n"
        "[robust_gen_bench.datasets]\nstripedrooms = bench_plugin_example.data\n"
    )
    return site


@pytest.mark.slow
def test_file_plugin_runs_in_workers_then_eval_and_report(tmp_path):
    out = tmp_path / "out"
    sets = [a for s in FAST_SETS for a in ("--set", s)]
    r = bench("run", "--plugin", MODEL_FILE, "--models", "pcagauss,gan", "--profile", "smoke", "--datasets",
              "facemask", "--ratios", "0,30", "--jobs", "2", "--out", out, *sets)  # fmt: skip
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out / "runs.csv")
    assert sorted(set(df.model)) == ["gan", "pcagauss"] and len(df) == 4
    cell = next((out / "cells" / "facemask" / "pcagauss" / "r30" / "s0").iterdir())
    cfg = json.loads((cell / "config.json").read_text())
    assert cfg["plugins"][0]["file"].endswith("model.py") and len(cfg["plugins"][0]["sha256"]) == 64
    e = bench("eval", "--cell", cell)  # a cell's config.json is never an import source: the plug-in is needed
    assert e.returncode == 2 and "--plugin" in e.stderr, e.stderr
    e = bench("eval", "--cell", cell, "--plugin", MODEL_FILE)  # the same file (its sha256 is checked)
    assert e.returncode == 0, e.stderr
    assert json.loads(e.stdout)["model"] == "pcagauss"
    rep = bench("report", "--out", out)  # without the plug-in: its cells are reported by name, and the note says why
    assert rep.returncode == 0 and "pcagauss are not registered here" in rep.stderr, rep.stderr
    rep = bench("report", "--out", out, "--plugin", MODEL_FILE)
    assert rep.returncode == 0, rep.stderr
    t1 = pd.read_csv(out / "report" / "table1.csv", dtype=str, keep_default_na=False)
    assert "PCA-Gauss (plug-in)" in set(t1.iloc[:, 0])
    assert (out / "report" / "grids" / "facemask_pcagauss_r30.png").exists()


@pytest.mark.slow
def test_entry_points_of_an_installed_distribution(tmp_path):
    site = installed_style(tmp_path)
    models = bench("models", pythonpath=[site])
    assert models.returncode == 0, models.stderr
    line = next(ln for ln in models.stdout.splitlines() if ln.startswith("pcagauss"))
    assert "bench-plugin-example==0.1.0" in line
    datasets = bench("datasets", pythonpath=[site])
    assert "stripedrooms" in datasets.stdout and "stripes" in datasets.stdout
    stripes = next(ln for ln in datasets.stdout.splitlines() if ln.startswith("corruption stripes"))
    assert "[bench-plugin-example==0.1.0]" in stripes  # a plug-in corruption says where it comes from
    assert "[built-in]" in next(ln for ln in datasets.stdout.splitlines() if ln.startswith("detector   mcd"))
    out = tmp_path / "out"
    r = bench("run", "--models", "pcagauss,replay", "--datasets", "stripedrooms", "--profile", "smoke", "--ratios",
              "0,30", "--jobs", "2", "--out", out, pythonpath=[site])  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = out / "report"  # a plug-in dataset gets its tables, Fig. 4 and grids
    for name in ("table_stripedrooms_inliers.md", "table_stripedrooms_fd.md", "table_stripedrooms_robustness.md",
                 "fig4.png", "grids/stripedrooms_r30_models.png"):  # fmt: skip
        assert (rep / name).exists(), name
    assert "Striped rooms (plug-in)" in (rep / "report.md").read_text()


def test_environment_variable_loads_plugins():
    r = bench("models", env_extra={"BENCH_PLUGINS": str(MODEL_FILE)})
    assert r.returncode == 0 and "pcagauss" in r.stdout and "BENCH_PLUGINS" in r.stdout


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("def broken(:\n", "failed to import: SyntaxError"),
        ("import no_such_module_xyz\n", "failed to import: ModuleNotFoundError"),
        ("from dataclasses import dataclass\nfrom bench.api import GenerativeModel, register_model\n"
         "@dataclass\nclass C: pass\n@register_model('gan', config=C, profiles={'paper': {}, 'cpu': 'paper', "
         "'demo': 'paper', 'smoke': 'paper'})\nclass M(GenerativeModel):\n"
         "    fit = sample = state_dict = load_state_dict = lambda *a: None\n", "model name 'gan' is taken by the built-in bench.models.gan.GAN: pick another name"),
        ("from dataclasses import dataclass\nfrom bench.api import GenerativeModel, register_model\n"
         "@dataclass\nclass C: pass\n@register_model('nopaper', config=C, profiles={'cpu': {}})\n"
         "class M(GenerativeModel):\n    fit = sample = state_dict = load_state_dict = lambda *a: None\n",
         "no settings for profile"),
        ("from dataclasses import dataclass\nfrom bench.api import register_model\n@dataclass\nclass C: pass\n"
         "@register_model('notamodel', config=C, profiles={})\nclass M: pass\n", "GenerativeModel subclass"),
    ],
)  # fmt: skip
def test_bad_plugin_is_one_line(tmp_path, capsys, source, fragment):
    path = tmp_path / "bad_plugin.py"
    path.write_text(source)
    code = main(["models", "--plugin", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: plug-in "), err
    assert fragment in err and "Traceback" not in err
    forget_plugin(str(path))


def test_missing_plugin_file_and_module(capsys):
    assert main(["models", "--plugin", "no/such/file.py"]) == 2
    assert "plug-in file not found" in capsys.readouterr().err
    assert main(["models", "--plugin", "no_such_module_xyz"]) == 2
    assert "plug-in module 'no_such_module_xyz' not found" in capsys.readouterr().err


def test_check_model_passes_for_the_example_and_names_a_broken_item(capsys):
    assert main(["check-model", "pcagauss", "--plugin", str(MODEL_FILE)]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out and "[ok  ] resume" in out  # it checkpoints and resumes
    broken = str(Path(__file__).parent / "plugins" / "label_reading_model.py")
    assert main(["check-model", "label_reader", "--plugin", broken]) == 2
    captured = capsys.readouterr()
    assert "[FAIL] fit does not read the outlier labels" in captured.out
    assert captured.err.strip() == "error: check-model label_reader: failed: fit does not read the outlier labels"
    forget_plugin(str(MODEL_FILE), "pcagauss")
    forget_plugin(broken, "label_reader")


def test_default_datasets_per_profile_come_from_the_registry(tmp_path):
    """`bench run` without --datasets: each dataset says in which profiles it is a default (no name in config)."""
    from bench.api import plan
    from bench.datasets import registry

    assert registry.defaults("demo") == ["facemask"]  # RoomCrop stays out of the demo's main job
    assert registry.defaults("cpu") == registry.defaults() == ["facemask", "roomcrop"]
    _, planned = plan("vqvae", None, None, [0], profile="demo", out=tmp_path / "out")
    assert {p.cell.dataset for p in planned} == {"facemask"}


def test_bad_dataset_default_is_one_line(tmp_path, capsys):
    path = tmp_path / "bad_default.py"
    path.write_text("from bench.api import TwoFolderDataset, register_dataset, DatasetCounts\n"
                    "@register_dataset('baddefault', title='B', profiles={'paper': DatasetCounts(10, 10, 10, 10), "
                    "'cpu': 'paper', "
                    "'demo': 'paper', 'smoke': 'paper'}, default=('laptop',))\n"
                    "class B(TwoFolderDataset): pass\n")  # fmt: skip
    assert main(["datasets", "--plugin", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "default must be True, False or profile names" in err and "Traceback" not in err
    forget_plugin(str(path))
