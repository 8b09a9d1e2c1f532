"""The headline that blur, noise, collapse or an incapable model cannot game: flagged robustness cells marked and never
called robust, recall beside the index, capacity controls apart, the classifier's validity said (loudly when failed),
in `bench report`'s summary and report.md, and recall as Fig. 4's fourth panel. Built from a hand-made results folder
(runs.csv and validity files), no training."""

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench import report, summary
from bench.record import COLUMNS, CellRecord

PROTOCOL = "a" * 64
CONTROL = "filter=outliers-only"


def _digest(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _row(model, ratio, seed, pct, index, recall, coverage, variant="", kind="model", recon=None) -> dict:
    return CellRecord.from_row({
        "dataset": "facemask", "model": model, "variant": variant, "ratio": ratio, "seed": seed, "profile": "cpu",
        "kind": kind, "n_samples": 100, "pct_inliers": pct, "robustness": index, "recall": recall,
        "coverage": coverage, "recall_replay_inliers": 0.6, "outlier_recon_pct_inliers": recon, "fd_classifier": 1.0,
        "protocol_digest": PROTOCOL, "config_digest": _digest(model, variant, ratio, seed),
        "settings_digest": _digest(model, variant),
    }).to_row()  # fmt: skip


def _validity(out: Path, failed_seed: int | None) -> None:
    (out / "validity").mkdir(parents=True, exist_ok=True)
    for seed in (0, 1):
        bad = seed == failed_seed
        v = pd.DataFrame([
            {"degradation": "none", "gated": True, "inliers_called_inliers": 98.0, "outliers_called_inliers": 2.0},
            {"degradation": "blur:2", "gated": True, "inliers_called_inliers": 97.0,
             "outliers_called_inliers": 30.0 if bad else 4.0},
            {"degradation": "jpeg:10", "gated": False, "inliers_called_inliers": 70.0, "outliers_called_inliers": 5.0},
        ])  # fmt: skip
        v["passed"] = (v.inliers_called_inliers >= 90) & (v.outliers_called_inliers <= 10)
        v = v.assign(dataset="facemask", seed=seed, profile="cpu", protocol=PROTOCOL)
        v.to_csv(out / "validity" / f"facemask_s{seed}_0123456789.csv", index=False)


def _folder(out: Path, failed_seed: int | None = None, controls: bool = True) -> Path:
    """GAN (robust, with a capacity control that draws outliers), VQ-VAE (high index, but 60 % of real outliers pass
    its reconstruction), the collapse probe (index 1.1 at coverage 0.02) and replay, two seeds."""
    rows = []
    for s in (0, 1):
        rows += [_row("gan", 0, s, 95, None, 0.5, 0.83), _row("gan", 30, s, 90 + s, 0.9 + s / 100, 0.48, 0.8),
                 _row("vqvae", 0, s, 96, None, 0.5, 0.83, recon=60.0),
                 _row("vqvae", 30, s, 95, 0.95, 0.5, 0.83, recon=60.0),
                 _row("collapse", 0, s, 100, None, 0.01, 0.02, kind="reference"),
                 _row("collapse", 30, s, 100, 1.1, 0.01, 0.02, kind="reference"),
                 _row("replay", 30, s, 70, 0.0, 0.6, 1.0, kind="reference")]  # fmt: skip
        if controls:
            rows.append(_row("gan", 30, s, 5, -1.2, 0.01, 0.02, variant=CONTROL))
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(out / "runs.csv", index=False)
    _validity(out, failed_seed)
    return out


def _block(lines: list[str], title: str) -> list[str]:
    """The pivot under the first line containing ``title``, up to the next blank line."""
    start = next(i for i, line in enumerate(lines) if title in line)
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1 : end]


def _row_of(block: list[str], label: str) -> str:
    return next(line for line in block if line.startswith(label))


def _headline(out: Path) -> list[str]:
    return summary.headline(report.load_context(out))


def test_a_collapsed_row_is_marked_and_never_robust(tmp_path):
    out = _folder(tmp_path / "out")
    index = _block(_headline(out), "robustness index")
    collapsed = _row_of(index, "probe: collapsed")
    assert collapsed.split()[-2:] == ["1.10", "C"]  # index 1.1, marked collapsed
    assert _row_of(index, "VQ-VAE").split()[-2:] == ["0.95", "X"]  # cannot draw outliers (its reconstruction)
    assert _row_of(index, "GAN").split()[-1] == "0.91"  # unflagged: no marker
    legend = index[-1]
    assert legend.startswith("(C = low coverage") and "never called robust" in legend and "X = cannot draw" in legend
    report.write_report(out)
    verdict = pd.read_csv(out / "report" / "table_facemask_verdict.csv", dtype=str, keep_default_na=False)
    rows = verdict.set_index(verdict.columns[0])
    assert rows.loc["probe: collapsed (8 inliers)", "flags"] == "low coverage"
    assert rows.loc["probe: collapsed (8 inliers)", "verdict"] == "flagged: low coverage"
    assert rows.loc["VQ-VAE", "verdict"] == "flagged: cannot draw outliers"
    assert rows.loc["GAN", "verdict"] == "robust" and rows.loc["replay (no robustness)", "verdict"] == "not robust"
    assert list(verdict.columns[1:]) == ["r (%)", "index", "recall", "coverage", "flags", "verdict", "n"]
    assert rows.loc["GAN", "recall"] == "0.48 ± 0.00" and rows.loc["GAN", "coverage"] == "0.80 ± 0.00"


def test_recall_is_in_the_summary_for_every_ratio(tmp_path):
    lines = _headline(_folder(tmp_path / "out"))
    title = next(line for line in lines if ": recall (" in line)
    assert "the oracle covers 0.60" in title
    recall = _block(lines, ": recall (")
    assert recall[0].split() == ["r", "=", "0", "%", "r", "=", "30", "%"]
    assert _row_of(recall, "GAN").split()[-2:] == ["0.50", "0.48"]
    assert lines.index(title) > next(i for i, line in enumerate(lines) if "robustness index" in line)


def test_capacity_controls_are_not_in_the_index_pivot_but_their_capacity_is_said(tmp_path):
    out = _folder(tmp_path / "out")
    lines = _headline(out)
    index = _block(lines, "robustness index")
    assert "capacity controls left out" in next(line for line in lines if "robustness index" in line)
    assert not any(CONTROL in line for line in index)
    assert not any(CONTROL in line for line in _block(lines, ": recall ("))
    assert any(line.startswith("GAN (filter=outliers-only)") for line in _block(lines, "% generated inliers"))
    capacity = _block(lines, "capacity (control")
    gan = _row_of([line.strip() for line in capacity], "GAN")
    assert "control  95.0 % called outliers" in gan and "CANNOT" not in gan
    vq = _row_of([line.strip() for line in capacity], "VQ-VAE")
    assert "reconstruction  60.0 % passed" in vq and vq.endswith("CANNOT DRAW OUTLIERS")
    report.write_report(out)
    verdict = pd.read_csv(out / "report" / "table_facemask_verdict.csv", dtype=str, keep_default_na=False)
    assert not any(CONTROL in label for label in verdict.iloc[:, 0])
    cap = pd.read_csv(out / "report" / "table_facemask_capacity.csv", dtype=str, keep_default_na=False)
    cap = cap.set_index(cap.columns[0])
    assert cap.loc["GAN", "control: samples called outliers (%)"] == "95.0" and cap.loc["GAN", "control cells"] == "2"
    assert cap.loc["GAN", "capacity"] == "can draw outliers" and cap.loc["VQ-VAE", "capacity"] == "cannot draw outliers"


def test_without_controls_the_index_pivot_keeps_every_row_and_capacity_comes_from_reconstruction(tmp_path):
    out = _folder(tmp_path / "out", controls=False)
    lines = _headline(out)
    assert "capacity controls left out" not in next(line for line in lines if "robustness index" in line)
    capacity = [line.strip() for line in _block(lines, "capacity (control")]
    assert [line.split()[0] for line in capacity] == ["VQ-VAE"]  # GAN: no control, no encoder, so no line
    report.write_report(out)
    cap = pd.read_csv(out / "report" / "table_facemask_capacity.csv", dtype=str, keep_default_na=False)
    assert list(cap.iloc[:, 0]) == ["VQ-VAE"]


def test_a_failed_validity_check_is_loud_in_the_summary_and_the_report(tmp_path):
    out = _folder(tmp_path / "out", failed_seed=1)
    lines = _headline(out)
    loud = [line for line in lines if "CLASSIFIER VALIDITY FAILED" in line]
    assert len(loud) == 1 and "seed 1: blur:2" in loud[0] and "outliers 30.0 %" in loud[0]
    assert "jpeg" not in loud[0]  # a degradation that is not gated does not fail the check
    md = report.write_report(out).read_text()
    head = md.split("## Exported", 1)[0]
    assert "**FaceMask: CLASSIFIER VALIDITY FAILED" in head  # at the top of the report
    tables = md.split("## Tables", 1)[1]
    assert tables.index("CLASSIFIER VALIDITY FAILED") < tables.index("**Table 1.")  # and atop the section
    table = pd.read_csv(out / "report" / "table_facemask_validity.csv", dtype=str, keep_default_na=False)
    table = table.set_index(table.columns[0])
    assert table.loc["blur:2", "passed"] == "FAILED (seed 1)" and table.loc["blur:2", "gated"] == "yes"
    assert table.loc["none", "passed"] == "yes" and table.loc["jpeg:10", "gated"] == "no"
    assert table.loc["blur:2", "real outliers called inliers (%)"].startswith("17.0 ±")  # the mean over seeds
    assert "CLASSIFIER VALIDITY FAILED" in (out / "report" / "table_facemask_verdict.md").read_text()


def test_a_passed_validity_check_is_one_quiet_line(tmp_path):
    out = _folder(tmp_path / "out")
    lines = _headline(out)
    assert [line for line in lines if "classifier validity" in line.lower()] == [
        "classifier validity: passed (seeds 0,1; >= 90 % of real inliers and <= 10 % of real outliers called inliers "
        "under every gated degradation)"
    ]
    md = report.write_report(out).read_text()
    assert "FAILED" not in md and "table_facemask_validity.md" in md


def test_without_validity_files_nothing_is_said(tmp_path):
    out = _folder(tmp_path / "out")
    shutil.rmtree(out / "validity")
    assert not any("validity" in line.lower() for line in _headline(out))
    report.write_report(out)
    assert not (out / "report" / "table_facemask_validity.csv").exists()


def test_an_exported_folder_regenerates_the_new_tables_byte_for_byte(tmp_path):
    out = _folder(tmp_path / "out", failed_seed=0)
    report.write_report(out)
    names = ["table_facemask_verdict", "table_facemask_capacity", "table_facemask_validity"]
    written = {f"{n}.{e}": (out / "report" / f"{n}.{e}").read_bytes() for n in names for e in ("md", "csv", "tex")}
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("runs.csv", *report.EXPORTED):
        shutil.copy(out / ("" if name == "runs.csv" else "report") / name, flat / name)
    report.write_report(flat)
    assert {n: (flat / "report" / n).read_bytes() for n in written} == written


@pytest.mark.parametrize("fid_metric", ["fid", "fd_classifier"])
def test_fig4_has_a_fourth_panel_for_recall(tmp_path, fid_metric):
    panels = report.fig4_panels(fid_metric)
    assert [m for m, _ in panels] == ["pct_inliers", fid_metric, "robustness", "recall"]
    out = _folder(tmp_path / "out")
    report.write_report(out)
    from PIL import Image

    width, height = Image.open(out / "report" / "fig4.png").size
    assert width / height > 4.5  # one row of four panels (three were 15 x 3.9 inches)
