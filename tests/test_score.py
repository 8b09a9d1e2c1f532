"""bench score: external samples scored exactly as a cell is, cached evaluators, external cells in reports, bad input."""

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from bench import api
from bench.cli import main
from tests.grid_helpers import FAST, FAST_SETS, mean_plugin, run_grid  # noqa: F401  (fixture)

SETS = [a for s in FAST_SETS for a in ("--set", s)]
METRICS = ("pct_inliers", "fd_classifier", "kid", "precision", "recall", "robustness", "pct_replay",
           "pct_replay_inliers")  # fmt: skip


@pytest.fixture
def finished(tmp_path, mean_plugin):
    _, planned = run_grid(tmp_path / "out", ["test_mean"], ratios=[30])
    return tmp_path / "out", planned[0].job.folder


def test_score_of_a_cells_samples_equals_its_row(finished, capsys):
    out, cell = finished
    row = json.loads((cell / "done.json").read_text())["row"]
    assert main(["score", str(cell / "samples.npz"), "--dataset", "facemask", "--profile", "smoke", "--seed", "0",
                 "--ratio", "30", "--out", str(out), "--json", *SETS]) == 0  # fmt: skip
    got = json.loads(capsys.readouterr().out)
    for k in METRICS:
        assert got[k] == pytest.approx(row[k], rel=1e-9, abs=1e-12), k
    assert got["n"] == row["n_samples"]


def test_png_folder_made_outside_the_harness_and_no_recomputation(finished, tmp_path, capsys):
    out, cell = finished
    samples = np.load(cell / "samples.npz")["samples"]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(samples):  # written by "another code base", at 32 px: resized like the builder does
        Image.fromarray(img.transpose(1, 2, 0)).resize((32, 32), Image.Resampling.NEAREST).save(folder / f"{i:03d}.png")
    cache = out / "cache"
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    t0 = time.perf_counter()
    first = api.score(folder, "facemask", profile="smoke", out=out, overrides=FAST)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = api.score(cell / "samples.npz", "facemask", profile="smoke", out=out, overrides=FAST)
    t_second = time.perf_counter() - t0
    assert {p: p.stat().st_mtime_ns for p in before} == before  # classifier and reference features reused
    assert first["n"] == len(samples) and any("resized 32x32 -> 16x16" in n for n in first["notes"])
    assert 0 <= first["pct_inliers"] <= 100 and second["fd_classifier"] is not None
    assert t_first > 0 and t_second > 0


def test_appended_external_cell_appears_in_the_report(finished, tmp_path, capsys):
    out, cell = finished
    samples = torch.from_numpy(np.load(cell / "samples.npz")["samples"])
    path = tmp_path / "mine.pt"
    torch.save(samples.permute(0, 2, 3, 1).contiguous(), path)  # N x H x W x 3 is accepted too
    assert main(["score", str(path), "--dataset", "facemask", "--profile", "smoke", "--ratio", "30", "--append-to",
                 str(out), "--model-name", "my-gan", *SETS]) == 0  # fmt: skip
    assert "appended as an external cell" in capsys.readouterr().out
    assert main(["report", "--out", str(out)]) == 0
    t1 = pd.read_csv(out / "report" / "table1.csv", dtype=str, keep_default_na=False)
    assert "my-gan (external)" in set(t1.iloc[:, 0])
    df = pd.read_csv(out / "runs.csv")
    ext = df[df.model == "my-gan"].iloc[0]
    assert ext.kind == "external" and ext.variant == "external" and len(ext.config_digest) == 64
    assert (out / "report" / "grids" / "facemask_my-gan_r30.png").exists()


def _npz(path, arr):
    np.savez(path, samples=arr)
    return path


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: (d / "empty").mkdir() or d / "empty", "no images in"),
        (lambda d: _mixed(d), "mixed image sizes"),
        (lambda d: _npz(d / "f.npz", np.zeros((4, 3, 16, 16), np.float32)), "must be uint8"),
        (lambda d: _npz(d / "g.npz", np.zeros((4, 1, 16, 16), np.uint8)), "1 channel"),
        (lambda d: _gray(d), "not RGB"),
        (lambda d: _npz(d / "k.npz", np.zeros((0, 3, 16, 16), np.uint8)), "empty"),
        (lambda d: d / "missing.npz", "samples not found"),
        (lambda d: _junk(d / "x.npz"), "not a readable .npz"),
    ],
)  # fmt: skip
def test_bad_score_input_is_one_line(tmp_path, capsys, make, fragment):
    target = make(tmp_path)
    code = main(["score", str(target), "--dataset", "facemask", "--profile", "smoke", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and fragment in err and "Traceback" not in err, err
    assert not (tmp_path / "o" / "cache").exists()  # rejected before any split or classifier work


def test_unknown_dataset_for_score(tmp_path, capsys):
    assert main(["score", str(tmp_path), "--dataset", "celeba"]) == 2
    assert "unknown dataset 'celeba'" in capsys.readouterr().err


def _junk(path):
    path.write_bytes(b"junk")
    return path


def _mixed(d):
    f = d / "mixed"
    f.mkdir()
    Image.new("RGB", (16, 16)).save(f / "a.png")
    Image.new("RGB", (32, 32)).save(f / "b.png")
    return f


def _gray(d):
    f = d / "gray"
    f.mkdir()
    Image.new("L", (16, 16)).save(f / "a.png")
    return f
