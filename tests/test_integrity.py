"""Integrity probes for results folders people share: a folder received from someone else (an exported runs.csv, a
copied or edited cell, a plug-in file lying in it) must never run code, write outside itself, or show a number that
its cells' own records do not back; a plug-in's output is checked before it is stored; failures to write are one line.

The rule is the CLI's (bench/cli.py, tests/test_bad_inputs.py): bad input prints ONE line on stderr starting
``error:`` and exits 2, no traceback; nothing half-written. Where a report can still be made from the sound cells, it
may exit 0, but only with a note on stderr naming the inconsistent cell, and never with its number.

Cost: one module-scoped smoke run (``bench run --profile smoke --models vqvae --datasets facemask --ratios 0``) and one
plug-in cell made beside it; probes work on copies (caches included, so a probe the code fails to reject costs
seconds). Plug-ins are tiny files written into tmp_path; every test restores the model registry afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import bench.atomic
from bench import plugins
from bench.cli import main
from bench.errors import BenchError
from tests.test_bad_inputs import (
    GRID,
    B,
    assert_no_tmp,
    assert_no_traceback,
    assert_rejected,
    assert_unchanged,
    cell_dir,
    cli,
    snapshot,
)

SIZE = 16  # the smoke profile's data.size

pytestmark = pytest.mark.slow  # about 70 s on 2 cores (two runs with --jobs 2 start loky workers)


# --------------------------------------------------------------------------------------------------- helpers


def _models():
    """The model registry module."""
    from bench.models import registry as models

    return models


def _registration_stores() -> list[dict]:
    """The dicts holding what is registered now: every kind's entries (``bench.registries``), or the model
    registry's dict (before that module existed). Built-ins are loaded first."""
    try:
        from bench import registries
    except ImportError:
        _models().names()
        return [_models()._REGISTRY]
    registries.load_all()
    return [r._entries for r in registries._REGISTRIES.values()]


@contextlib.contextmanager
def registrations_restored():
    """Plug-ins loaded in this process register for good: undo every registration, plug-in import and module made
    inside (a plug-in that took the name 'gan' must not replace the built-in GAN for the next test)."""
    stores = [(d, dict(d)) for d in _registration_stores()]
    loaded = dict(plugins._loaded)
    modules = {k for k in sys.modules if k.startswith("bench_plugin_")}
    try:
        yield
    finally:
        for d, saved in stores:
            d.clear()
            d.update(saved)
        plugins._loaded.clear()
        plugins._loaded.update(loaded)
        for k in [k for k in sys.modules if k.startswith("bench_plugin_") and k not in modules]:
            sys.modules.pop(k, None)
        _silence_leaked_heartbeats()


@pytest.fixture(autouse=True)
def _restore_registry():
    with registrations_restored():
        yield


def _silence_leaked_heartbeats() -> None:
    """A cell that fails with an exception leaves its LineProgress heartbeat thread reporting the unfinished phase
    ("... fit on 120 training images (25 s)") for the rest of the process; in a real process that ends with the
    process, here it would print into the next tests' stderr. End the phase of every such thread."""
    for t in threading.enumerate():
        owner = getattr(getattr(t, "_target", None), "__self__", None)
        if t.name == "bench-progress" and owner is not None and hasattr(owner, "_phase"):
            owner._phase = None


def quiet_main(args) -> tuple[int, str]:
    """``main(args)`` for fixtures: (exit code, stderr)."""
    torch.set_num_threads(1)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main([os.fspath(a) for a in args])
    torch.set_num_threads(1)
    return code, err.getvalue()


def noise_npz(path: Path, seed: int, n: int = 40) -> Path:
    np.savez(path, samples=np.random.default_rng(seed).integers(0, 256, (n, 3, SIZE, SIZE), dtype=np.uint8))
    return path


def copy_results(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def only_runs_csv(src: Path, dst: Path) -> Path:
    """An exported results folder: runs.csv alone (no cells/, no caches)."""
    dst.mkdir(parents=True)
    shutil.copy2(src / "runs.csv", dst / "runs.csv")
    return dst


def with_caches(src: Path, dst: Path) -> Path:
    """A results folder holding only ``src``'s caches (split, classifier, features, Table 5): no cell, no runs.csv."""
    dst.mkdir(parents=True)
    for name in ("cache", "f1"):
        shutil.copytree(src / name, dst / name)
    return dst


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def edit_row(cell: Path, *names: str, **values) -> None:
    """Set ``values`` in the row of the cell's done.json (and of the other record files named)."""
    for name in ("done.json", *names):
        edit_json(cell / name, lambda d: d["row"].update(values))


def csv_fields(path: Path) -> list[str]:
    return [f for line in path.read_text(encoding="utf-8").splitlines() for f in line.split(",")]


def model_rows(out: Path, model: str) -> pd.DataFrame:
    df = pd.read_csv(out / "runs.csv", dtype=str, keep_default_na=False)
    return df[df.model == model]


def all_paths(root: Path, exclude: Path | None = None) -> set[str]:
    """Every file and folder under ``root`` (relative), except those under ``exclude``."""
    found = set()
    for p in root.rglob("*"):
        if exclude is not None and (p == exclude or exclude in p.parents):
            continue
        found.add(os.fsdecode(p.relative_to(root)))
    return found


def names_cell(err: str, cell: Path) -> bool:
    """stderr names this cell: its key (dataset/model/r<ratio>/s<seed>) or its digest folder."""
    key = "/".join(cell.parts[-5:-1])  # facemask/vqvae/r0/s0
    return key in err.replace(os.sep, "/") or cell.name in err


def remove_report(out: Path) -> None:
    shutil.rmtree(out / "report", ignore_errors=True)


def assert_failed_in_run(res, *fragments: str) -> None:
    """A failure found while a run works (a model breaking the contract): no traceback, exit 2, and exactly one
    'error: ' line on stderr, the last one, naming each regex in ``fragments``; the lines before it are the run's
    progress lines."""
    assert_no_traceback(res)
    assert res.code == 2, f"expected exit 2 with one 'error: ' line; got {res.describe()}"
    lines = [line for line in res.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"stderr must end with one 'error: ' line, got {res.err!r}"
    for frag in fragments:
        assert re.search(frag, errors[0], re.IGNORECASE), f"error line should name {frag!r}: {errors[0]!r}"


def dry_run_state(res, key: str) -> str:
    """The state (done / todo / stale) `bench run --dry-run` prints for the cell ``key``."""
    for line in res.out.splitlines():
        m = re.match(r"\s*(done|todo|stale)\s+[0-9a-f]{12}\s+(\S+)", line)
        if m and m.group(2) == key:
            return m.group(1)
    raise AssertionError(f"no dry-run line for {key}: {res.describe()}")


PLUGIN_SOURCE = '''"""Integrity probe plug-in __NAME__."""
__TOP__
from dataclasses import dataclass

import torch

from bench.api import FitResult, GenerativeModel, register_model


@dataclass
class ProbeCfg:
    noise: float = 10.0


@register_model("__NAME__", config=ProbeCfg, profiles={"paper": {}, "cpu": "paper", "demo": "paper", "smoke": "paper"})
class __CLS__(GenerativeModel):
    """Integrity probe: the training mean plus noise."""

    def fit(self, train_images, train_is_outlier, cfg, progress=None):
        __FIT__
        self.mean = train_images.float().mean(0)
        return FitResult(images_seen=len(train_images))

    def sample(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        x = (self.mean + self.cfg.noise * torch.randn((n, *self.mean.shape), generator=g)).round().clamp(0, 255)
        x = x.to(torch.uint8)
        __SAMPLE__
        return x

    def state_dict(self):
        return {"mean": self.mean}

    def load_state_dict(self, state):
        self.mean = state["mean"]
'''


def write_plugin(folder: Path, name: str, cls: str | None = None, top: str = "", fit: str = "pass",
                 sample: str = "pass", extra: str = "") -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    src = (PLUGIN_SOURCE.replace("__NAME__", name).replace("__CLS__", cls or f"Probe_{name}").replace("__TOP__", top)
           .replace("__FIT__", fit).replace("__SAMPLE__", sample))  # fmt: skip
    path.write_text(src + extra, encoding="utf-8")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished smoke grid (one cell). Probes copy it before touching it."""
    out = tmp_path_factory.mktemp("finished") / "out"
    code, err = quiet_main([*B, "--out", out])
    assert code == 0, err
    assert (cell_dir(out) / "done.json").exists() and (out / "runs.csv").exists()
    return out


@pytest.fixture
def done_out(finished, tmp_path) -> Path:
    return copy_results(finished, tmp_path / "out")


@pytest.fixture(scope="module")
def two_cells(finished, tmp_path_factory) -> Path:
    """The smoke results plus an external cell ``ext0`` (random noise scored with ``bench score --append-to``), so a
    report can still be made when the vqvae cell's records are damaged or forged."""
    base = tmp_path_factory.mktemp("two_cells")
    out = copy_results(finished, base / "out")
    code, err = quiet_main(["score", noise_npz(base / "S0.npz", 0), "--dataset", "facemask", "--profile", "smoke",
                            "--ratio", "0", "--append-to", out, "--model-name", "ext0"])  # fmt: skip
    assert code == 0, err
    assert len(pd.read_csv(out / "runs.csv")) == 2
    return out


@pytest.fixture
def two_out(two_cells, tmp_path) -> Path:
    return copy_results(two_cells, tmp_path / "out")


PLUGIN_MODEL = "integ_mean"


@pytest.fixture(scope="module")
def plugin_finished(finished, tmp_path_factory) -> tuple[Path, Path]:
    """(results folder, plug-in file): the smoke results plus a finished cell of the plug-in model ``integ_mean``,
    made with ``--plugin``; the plug-in is forgotten again, so the process no longer knows the model."""
    base = tmp_path_factory.mktemp("plugin_finished")
    plugin = write_plugin(base / "plugin_src", PLUGIN_MODEL)
    out = copy_results(finished, base / "out")
    with registrations_restored():
        code, err = quiet_main(["run", "--plugin", plugin, "--profile", "smoke", "--models", PLUGIN_MODEL,
                                "--datasets", "facemask", "--ratios", "0", "--out", out, "--no-report"])  # fmt: skip
    assert code == 0, err
    assert plugin_cell(out) is not None
    return out, plugin


def plugin_cell(out: Path) -> Path:
    base = out / "cells" / "facemask" / PLUGIN_MODEL / "r0" / "s0"
    return next(d for d in sorted(base.iterdir()) if (d / "done.json").exists())


# --------------------------------------------------------------------------------------------------- 1. exported folder


def test_score_append_to_exported_folder_is_rejected(capsys, finished, tmp_path):
    """An exported folder (runs.csv alone, no cells): appending an external cell would create cells/, after which the
    folder's exported rows vanish from every report. Rejected with one line, the folder untouched."""
    exported = only_runs_csv(finished, tmp_path / "E")
    samples = noise_npz(tmp_path / "S.npz", 1)
    before = snapshot(exported)
    res = cli(capsys, "score", samples, "--dataset", "facemask", "--profile", "smoke", "--ratio", "20",
              "--append-to", exported, "--model-name", "ext1")  # fmt: skip
    assert_rejected(res)
    assert_unchanged(before, exported, "exported folder")
    assert not (exported / "cells").exists()


def test_run_into_exported_folder_is_rejected(capsys, finished, tmp_path):
    """``bench run --out E`` on an exported folder: its runs.csv is the only record of its rows; a run must not
    rewrite it (nor mix new cells into it)."""
    exported = only_runs_csv(finished, tmp_path / "E")
    before = snapshot(exported)
    res = cli(capsys, *B, "--out", exported)
    assert_rejected(res)
    assert_unchanged(before, exported, "exported folder")
    assert not (exported / "cells").exists()


# --------------------------------------------------------------------------------------------------- 2. unrelated CSV


def test_score_append_to_folder_with_unrelated_runs_csv(capsys, tmp_path):
    folder = tmp_path / "F"
    folder.mkdir()
    (folder / "runs.csv").write_text("a,b\n1,2\n")
    samples = noise_npz(tmp_path / "S.npz", 1)
    before = snapshot(folder)
    res = cli(capsys, "score", samples, "--dataset", "facemask", "--profile", "smoke", "--ratio", "0",
              "--append-to", folder, "--model-name", "ext1")  # fmt: skip
    assert_rejected(res, "runs.csv")
    assert_unchanged(before, folder, "folder with an unrelated runs.csv")


# --------------------------------------------------------------------------------------------------- 3. no code run


EVIL = '''"""Lies inside a shared results folder; importing it is running a stranger's code."""
from pathlib import Path

Path(__MARKER__).write_text("imported")

from dataclasses import dataclass

from bench.api import GenerativeModel, register_model


@dataclass
class EvilCfg:
    x: int = 1


@register_model("integ_evil", config=EvilCfg, profiles={"paper": {}, "cpu": "paper", "demo": "paper", "smoke": "paper"})
class IntegEvil(GenerativeModel):
    def fit(self, *a, **k):
        return None

    def sample(self, n, seed):
        return None

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass
'''


def test_eval_never_imports_a_plugin_named_by_the_cell_record(capsys, done_out, tmp_path):
    """A plug-in file inside the results folder, named by the cell's config.json: `bench eval` must not import it
    (a record is data, never code to run). The cell's model is built-in, so exit 0 is fine."""
    marker = tmp_path / "marker"
    evil = done_out / "evil.py"
    evil.write_text(EVIL.replace("__MARKER__", repr(str(marker))), encoding="utf-8")
    cell = cell_dir(done_out)
    edit_json(cell / "config.json", lambda d: d.__setitem__("plugins", [{
        "ref": str(evil), "module": "bench_plugin_evil", "file": str(evil), "sha256": sha256(evil),
        "distribution": None, "via": "--plugin",
    }]))  # fmt: skip
    res = cli(capsys, "eval", "--cell", cell)
    assert not marker.exists(), "bench eval imported (ran) a plug-in file named by the cell's config.json"
    assert_no_traceback(res)
    assert res.code in (0, 2), res.describe()
    if res.code == 2:
        assert_rejected(res)
    assert "integ_evil" not in _models().names()


def test_eval_of_plugin_cell_without_plugin_option(capsys, plugin_finished, tmp_path):
    """A cell made by a plug-in model: `bench eval` without --plugin says to pass --plugin (it does not import the
    file recorded in config.json)."""
    out = copy_results(plugin_finished[0], tmp_path / "out")
    cell = plugin_cell(out)
    before = snapshot(out)
    res = cli(capsys, "eval", "--cell", cell)
    assert_rejected(res, "--plugin")
    assert_unchanged(before, out)


def test_eval_of_plugin_cell_with_a_modified_plugin(capsys, plugin_finished, tmp_path):
    """--plugin pointing at another version of the plug-in (other sha256 than config.json records): one line naming
    the sha256 mismatch; nothing rewritten."""
    out = copy_results(plugin_finished[0], tmp_path / "out")
    modified = tmp_path / "modified" / plugin_finished[1].name
    modified.parent.mkdir()
    modified.write_text(plugin_finished[1].read_text() + "\n# edited after the run\n")
    cell = plugin_cell(out)
    before = snapshot(out)
    res = cli(capsys, "eval", "--cell", cell, "--plugin", modified)
    assert_rejected(res, "sha256")
    assert_unchanged(before, out)


def test_eval_of_plugin_cell_with_the_same_plugin(capsys, plugin_finished, tmp_path):
    out = copy_results(plugin_finished[0], tmp_path / "out")
    cell = plugin_cell(out)
    res = cli(capsys, "eval", "--cell", cell, "--plugin", plugin_finished[1])
    assert_no_traceback(res)
    assert res.code == 0, res.describe()
    assert json.loads(res.out)["model"] == PLUGIN_MODEL


# --------------------------------------------------------------------------------------------------- 4. path traversal


TRAVERSAL = "../../../../x"


def _check_report_contained(res, root: Path, out: Path, before: set[str], cell: Path | None) -> None:
    escaped = sorted(all_paths(root, exclude=out) - before)
    assert not escaped, f"bench report wrote outside the results folder {out}: {escaped}"
    assert_no_traceback(res)
    assert res.code in (0, 2), res.describe()
    if res.code == 2:
        assert_rejected(res)
    elif cell is not None:
        assert names_cell(res.err, cell), f"the cell whose records disagree is not named on stderr: {res.describe()}"


def test_report_dataset_name_with_dot_dot_in_cell_records(capsys, finished, tmp_path):
    """done.json and metrics.json say dataset '../../../../x': the report's file names are built from it, so it
    could write outside OUT. Nothing outside OUT; a note naming the cell, or one error line."""
    out = copy_results(finished, tmp_path / "a" / "b" / "c" / "d" / "e" / "f" / "out")  # '..'s stay in tmp_path
    cell = cell_dir(out)
    edit_row(cell, "metrics.json", dataset=TRAVERSAL)
    before = all_paths(tmp_path, exclude=out)
    res = cli(capsys, "report", "--out", out)
    _check_report_contained(res, tmp_path, out, before, cell)


def test_report_dataset_name_with_dot_dot_in_exported_runs_csv(capsys, finished, tmp_path):
    out = only_runs_csv(finished, tmp_path / "a" / "b" / "c" / "d" / "e" / "f" / "out")
    runs = out / "runs.csv"
    runs.write_text(runs.read_text().replace("\nfacemask,", f"\n{TRAVERSAL},"))
    assert TRAVERSAL in runs.read_text()
    before = all_paths(tmp_path, exclude=out)
    res = cli(capsys, "report", "--out", out)
    _check_report_contained(res, tmp_path, out, before, None)
    if res.code == 0:
        assert re.search(r"runs\.csv|dataset", res.err), f"the bad dataset name is not mentioned: {res.describe()}"


# --------------------------------------------------------------------------------------------------- 5. built-in names


def test_plugin_cannot_take_a_builtin_model_name(capsys, finished, tmp_path):
    """A plug-in registering 'gan' with a class also called GAN would silently replace the built-in GAN."""
    plugin = write_plugin(tmp_path / "src", "gan", cls="GAN")
    out = with_caches(finished, tmp_path / "O")
    before = snapshot(out)
    res = cli(capsys, "run", "--plugin", plugin, "--profile", "smoke", "--models", "gan", "--datasets", "facemask",
              "--ratios", "0", "--out", out)  # fmt: skip
    assert_rejected(res, "gan")
    assert not (out / "cells").exists(), "cells written by a plug-in that took a built-in name"
    assert_unchanged(before, out)
    assert _models().get("gan").cls.__module__ == "bench.models.gan", "the built-in GAN was replaced"


# --------------------------------------------------------------------------------------------------- 6. external sets


def _append(capsys, samples: Path, out: Path, *extra: str):
    return cli(capsys, "score", samples, "--dataset", "facemask", "--profile", "smoke", "--ratio", "0", "--seed", "0",
               "--append-to", out, "--model-name", "ext1", *extra)  # fmt: skip


def _ext_cells(out: Path) -> list[Path]:
    base = out / "cells" / "facemask" / "ext1" / "r0" / "s0"
    return sorted(d for d in base.iterdir() if d.is_dir()) if base.is_dir() else []


def test_second_external_sample_set_under_same_name_needs_replace(capsys, done_out, tmp_path):
    s1, s2 = noise_npz(tmp_path / "S1.npz", 1), noise_npz(tmp_path / "S2.npz", 2)
    first = _append(capsys, s1, done_out)
    assert_no_traceback(first)
    assert first.code == 0, first.describe()
    before = snapshot(done_out)
    res = _append(capsys, s2, done_out)
    assert_rejected(res, "--replace")
    assert len(model_rows(done_out, "ext1")) == 1
    assert_unchanged(before, done_out)


def test_replace_swaps_the_external_sample_set(capsys, done_out, tmp_path):
    s1, s2 = noise_npz(tmp_path / "S1.npz", 1), noise_npz(tmp_path / "S2.npz", 2)
    alone = cli(capsys, "score", s2, "--dataset", "facemask", "--profile", "smoke", "--ratio", "0", "--seed", "0",
                "--out", done_out, "--json")  # fmt: skip  # S2's own score (the caches are the cell's)
    assert alone.code == 0, alone.describe()
    s2_pct = json.loads(alone.out)["pct_inliers"]
    first = _append(capsys, s1, done_out)
    assert first.code == 0, first.describe()
    res = _append(capsys, s2, done_out, "--replace")
    assert_no_traceback(res)
    assert res.code == 0, res.describe()
    rows = model_rows(done_out, "ext1")
    assert len(rows) == 1, f"runs.csv holds {len(rows)} ext1 rows after --replace:\n{rows}"
    assert float(rows.iloc[0].pct_inliers) == pytest.approx(s2_pct, abs=1e-4)
    cells = _ext_cells(done_out)
    assert len(cells) == 1, f"cell folders after --replace: {cells}"
    with np.load(cells[0] / "samples.npz") as z, np.load(s2) as want:
        assert np.array_equal(z["samples"], want["samples"]), "the remaining ext1 cell does not hold S2"


def test_same_external_sample_set_twice_is_one_row(capsys, done_out, tmp_path):
    s1 = noise_npz(tmp_path / "S1.npz", 1)
    for _ in range(2):
        res = _append(capsys, s1, done_out)
        assert_no_traceback(res)
        assert res.code == 0, res.describe()
    assert len(model_rows(done_out, "ext1")) == 1
    assert len(_ext_cells(done_out)) == 1


# --------------------------------------------------------------------------------------------------- 7. model output


BAD_MODELS = {
    # name: (write_plugin keyword arguments, the phase the error line must name)
    "probe_half": ({"sample": "x = x[: n // 2]"}, "sample"),
    "probe_numpy": ({"sample": "x = x.numpy()"}, "sample"),
    "probe_float": ({"sample": "x = x.float() * 2.0 - 100.0"}, "sample"),
    "probe_shape": ({"sample": "x = x[:, :, : x.shape[2] // 2, : x.shape[3] // 2].contiguous()"}, "sample"),
    "probe_fitfail": ({"fit": 'raise RuntimeError("probe: fit failed on purpose")'}, "fit"),
    "probe_exit": ({"top": "import sys\nsys.exit(3)"}, "import"),
}


@pytest.mark.parametrize(
    "name, jobs",
    [pytest.param(n, 1, id=f"{n}-jobs1") for n in BAD_MODELS]
    + [pytest.param("probe_half", 2, id="probe_half-jobs2"), pytest.param("probe_fitfail", 2, id="probe_fitfail-jobs2")],
)  # fmt: skip
def test_bad_model_output_is_one_line(capsys, finished, tmp_path, name, jobs):
    """A plug-in whose sample() returns too few images, a numpy array, floats out of [0, 255] or the wrong image size,
    whose fit() raises, or whose import calls sys.exit: one line naming the model and the phase; no finished cell."""
    kwargs, phase = BAD_MODELS[name]
    plugin = write_plugin(tmp_path / "src", name, **kwargs)
    out = with_caches(finished, tmp_path / "O")
    res = cli(capsys, "run", "--plugin", plugin, "--profile", "smoke", "--models", name, "--datasets", "facemask",
              "--ratios", "0", "--out", out, "--jobs", str(jobs))  # fmt: skip
    if phase == "import":  # found while planning, before any work: the one line is all of stderr
        assert_rejected(res, re.escape(name), phase)
    else:
        assert_failed_in_run(res, re.escape(name), phase)
    done = sorted(os.fsdecode(p) for p in (out / "cells").rglob("done.json")) if (out / "cells").exists() else []
    assert not done, f"a finished cell was recorded for a model that broke the contract: {done}"
    assert_no_tmp(out)


# --------------------------------------------------------------------------------------------------- 8. copied done.json


def _copy_done_to_seed_1(out: Path) -> Path:
    real = cell_dir(out)
    fake = out / "cells" / "facemask" / "vqvae" / "r0" / "s1" / real.name
    fake.mkdir(parents=True)
    shutil.copy2(real / "done.json", fake / "done.json")
    return fake


def test_report_ignores_a_copied_done_json(capsys, done_out):
    """done.json copied into another cell's folder (seed 1) is not a result: one row, one cell, a note naming it."""
    fake = _copy_done_to_seed_1(done_out)
    remove_report(done_out)
    row = json.loads((cell_dir(done_out) / "done.json").read_text())["row"]
    res = cli(capsys, "report", "--out", done_out)
    assert_no_traceback(res)
    assert res.code == 0, res.describe()
    assert names_cell(res.err, fake), f"the copied done.json's folder is not named on stderr: {res.describe()}"
    assert len(pd.read_csv(done_out / "runs.csv")) == 1, (done_out / "runs.csv").read_text()
    assert re.search(r"Cells: 1\b", (done_out / "report" / "report.md").read_text()), "the copy counted as a cell"
    t1 = pd.read_csv(done_out / "report" / "table1.csv", dtype=str, keep_default_na=False)
    shown = t1[t1.iloc[:, 0] == "VQ-VAE"].iloc[0]["0%"]
    assert shown == f"{row['pct_inliers']:.2f}", f"table1 shows {shown!r}: a mean over the real cell and its copy"


def test_dry_run_does_not_count_a_copied_done_json(capsys, done_out):
    _copy_done_to_seed_1(done_out)
    res = cli(capsys, "run", *GRID, "--seeds", "1", "--out", done_out, "--dry-run")
    assert_no_traceback(res)
    assert res.code == 0, res.describe()
    assert dry_run_state(res, "facemask/vqvae/r0/s1") == "todo"


# --------------------------------------------------------------------------------------------------- 9. digest


def _forge_digest(out: Path) -> tuple[Path, dict]:
    cell = cell_dir(out)
    row = json.loads((cell / "done.json").read_text())["row"]
    forged = "f" * 64 if row["config_digest"] != "f" * 64 else "e" * 64
    edit_row(cell, config_digest=forged)
    return cell, row


def test_dry_run_with_done_json_digest_not_matching_its_folder(capsys, done_out):
    _forge_digest(done_out)
    res = cli(capsys, "run", *GRID, "--out", done_out, "--dry-run")
    assert_no_traceback(res)
    assert res.code == 0, res.describe()
    assert dry_run_state(res, "facemask/vqvae/r0/s0") == "todo"


def test_report_with_done_json_digest_not_matching_its_folder(capsys, two_out):
    cell, row = _forge_digest(two_out)
    remove_report(two_out)
    res = cli(capsys, "report", "--out", two_out)
    assert_no_traceback(res)
    assert res.code in (0, 2), res.describe()
    if res.code == 2:
        assert_rejected(res)
    assert names_cell(res.err, cell), f"the cell whose digest does not match is not named: {res.describe()}"
    fd = f"{row['fd_classifier']:.3f}"
    for md in sorted((two_out / "report").glob("*.md")) if (two_out / "report").exists() else []:
        assert fd not in md.read_text(), f"{md.name} shows the unbacked cell's fd_classifier {fd}"


# --------------------------------------------------------------------------------------------------- 10. edited number


def test_report_does_not_show_an_edited_number(capsys, two_out):
    """done.json says pct_inliers 12.345, metrics.json (and the samples) say otherwise: the number is not shown."""
    cell = cell_dir(two_out)
    edit_row(cell, pct_inliers=12.345)
    remove_report(two_out)
    res = cli(capsys, "report", "--out", two_out)
    assert_no_traceback(res)
    assert res.code in (0, 2), res.describe()
    if res.code == 2:
        assert_rejected(res)
    assert names_cell(res.err, cell), f"the edited cell is not named as inconsistent: {res.describe()}"
    assert "12.345" not in (two_out / "runs.csv").read_text(), "runs.csv carries the edited number"
    for md in sorted((two_out / "report").glob("*.md")) if (two_out / "report").exists() else []:
        assert not re.search(r"12\.3[45]", md.read_text()), f"{md.name} shows the edited number"


# --------------------------------------------------------------------------------------------------- 11. damaged records


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda c: (c / "done.json").write_text('{"row": {}}'), id="empty-row"),
        pytest.param(lambda c: edit_row(c, pct_inliers="abc"), id="pct-inliers-abc"),
    ],
)
def test_report_on_damaged_done_json(capsys, two_out, damage):
    cell = cell_dir(two_out)
    damage(cell)
    res = cli(capsys, "report", "--out", two_out)
    assert_no_traceback(res)
    assert res.code in (0, 2), res.describe()
    if res.code == 2:
        assert_rejected(res)
    else:
        assert names_cell(res.err, cell) or "done.json" in res.err, f"the damaged record is not noted: {res.describe()}"
    fields = [f.strip().lower() for f in csv_fields(two_out / "runs.csv")]
    assert "abc" not in fields and "nan" not in fields, (two_out / "runs.csv").read_text()


# --------------------------------------------------------------------------------------------------- 12. runs.csv a dir


def _runs_csv_folder(out: Path) -> None:
    (out / "runs.csv").unlink()
    (out / "runs.csv").mkdir()


def test_report_when_runs_csv_is_a_folder(capsys, done_out):
    _runs_csv_folder(done_out)
    res = cli(capsys, "report", "--out", done_out)
    assert_rejected(res, "runs.csv")
    assert (done_out / "runs.csv").is_dir()


def test_run_when_runs_csv_is_a_folder(capsys, done_out):
    _runs_csv_folder(done_out)
    before = snapshot(done_out)
    res = cli(capsys, *B, "--out", done_out)
    assert_rejected(res, "runs.csv")
    assert_unchanged(before, done_out)


# --------------------------------------------------------------------------------------------------- 13. --data-root


def test_data_root_for_a_dataset_not_in_the_grid(capsys, finished, tmp_path):
    other = tmp_path / "rooms"
    other.mkdir()
    out = with_caches(finished, tmp_path / "O")
    before = snapshot(out)
    res = cli(capsys, *B, "--data-root", f"roomcrop={other}", "--out", out)
    assert_rejected(res, "roomcrop")
    assert_unchanged(before, out)
    assert not (out / "cells").exists() and not (out / "runs.csv").exists()


# --------------------------------------------------------------------------------------------------- 14. cannot write


class _FailingOs:
    """``os`` for bench.atomic whose ``replace`` fails (disk full, no permission); everything else is os's."""

    def __init__(self, exc: OSError):
        self._exc = exc

    def replace(self, *args, **kwargs):
        raise self._exc

    def __getattr__(self, name):
        return getattr(os, name)


DISK_FULL = OSError(errno.ENOSPC, "No space left on device")
NO_PERMISSION = PermissionError(errno.EACCES, "Permission denied")


def test_report_on_a_full_disk(capsys, done_out, monkeypatch):
    monkeypatch.setattr(bench.atomic, "os", _FailingOs(DISK_FULL))
    res = cli(capsys, "report", "--out", done_out)
    assert_rejected(res)
    assert_no_tmp(done_out)


def test_eval_without_write_permission(capsys, done_out, monkeypatch):
    monkeypatch.setattr(bench.atomic, "os", _FailingOs(NO_PERMISSION))
    res = cli(capsys, "eval", "--cell", cell_dir(done_out))
    assert_rejected(res)
    assert_no_tmp(done_out)


def test_report_without_write_permission(capsys, done_out, monkeypatch):
    monkeypatch.setattr(bench.atomic, "os", _FailingOs(NO_PERMISSION))
    res = cli(capsys, "report", "--out", done_out)
    assert_rejected(res)
    assert_no_tmp(done_out)


# --------------------------------------------------------------------------------------------------- 15. api.score


def test_api_score_ragged_list_of_tensors(tmp_path):
    from bench import api

    ragged = [torch.zeros(3, SIZE, SIZE, dtype=torch.uint8), torch.zeros(3, SIZE + 4, SIZE, dtype=torch.uint8)]
    with pytest.raises(BenchError):
        api.score(ragged, "facemask", profile="smoke", out=tmp_path / "o")
