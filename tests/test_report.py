"""bench report: every table and figure from stored results, paper values alongside, no retraining."""

import pandas as pd
import pytest

from bench import report, runner
from bench.config import load_profile
from tests.test_runner import FAST, _test_model_registered  # noqa: F401  (registers the test double)


@pytest.fixture
def grid(tmp_path):
    sets = FAST + ["data.roomcrop.inliers=40", "data.roomcrop.classifier_train_per_class=20",
                   "data.roomcrop.classifier_test_per_class=10", "data.roomcrop.reference=20",
                   "data.roomcrop.pool_per_half=100"]  # fmt: skip
    spec = runner.GridSpec(load_profile("smoke", None, sets), tmp_path, {}, 1)
    cells = runner.expand(["facemask", "roomcrop"], ["test_mean"], [0, 30], [0, 1])
    runner.run_grid(spec, cells)
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
    t5 = pd.read_csv(folder / "table5.csv")
    assert "FaceMask (paper)" in set(t5.iloc[:, 0]) and t5.filter(like="30%").notna().all().all()


def test_table_cells_are_mean_and_ci_over_seeds(grid):
    report.write_report(grid)
    t1 = pd.read_csv(grid / "report" / "table1.csv")
    ours = t1[t1.iloc[:, 0] == "test_mean (ours)"].iloc[0]
    assert "±" in ours["30%"]  # two seeds -> mean ± 95 % half-width
    df = pd.read_csv(grid / "runs.csv")
    sel = df[(df.dataset == "facemask") & (df.ratio == 30)].pct_inliers
    m, hw, n = report.mean_ci(sel)
    assert n == 2 and ours["30%"] == f"{m:.2f} ± {hw:.2f}"


def test_side_by_side_grid_puts_models_in_the_paper_order(tmp_path):
    import torch
    from PIL import Image

    from bench.grids import save_grid
    from bench.store import Cell

    colours = {"gan": 0, "rvqvae": 255}  # all-black GAN samples, all-white RVQ-VAE samples
    for model, value in colours.items():
        save_grid(Cell("facemask", model, 30.0, 0).folder(tmp_path) / "samples.png",
                  torch.full((4, 3, 16, 16), value, dtype=torch.uint8), upscale=1)
    df = pd.DataFrame({"dataset": "facemask", "model": ["gan", "rvqvae"], "ratio": 30.0, "seed": 0})
    names = report._copy_grids(tmp_path, df, tmp_path / "report")
    assert "grids/facemask_r30_models.png" in names
    both = Image.open(tmp_path / "report" / "grids" / "facemask_r30_models.png").convert("L")
    one = Image.open(tmp_path / "report" / "grids" / "facemask_gan_r30.png")
    assert both.width == 2 * one.width + 10 and both.height == one.height + 24
    y = 24 + one.height // 2 + 1  # inside a sample, below the label row
    left, right = both.getpixel((3, y)), both.getpixel((one.width + 10 + 3, y))
    assert (left, right) == (255, 0)  # RVQ-VAE left of GAN, whatever order the rows came in


def test_mean_ci_hand_checked():
    m, hw, n = report.mean_ci([1.0, 2.0, 3.0])
    assert (m, n) == (2.0, 3) and hw == pytest.approx(4.303 * 1.0 / 3**0.5)
    assert report.mean_ci([5.0])[1] != report.mean_ci([5.0])[1]  # nan for one seed


def test_dask_backend_gives_identical_rows(tmp_path):
    pytest.importorskip("distributed", reason="optional extra dask[distributed] not installed")
    prof = load_profile("smoke", None, FAST)
    cells = runner.expand(["facemask"], ["vqvae", "gan"], [0, 30], [0])  # real smoke models
    plain = runner.run_grid(runner.GridSpec(prof, tmp_path / "a", {}, 1), cells)
    dask = runner.run_grid(runner.GridSpec(prof, tmp_path / "b", {}, 2), cells, backend="dask")
    timing = {"train_s", "sample_s", "eval_s", "img_per_s", "peak_rss_mb"}
    key = lambda r: (r["dataset"], r["model"], r["ratio"])
    assert len(dask) == len(cells)
    for a, b in zip(sorted(plain, key=key), sorted(dask, key=key)):
        assert {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}


@pytest.mark.slow
def test_parallel_loky_cells_match_sequential(tmp_path):
    """--jobs 2 (loky processes, one thread each) gives the same rows as one job, minus timings."""
    prof = load_profile("smoke", None, FAST)
    cells = runner.expand(["facemask"], ["vqvae"], [0, 30], [0])
    seq = runner.run_grid(runner.GridSpec(prof, tmp_path / "a", {}, 1), cells)
    par = runner.run_grid(runner.GridSpec(prof, tmp_path / "b", {}, 2), cells)
    timing = {"train_s", "sample_s", "eval_s", "img_per_s", "peak_rss_mb"}
    key = lambda r: (r["dataset"], r["ratio"])
    assert len(par) == 2
    for a, b in zip(sorted(seq, key=key), sorted(par, key=key)):
        assert {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}


def test_ratio_columns_are_in_numeric_order_whatever_the_row_order():
    from bench.report import Table

    t = Table("t", "T", "c", 2)
    t.add("a", {"5%": "x", "30%": "y"})  # a model without a 0 % entry comes first
    t.add("b", {"0%": "z", "5%": "w", "10%": "v"})
    assert list(t.frame().columns) == ["", "0%", "5%", "10%", "30%"]
