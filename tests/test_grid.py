"""The grid: rows, cell identity (digests, stale cells), resume after a kill, no recomputation, no needless writes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench import api, grid, store
from bench.cli import main
from bench.models.base import GenerativeModel
from tests.grid_helpers import FAST, FAST_SETS, MEAN_PLUGIN, mean_plugin, run_grid  # noqa: F401  (fixture)


def test_grid_writes_rows_cells_and_skips_finished(tmp_path, mean_plugin):
    rows, planned = run_grid(tmp_path, ["test_mean"])
    assert len(rows) == 2
    df = store.read_frame(tmp_path)
    assert list(df.columns) == list(store.COLUMNS)
    assert sorted(df.ratio) == [0, 30] and set(df.n_outliers) == {0, 17}
    assert df.pct_inliers.between(0, 100).all() and df.fd_classifier.notna().all()
    assert df.config_digest.str.len().eq(64).all() and df.settings_digest.nunique() == 1
    assert df.variant.nunique() == 1 and "data.facemask.inliers=40" in df.variant[0]  # the non-default settings
    folder = planned[1].job.folder
    assert folder.parent == store.ResultsStore(tmp_path).cell_base(store.Cell("facemask", "test_mean", 30.0, 0))
    for name in ("config.json", "metrics.json", "samples.npz", "samples.png", "model.pt", "done.json"):
        assert (folder / name).exists(), name
    assert list((tmp_path / "f1").glob("facemask_s0_*.csv"))
    stamp, index = (folder / "done.json").stat().st_mtime_ns, (tmp_path / "runs.csv").stat().st_mtime_ns
    again, _ = run_grid(tmp_path, ["test_mean"])  # rerun: nothing recomputed, nothing written
    assert again == [] and (folder / "done.json").stat().st_mtime_ns == stamp
    assert (tmp_path / "runs.csv").stat().st_mtime_ns == index and len(store.read_frame(tmp_path)) == 2


def test_changed_settings_are_a_new_cell_beside_the_old(tmp_path, mean_plugin):
    run_grid(tmp_path, ["test_mean"], ratios=[30])
    spec, planned = api.plan(
        ["test_mean"],
        ["facemask"],
        [30],
        [0],
        profile="smoke",
        out=tmp_path,
        overrides={**FAST, "models.test_mean.noise": 3.0},
    )
    (p,) = planned
    assert p.state == "stale" and p.job.identity.variant.startswith("noise=3, data.facemask.")
    grid.run(spec, planned)
    base = store.ResultsStore(tmp_path).cell_base(store.Cell("facemask", "test_mean", 30.0, 0))
    assert len([d for d in base.iterdir() if (d / "done.json").exists()]) == 2  # both variants kept
    df = store.read_frame(tmp_path)
    assert df.variant.str.startswith("noise=3").sum() == 1 and df.config_digest.nunique() == 2
    _, again = run_grid(tmp_path, ["test_mean"], ratios=[30])  # the original settings: reused, 0 retraining
    assert again[0].state == "done"


def test_a_written_detector_table_is_not_sent_to_a_worker_again(tmp_path, mean_plugin):
    """A new cell on a split whose detector table exists: the table is seen while preparing, and no job reopens the
    split to find that out."""
    import io

    from bench.progress import LineProgress

    def run_logged(overrides):
        spec, planned = api.plan(["test_mean"], ["facemask"], [30], [0], profile="smoke", out=tmp_path,
                                 overrides={**FAST, **overrides})  # fmt: skip
        log = io.StringIO()
        grid.run(spec, planned, LineProgress(every_s=0, stream=log))
        return log.getvalue()

    assert "detector table facemask/r30/s0" in run_logged({})
    (table,) = (tmp_path / "detectors").glob("facemask_r30_s0_*.csv")
    stamp = table.stat().st_mtime_ns
    second = run_logged({"models.test_mean.noise": 3.0})  # another variant of the cell: same split
    assert "cell 1/1 finished" in second and "detector table" not in second
    assert table.stat().st_mtime_ns == stamp


def test_saved_model_reproduces_samples(tmp_path, mean_plugin):
    _, planned = run_grid(tmp_path, ["test_mean"], ratios=[10], seeds=[3])
    folder = planned[0].job.folder
    stored = torch.from_numpy(np.load(folder / "samples.npz")["samples"])
    model = GenerativeModel.load(folder / "model.pt")
    assert torch.equal(model.sample(len(stored), seed=3), stored)


def test_config_json_records_provenance(tmp_path, mean_plugin):
    import json

    _, planned = run_grid(tmp_path, ["test_mean"], ratios=[0])
    cfg = json.loads((planned[0].job.folder / "config.json").read_text())
    prov = cfg["provenance"]
    for key in ("python", "torch", "torchvision", "torch-fidelity", "numpy"):
        assert prov["versions"][key], key
    assert prov["platform"] and prov["device"] == "cpu" and "commit" in prov
    assert cfg["config_digest"] == planned[0].job.identity.config_digest
    assert cfg["plugins"] and cfg["plugins"][0]["sha256"] and cfg["plugins"][0]["file"].endswith("mean_model.py")


@pytest.mark.slow
def test_killed_grid_resumes_without_recomputing(tmp_path):
    out = tmp_path / "out"
    args = [sys.executable, "-m", "bench.cli", "run", "--plugin", MEAN_PLUGIN, "--profile", "smoke", "--models",
            "test_mean", "--datasets", "facemask", "--ratios", "0,10,20,30", "--out", str(out), "--no-report",
            "--set", "models.test_mean.sleep_s=2.0"]  # fmt: skip
    for s in FAST_SETS:
        args += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(store.ResultsStore(out).scan()[0]) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    results = store.ResultsStore(out)
    finished = {r.config_digest: (r.ratio, results.cell_folder(r.cell, r.config_digest) / "done.json")
                for r in results.scan()[0]}  # fmt: skip
    stamps = {d: path.stat().st_mtime_ns for d, (_, path) in finished.items()}
    assert 2 <= len(finished) < 4, "the kill should land mid-grid"
    assert len(pd.read_csv(out / "runs.csv")) == len(finished)  # the CSV is whole after the kill
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    records, problems = results.scan()
    assert sorted(r.ratio for r in records) == [0, 10, 20, 30] and not problems  # each cell exactly once
    for digest, (ratio, path) in finished.items():
        assert path.stat().st_mtime_ns == stamps[digest], f"finished cell r{ratio} was recomputed"
    assert "% generated inliers" in done.stdout


def test_dry_run_lists_cells(tmp_path, capsys, mean_plugin):
    assert main(["run", "--profile", "smoke", "--models", "test_mean", "--ratios", "0,5,...,15", "--dry-run",
                 "--datasets", "facemask,roomcrop", "--out", str(tmp_path)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert (
        "8 cells (profile smoke, training in fp32): 0 done, 8 todo, 0 stale" in out
        and "todo   " in out
        and "roomcrop/test_mean/r15/s0" in out
    )
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # a dry run writes nothing


def test_print_config_round_trip_gives_the_same_digests(tmp_path, capsys):
    assert main(["run", "--profile", "cpu", "--models", "rvqvae,gan", "--datasets", "facemask,roomcrop",
                 "--set", "models.rvqvae.eta=0.1", "--set", "data.roomcrop.params.reading=area",
                 "--print-config"]) == 0  # fmt: skip
    toml = capsys.readouterr().out
    assert toml.startswith("# robust-gen-bench") and 'profile = "cpu"' in toml and "eta = 0.1" in toml
    path = tmp_path / "resolved.toml"
    path.write_text(toml)
    common = dict(models="rvqvae,gan", datasets="facemask,roomcrop", ratios=[0, 30], seeds=[0], out=tmp_path / "o",
                  check_out=False)  # fmt: skip
    _, direct = api.plan(profile="cpu", overrides={"models.rvqvae.eta": 0.1, "data.roomcrop.params.reading": "area"},
                         **common)  # fmt: skip
    _, via_file = api.plan(config=path, **common)
    assert [p.job.identity.config_digest for p in direct] == [p.job.identity.config_digest for p in via_file]
    assert {p.job.identity.variant for p in via_file} >= {"eta=0.1", "data.roomcrop.params.reading=area"}


def test_bf16_is_another_cell_and_falls_back_to_fp32_in_one_line(tmp_path, monkeypatch, capsys):
    """run.precision=bf16 gets its own digest and variant (fp32 cells keep theirs); on a CPU without native bf16 the
    plan trains in fp32 and says why in one note."""
    from bench import precision

    base = dict(profile="smoke", out=tmp_path, check_out=False)
    _, (fp32,) = api.plan(["gan"], ["facemask"], [30], [0], **base)
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": (True, ""))
    spec, (bf16,) = api.plan(["gan"], ["facemask"], [30], [0], overrides={"run.precision": "bf16"}, **base)
    assert bf16.job.identity.config_digest != fp32.job.identity.config_digest and not spec.notes
    assert bf16.job.identity.variant == "precision=bf16" and fp32.job.identity.variant == ""
    assert bf16.job.profile["run"]["precision"] == "bf16"
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": (False, "no avx512_bf16"))
    spec, (fallback,) = api.plan(["gan"], ["facemask"], [30], [0], overrides={"run.precision": "bf16"}, **base)
    assert fallback.job.identity.config_digest == fp32.job.identity.config_digest
    assert spec.notes == ["note: precision bf16 requested but training runs in fp32 on cpu: no avx512_bf16"]
