"""The grid runner: rows, resume after a kill, no recomputation of finished cells."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import runner, store
from bench.config import load_profile
from bench.models.base import FitConfig, GenerativeModel
from bench.registry import register_model

FAST = [
    "data.facemask.inliers=40", "data.facemask.classifier_train_per_class=20",
    "data.facemask.classifier_test_per_class=10", "data.facemask.reference=20",
    "eval.classifier_epochs=2", "eval.max_generated=40",
]  # fmt: skip


from dataclasses import dataclass

from bench import registry


@dataclass
class MeanCfg:
    noise: float = 10.0
    sleep_s: float = 0.0


class MeanImageModel(GenerativeModel):
    """Test double: samples the training mean plus noise."""

    def fit(self, train_images, train_is_outlier, cfg: FitConfig, progress=None):
        time.sleep(self.cfg.sleep_s)
        self.mean = train_images.float().mean(0)
        return {"images_seen": len(train_images)}

    def sample(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        x = self.mean + self.cfg.noise * torch.randn((n, *self.mean.shape), generator=g)
        return x.round().clamp(0, 255).to(torch.uint8)

    def state_dict(self):
        return {"mean": self.mean}

    def load_state_dict(self, state):
        self.mean = state["mean"]


def register_test_model():
    register_model("test_mean", config=MeanCfg)(MeanImageModel)


@pytest.fixture(autouse=True)
def _test_model_registered():
    register_test_model()
    yield
    registry._REGISTRY.pop("test_mean", None)


def test_grid_writes_rows_cells_and_skips_finished(tmp_path):
    prof = load_profile("smoke", None, FAST)
    spec = runner.GridSpec(prof, tmp_path, {}, 1)
    cells = runner.expand(["facemask"], ["test_mean"], [0, 30], [0])
    rows = runner.run_grid(spec, cells)
    assert len(rows) == 2
    df = store.read_frame(tmp_path)
    assert list(df.columns) == list(store.COLUMNS)
    assert sorted(df.ratio) == [0, 30] and set(df.n_outliers) == {0, 17}
    assert df.pct_inliers.between(0, 100).all() and df.fd_classifier.notna().all()
    folder = cells[1].folder(tmp_path)
    for name in ("config.json", "metrics.json", "samples.npz", "samples.png", "model.pt", "done.json"):
        assert (folder / name).exists(), name
    assert (tmp_path / "f1" / "facemask_s0.csv").exists()
    stamp = (folder / "done.json").stat().st_mtime_ns
    runner.run_grid(spec, cells)  # rerun: nothing recomputed, still one row per cell
    assert (folder / "done.json").stat().st_mtime_ns == stamp
    assert len(store.read_frame(tmp_path)) == 2


def test_saved_model_reproduces_samples(tmp_path):
    prof = load_profile("smoke", None, FAST)
    spec = runner.GridSpec(prof, tmp_path, {}, 1)
    (cell,) = runner.expand(["facemask"], ["test_mean"], [10], [3])
    runner.run_cell(spec, cell)
    folder = cell.folder(tmp_path)
    import numpy as np

    stored = torch.from_numpy(np.load(folder / "samples.npz")["samples"])
    model = GenerativeModel.load(folder / "model.pt")
    assert torch.equal(model.sample(len(stored), seed=3), stored)


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import test_runner
from bench.cli import main
test_runner.register_test_model()
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_killed_grid_resumes_without_recomputing(tmp_path):
    script = tmp_path / "bench_with_test_model.py"
    script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parent)))
    out = tmp_path / "out"
    args = [sys.executable, str(script), "run", "--profile", "smoke", "--models", "test_mean", "--datasets", "facemask",
            "--ratios", "0,10,20,30", "--out", str(out), "--set", "models.test_mean.sleep_s=2.0"]  # fmt: skip
    for s in FAST:
        args += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(store.read_rows(out)) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {r["ratio"]: (out / "cells/facemask/test_mean" / f"r{r['ratio']}" / "s0" / "done.json").stat().st_mtime_ns
                for r in store.read_rows(out)}  # fmt: skip
    assert 2 <= len(finished) < 4, "the kill should land mid-grid"
    assert len(pd.read_csv(out / "runs.csv")) == len(finished)  # the CSV is whole after the kill
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = store.read_rows(out)
    assert sorted(float(r["ratio"]) for r in rows) == [0, 10, 20, 30]  # each cell exactly once
    for ratio, stamp in finished.items():
        path = out / "cells/facemask/test_mean" / f"r{ratio}" / "s0" / "done.json"
        assert path.stat().st_mtime_ns == stamp, f"finished cell r{ratio} was recomputed"
    assert "pct_inliers" in done.stdout


def test_dry_run_lists_cells(tmp_path, capsys):
    from bench.cli import main

    assert main(["run", "--profile", "smoke", "--models", "test_mean", "--ratios", "0,5,...,15", "--dry-run",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "8 cells" in out and "todo  roomcrop/test_mean/r15/s0" in out
