"""bench report: every table and figure from stored results, paper values alongside, no retraining."""

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from bench import report, store
from tests.grid_helpers import ROOMCROP_FAST, mean_plugin, run_grid  # noqa: F401  (fixture)


@pytest.fixture
def grid(tmp_path, mean_plugin):
    run_grid(
        tmp_path, ["test_mean", "replay", "replay-inliers"], ["facemask", "roomcrop"], [0, 30], [0, 1], **ROOMCROP_FAST
    )
    return tmp_path


def test_report_writes_all_tables_and_figures(grid):
    path = report.write_report(grid)
    folder = grid / "report"
    assert path == folder / "report.md"
    for n in (1, 2, 3, 4, 5):
        for ext in ("md", "tex", "csv"):
            assert (folder / f"table{n}.{ext}").stat().st_size > 0
    assert (folder / "fig4.png").stat().st_size > 1000 and (folder / "fig4.svg").exists()
    for ds in ("facemask", "roomcrop"):
        for r in (0, 30):
            assert (folder / "grids" / f"{ds}_test_mean_r{r}.png").exists()
    text = path.read_text()
    assert "NOT FID" in text and "synthetic" in text  # metric kind and data source stated
    assert "SMOKE PROFILE" in text and "carry no meaning" in text  # smoke numbers are labelled
    assert "(36 samples)" in text  # the real number of samples in each grid
    t5 = pd.read_csv(folder / "table5.csv")
    assert "FaceMask (ours)" in set(t5.iloc[:, 0]) and t5.filter(like="30%").notna().all().all()
    assert "FaceMask (paper)" not in set(t5.iloc[:, 0])  # synthetic smoke data: no paper comparison
    t1 = pd.read_csv(folder / "table1.csv", dtype=str, keep_default_na=False)
    labels = list(t1.iloc[:, 0])
    assert "difference" not in labels and not any("(paper)" in x for x in labels)
    sep = labels.index("— reference generators (not methods) —")
    assert labels[sep + 1 :] == ["replay (no robustness)", "replay inliers (oracle)"] and labels[:sep] == ["test_mean"]
    rob = pd.read_csv(folder / "table_facemask_robustness.csv", dtype=str, keep_default_na=False)
    replay = rob[rob.iloc[:, 0] == "replay (no robustness)"].iloc[0]
    assert replay["30%"].startswith("0.00") and "recall" in replay["30%"]


def test_bench_report_prints_the_headline_table_before_the_path(grid, capsys):
    from bench.cli import main

    capsys.readouterr()
    assert main(["report", "--out", str(grid)]) == 0
    printed = capsys.readouterr().out.rstrip().splitlines()
    assert printed[-1] == f"report written to {grid / 'report' / 'report.md'}"
    head = printed.index(next(line for line in printed if line.startswith("FaceMask (smoke profile")))
    assert "% generated inliers" in printed[head] and printed[head + 1].startswith("(settings changed")
    assert printed[head + 2].split() == ["r", "=", "0", "%", "r", "=", "30", "%"]
    assert printed[head + 3].startswith("training data (for scale)") and printed[head + 4].startswith("test_mean")
    assert any(line.startswith("RoomCrop (smoke profile") for line in printed)


def test_report_on_exported_results_without_cells():
    """Results folders written by earlier versions (runs.csv only, docs/results-standin/) still load."""
    import shutil
    import tempfile

    src = Path(__file__).resolve().parents[1] / "docs" / "results-standin" / "facemask" / "runs.csv"
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(src, Path(tmp) / "runs.csv")
        path = report.write_report(Path(tmp))
        text = path.read_text()
        assert "no cell folders here" in text
        t1 = pd.read_csv(Path(tmp) / "report" / "table1.csv", dtype=str, keep_default_na=False)
        gan = t1[t1.iloc[:, 0] == "GAN"].iloc[0]
        assert gan["30%"] == "66.10" and gan["0%"] == "98.77"  # the recorded number, unchanged


def test_variants_are_separate_rows(tmp_path, mean_plugin):
    run_grid(tmp_path, ["test_mean"], ratios=[30])
    run_grid(tmp_path, ["test_mean"], ratios=[30], **{"models.test_mean.noise": 3.0})
    report.write_report(tmp_path)
    t1 = pd.read_csv(tmp_path / "report" / "table1.csv", dtype=str, keep_default_na=False)
    assert list(t1.iloc[:, 0]) == ["test_mean", "test_mean (noise=3)"]
    assert "±" not in "".join(t1["30%"])  # one seed each: never averaged together


def test_table_cells_are_mean_and_ci_over_seeds(grid):
    report.write_report(grid)
    t1 = pd.read_csv(grid / "report" / "table1.csv")
    ours = t1[t1.iloc[:, 0] == "test_mean"].iloc[0]
    assert "±" in ours["30%"]  # two seeds -> mean ± 95 % half-width
    df = pd.read_csv(grid / "runs.csv")
    sel = df[(df.dataset == "facemask") & (df.ratio == 30) & (df.model == "test_mean")].pct_inliers
    m, hw, n = report.mean_ci(sel)
    assert n == 2 and ours["30%"] == f"{m:.2f} ± {hw:.2f}"


def test_side_by_side_image_has_models_in_rows_at_screen_width(tmp_path):
    """One image per dataset and ratio: a configuration per row (label column on the left, readable font), at most
    1600 px wide, in the paper's order whatever order the rows came in (it was a 4848 x 708 strip with 8 px titles)."""
    import numpy as np
    import torch
    from PIL import Image

    colours = {"gan": (255, 0, 0), "rvqvae": (0, 0, 255)}  # all-red GAN samples, all-blue RVQ-VAE samples
    results = store.ResultsStore(tmp_path)
    for model, value in colours.items():
        digest = hashlib.sha256(model.encode()).hexdigest()
        record = store.CellRecord.from_row({"dataset": "facemask", "model": model, "ratio": 30.0, "seed": 0,
                                            "profile": "cpu", "config_digest": digest, "settings_digest": digest,
                                            "pct_inliers": 50.0})  # fmt: skip
        folder = results.cell_folder(record.cell, digest)
        samples = torch.tensor(value, dtype=torch.uint8).view(1, 3, 1, 1).expand(100, 3, 16, 16).contiguous()
        results.begin_cell(folder, {"config_digest": digest})
        results.write_samples(folder, samples, 100)
        results.finish_cell(folder, record, {})
    ctx = report.load_context(tmp_path)
    names = [n for n, _ in report._copy_grids(ctx, tmp_path / "report")]
    assert "grids/facemask_r30_models.png" in names
    both = np.asarray(Image.open(tmp_path / "report" / "grids" / "facemask_r30_models.png").convert("RGB")).astype(int)
    height, width, _ = both.shape
    assert width <= report.SIDE_BY_SIDE_WIDTH and height < width  # a screen's shape, not a 7:1 strip
    column = both[:, width - 20]  # through the last samples of each row
    blue = [y for y in range(height) if tuple(column[y]) == (0, 0, 255)]
    red = [y for y in range(height) if tuple(column[y]) == (255, 0, 0)]
    assert blue and red and max(blue) < min(red)  # RVQ-VAE's row above GAN's
    label_col = both[:, : width // 5].sum(axis=2)
    for ys, title in ((blue, "RVQ-VAE"), (red, "GAN")):
        ink = [y for y in range(min(ys), max(ys) + 1) if (label_col[y] < 200).any()]
        assert ink and max(ink) - min(ink) >= 12, title  # its label, left of its samples, >= 12 px tall glyphs


def test_mean_ci_hand_checked():
    m, hw, n = report.mean_ci([1.0, 2.0, 3.0])
    assert (m, n) == (2.0, 3) and hw == pytest.approx(4.303 * 1.0 / 3**0.5)
    assert report.mean_ci([5.0])[1] != report.mean_ci([5.0])[1]  # nan for one seed


# Not results: timings, and the code commit a process read at start (a commit landing mid-test changes it)
TIMING = {"train_s", "sample_s", "eval_s", "img_per_s", "peak_rss_mb", "commit"}


def test_dask_backend_gives_identical_rows(tmp_path):
    pytest.importorskip("distributed", reason="the dask extra is part of the test install: pip install -e '.[test]'")
    plain, _ = run_grid(tmp_path / "a", ["vqvae", "gan"])  # real smoke models
    dask, _ = run_grid(tmp_path / "b", ["vqvae", "gan"], jobs=2, backend="dask")

    def key(r):
        return (r["dataset"], r["model"], r["ratio"])

    assert len(dask) == 4
    for a, b in zip(sorted(plain, key=key), sorted(dask, key=key)):
        assert {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}


@pytest.mark.slow
def test_parallel_loky_cells_match_sequential(tmp_path):
    """--jobs 2 (loky processes, one thread each) gives the same rows as one job, minus timings."""
    seq, _ = run_grid(tmp_path / "a", ["vqvae"])
    par, _ = run_grid(tmp_path / "b", ["vqvae"], jobs=2)

    def key(r):
        return (r["dataset"], r["ratio"])

    assert len(par) == 2
    for a, b in zip(sorted(seq, key=key), sorted(par, key=key)):
        assert {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}


def test_ratio_columns_are_in_numeric_order_whatever_the_row_order():
    from bench.report import Table

    t = Table("t", "T", "c", 2)
    t.add("a", {"5%": "x", "30%": "y"})  # a model without a 0 % entry comes first
    t.add("b", {"0%": "z", "5%": "w", "10%": "v"})
    assert list(t.frame().columns) == ["", "0%", "5%", "10%", "30%"]
