"""The smoke grid of every registered model on the synthetic default, then the report (issue 7's CI check)."""

import pandas as pd
import pytest

from bench.cli import main
from bench.models import registry


@pytest.mark.slow
def test_smoke_grid_all_models_then_report(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["run", "--profile", "smoke", "--models", "all", "--ratios", "0,30", "--datasets", "facemask,roomcrop",
                 "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "% generated inliers" in printed and "SMOKE PROFILE" in printed and "carry no meaning" in printed
    df = pd.read_csv(out / "runs.csv")
    models = registry.names()
    assert len(df) == len(models) * 2 * 2
    assert df.groupby(["dataset", "model", "ratio"]).size().eq(1).all()
    assert df.pct_inliers.between(0, 100).all() and df.fd_classifier.notna().all()
    assert set(df.fid_kind) <= {"none", "inception"}
    rep = out / "report"  # written by the run itself
    for name in ["report.md", "fig4.png", "fig4.svg"] + [
        f"table{i}.{e}" for i in range(1, 6) for e in ("md", "tex", "csv")
    ]:
        assert (rep / name).exists(), name
    assert main(["report", "--out", str(out)]) == 0
    grids = list((rep / "grids").glob("*.png"))
    side_by_side = [g for g in grids if g.name.endswith("_models.png")]
    assert len(grids) - len(side_by_side) == len(df)  # one grid per cell
    assert len(side_by_side) == df.groupby(["dataset", "ratio"]).ngroups  # plus all models per dataset and ratio
