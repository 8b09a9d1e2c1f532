"""Incomparable rows never share a table: the protocol key (bench/identity.py), one set of tables per protocol, Table 5
grouped by protocol, `bench score --append-to` refusing a sample set scored on other data, exported folders that
regenerate every table byte for byte, and end-of-run words that fit the data actually used."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import api, grid, identity, report, summary
from bench.cli import main
from bench.config import load_profile
from tests.conftest import write_images
from tests.grid_helpers import FAST, FAST_SETS, MEAN_PLUGIN, forget_plugin

SETS = [a for s in FAST_SETS for a in ("--set", s)]
MODELS = ["test_mean", "replay", "replay-inliers"]


def _facemask_folder(root: Path) -> Path:
    """A tiny facemask-layout folder (another data source than the embedded synthetic faces)."""
    write_images(root / "without_mask", 100, (200, 170, 140))
    write_images(root / "with_mask", 60, (90, 140, 220))
    return root


def _run(out: Path, data_root: Path | None = None, ratios=(0, 30)):
    roots = {"facemask": str(data_root)} if data_root is not None else {}
    spec, planned = api.plan(MODELS, ["facemask"], list(ratios), [0], profile="smoke", out=out, overrides=FAST,
                             data_roots=roots)  # fmt: skip
    return spec, grid.run(spec, planned)


@pytest.fixture(scope="module")
def plugin():
    from bench import plugins

    plugins.load(MEAN_PLUGIN)
    yield MEAN_PLUGIN
    forget_plugin(MEAN_PLUGIN, "test_mean")


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory, plugin):
    """One --out with the same models on the embedded synthetic faces and on a folder: two protocols (read only:
    tests that write copy it)."""
    tmp = tmp_path_factory.mktemp("two-sources")
    out = tmp / "out"
    synth = _run(out)
    folder = _run(out, _facemask_folder(tmp / "faces"))
    return out, synth, folder


def _copy_with_one_protocol(two_sources, dest: Path) -> Path:
    """A copy of the two-source folder holding only the synthetic-data cells."""
    out, (_, synth), _ = two_sources
    shutil.copytree(out, dest, ignore=shutil.ignore_patterns("report"))
    for cell in (dest / "cells").glob("facemask/*/*/*/*"):
        if json.loads((cell / "done.json").read_text())["row"]["protocol_digest"] != synth[0].protocol_digest:
            shutil.rmtree(cell)
    (dest / "runs.csv").unlink()  # rebuilt from the cells left
    for f1 in (dest / "f1").glob("*.csv"):
        rows = pd.read_csv(f1, dtype={"protocol": str})
        rows[rows.protocol == synth[0].protocol_digest].to_csv(f1, index=False)
    return dest


# ---------------------------------------------------------------------------------------------- the key


def test_protocol_key_is_the_settings_without_the_model_plus_the_profile():
    prof = load_profile("smoke")
    gan = identity.identify(prof, "facemask", "gan", 30, 0, "synthetic-v2:faces")
    vq = identity.identify(prof, "facemask", "vqvae", 0, 1, "synthetic-v2:faces", {"label": "pca:0.3"})
    assert gan.protocol_digest == vq.protocol_digest  # models, filters, ratios and seeds share a protocol
    assert gan.protocol_digest == identity.protocol_digest(prof, "facemask", "synthetic-v2:faces")
    assert gan.protocol_digest == identity.digest({**{k: gan.settings[k] for k in identity.PROTOCOL_KEYS},
                                                   "profile": "smoke"})  # fmt: skip
    other_data = identity.identify(prof, "facemask", "gan", 30, 0, "abc123:def456")
    assert other_data.protocol_digest != gan.protocol_digest
    epochs = load_profile("smoke", overrides={"eval.classifier_epochs": 7})
    assert (
        identity.identify(epochs, "facemask", "gan", 30, 0, "synthetic-v2:faces").protocol_digest != gan.protocol_digest
    )
    renamed = dataclasses.replace(prof, name="demo")  # same settings under another profile's name
    assert identity.protocol_digest(renamed, "facemask", "synthetic-v2:faces") != gan.protocol_digest
    # the cell digests do not include it: settings and digests are what they were
    assert set(gan.settings) == {"protocol", "dataset", "source", "data", "eval", "model", "model_config", "filter"}
    assert gan.settings_digest == identity.digest(gan.settings)
    assert gan.config_digest == identity.digest({"settings": gan.settings_digest, "ratio": 30.0, "seed": 0})
    ext = identity.external_identity("facemask", "mine", "0" * 64, prof, 30, 0, "synthetic-v2:faces")
    assert ext.protocol_digest == gan.protocol_digest and "source" not in ext.settings


def test_cells_and_runs_csv_carry_the_protocol_key(two_sources):
    out, (_, synth), (_, folder) = two_sources
    df = pd.read_csv(out / "runs.csv", dtype=str, keep_default_na=False)
    assert list(df.columns).index("protocol_digest") == list(df.columns).index("config_digest") - 1
    assert len({r.protocol_digest for r in synth}) == 1 and len({r.protocol_digest for r in folder}) == 1
    assert synth[0].protocol_digest != folder[0].protocol_digest
    assert set(df.protocol_digest) == {synth[0].protocol_digest, folder[0].protocol_digest}
    f1 = pd.concat([pd.read_csv(p, dtype=str) for p in (out / "f1").glob("*.csv")])
    assert set(f1.protocol) == set(df.protocol_digest)  # Table 5's rows know their protocol too


# ---------------------------------------------------------------------------------------------- the report


def test_rows_of_two_data_sources_never_share_a_table_figure_or_average(two_sources):
    out, (_, synth), (_, folder) = two_sources
    report.write_report(out)
    rep = out / "report"
    ps, pf = synth[0].protocol_digest, folder[0].protocol_digest
    assert not (rep / "table1.csv").exists()  # no table mixes them
    t_s = (rep / f"table1_{ps[:8]}.md").read_text()
    t_f = (rep / f"table1_{pf[:8]}.md").read_text()
    assert "embedded synthetic data" in t_s and f"protocol {ps[:8]}" in t_s
    fingerprint = identity.source_id(json.loads((rep / "data.json").read_text())["protocols"][0]["source"])
    sources = {d["protocol"]: d for d in json.loads((rep / "data.json").read_text())["protocols"]}
    assert sources[ps]["synthetic"] is True and sources[pf]["synthetic"] is False
    folder_id = identity.source_id(sources[pf]["source"])
    assert f"FaceMask images with content fingerprint {folder_id}" in t_f and f"protocol {pf[:8]}" in t_f
    assert "faces" not in t_f.replace("FaceMask", "")  # named by its content, never by its path
    assert fingerprint and str(out.parent) not in (rep / "data.json").read_text()
    for t in (rep / f"table1_{ps[:8]}.csv", rep / f"table1_{pf[:8]}.csv"):
        assert list(pd.read_csv(t).iloc[:, 0]) == ["test_mean", "— reference generators (not methods) —",
                                                   "replay (no robustness)", "replay inliers (oracle)"]  # fmt: skip
    t5 = pd.read_csv(rep / "table5.csv", dtype=str, keep_default_na=False)
    labels = list(t5.iloc[:, 0])
    assert labels == [f"FaceMask [embedded synthetic data, protocol {ps[:8]}] (ours)",
                      f"FaceMask [FaceMask data {folder_id}, protocol {pf[:8]}] (ours)"]  # fmt: skip
    f1 = pd.read_csv(rep / "f1.csv")
    for protocol, row in zip((ps, pf), t5.itertuples(index=False)):
        own = f1[(f1.protocol == protocol) & (f1.ratio == 30)].f1
        assert row[list(t5.columns).index("30%")] == f"{own.mean():.3f}"  # each row its own F1, never both
    ctx = report.load_context(out)
    assert [(s.dataset, s.data.protocol) for s in ctx.sections] == [("facemask", ps), ("facemask", pf)]  # 2 Fig. 4 rows
    assert (rep / f"grids/facemask_{ps[:8]}_r30_models.png").exists()
    assert (rep / f"grids/facemask_{pf[:8]}_r30_models.png").exists()


def test_one_protocol_keeps_todays_table_names(two_sources, tmp_path):
    out = _copy_with_one_protocol(two_sources, tmp_path / "one")
    report.write_report(out)
    rep = out / "report"
    for name in ("table1.csv", "table3.csv", "table5.csv", "table_facemask_at_30.csv", "table_facemask_robustness.csv",
                 "grids/facemask_r30_models.png", "grids/facemask_test_mean_r30.png"):  # fmt: skip
        assert (rep / name).exists(), name
    assert list(pd.read_csv(rep / "table5.csv").iloc[:, 0]) == ["FaceMask (ours)"]


def test_table5_never_averages_two_protocols_sharing_a_held_out_file(tmp_path):
    """Two eval settings on one held-out split write one f1 file: its rows keep their protocols apart."""

    class Evaluator:
        def __init__(self, f1):
            self.f1 = f1

        def f1_table(self):
            return [{"ratio": r, "f1": self.f1, "accuracy": 1.0, "n_inliers": 10, "n_outliers": 1} for r in (0, 30)]

    class Split:
        dataset, seed, heldout_hash = "facemask", 0, "ab" * 32

    from bench.store import ResultsStore

    store = ResultsStore(tmp_path)
    prof = load_profile("smoke")
    grid.write_f1_table(store, prof, Split(), Evaluator(0.5), "1" * 64)
    grid.write_f1_table(store, prof, Split(), Evaluator(0.9), "2" * 64)
    grid.write_f1_table(store, prof, Split(), Evaluator(0.1), "2" * 64)  # already there: not rewritten
    f1 = pd.read_csv(store.f1_table(Split()), dtype={"protocol": str})
    assert sorted(set(zip(f1.protocol, f1.f1))) == [("1" * 64, 0.5), ("2" * 64, 0.9)]


def test_append_to_a_folder_of_other_data_is_refused_in_one_line(two_sources, tmp_path, capsys):
    synth = two_sources[1][1]
    faces = two_sources[0].parent / "faces"
    only_synth = _copy_with_one_protocol(two_sources, tmp_path / "synth-only")
    samples = tmp_path / "mine.npz"
    np.savez(samples, samples=np.full((20, 3, 16, 16), 128, np.uint8))
    capsys.readouterr()
    args = ["score", str(samples), "--dataset", "facemask", "--profile", "smoke", "--ratio", "30", "--append-to",
            str(only_synth), "--model-name", "mine", *SETS]  # fmt: skip
    assert main(args + ["--data-root", f"facemask={faces}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different data or classifier" in err[0] and "--append-to" in err[0], err
    assert "embedded synthetic data" in err[0] and "FaceMask data" in err[0] and str(faces) not in err[0]
    assert not list((only_synth / "cells").glob("facemask/mine/*"))  # nothing written
    assert main(args + ["--set", "eval.classifier_epochs=3"]) == 2  # another classifier: refused too
    assert "different data or classifier" in capsys.readouterr().err
    assert main(args) == 0  # the same data and settings as the folder's cells: appended, under their protocol
    row = pd.read_csv(only_synth / "runs.csv", dtype=str, keep_default_na=False).set_index("model").loc["mine"]
    assert row.protocol_digest == synth[0].protocol_digest
    report.write_report(only_synth)
    assert "mine (external)" in set(pd.read_csv(only_synth / "report" / "table1.csv").iloc[:, 0])


# ---------------------------------------------------------------------------------------------- exported folders


def _tables(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.suffix in (".md", ".csv", ".tex", ".json") and p.name != "report.md"}  # fmt: skip


def test_an_exported_folder_regenerates_every_table_byte_for_byte(two_sources, tmp_path):
    out = two_sources[0]
    report.write_report(out)
    written = _tables(out / "report")
    assert {"f1.csv", "data.json", "detectors.csv"} <= set(written)
    assert any(n.startswith("table_detectors") for n in written) and len(pd.read_csv(out / "report" / "f1.csv")) > 0
    exported = tmp_path / "exported"
    (exported / "report").mkdir(parents=True)
    shutil.copy(out / "runs.csv", exported / "runs.csv")
    for name in report.EXPORTED:
        shutil.copy(out / "report" / name, exported / "report" / name)
    assert main(["report", "--out", str(exported)]) == 0
    again = _tables(exported / "report")
    assert sorted(again) == sorted(written)
    assert [n for n in written if again[n] != written[n]] == []
    flat = tmp_path / "flat"  # the files beside runs.csv, as docs/results-standin/ holds them
    flat.mkdir()
    for name in ("runs.csv", *report.EXPORTED):
        shutil.copy(exported / ("" if name == "runs.csv" else "report") / name, flat / name)
    report.write_report(flat)
    assert _tables(flat / "report") == written


@pytest.mark.parametrize("folder", sorted(p.parent.name if p.parent.parent.name == "results-standin" else
                                          f"{p.parent.parent.name}/{p.parent.name}" for p in
                                          (Path(__file__).resolve().parents[1] / "docs" / "results-standin")
                                          .glob("**/runs.csv")))  # fmt: skip
def test_committed_exported_folders_still_load(folder, tmp_path, capsys):
    """docs/results-standin/: runs.csv (and the older exports' f1_<dataset>_s<seed>.csv) regenerate the report."""
    src = Path(__file__).resolve().parents[1] / "docs" / "results-standin" / folder
    for path in [src / "runs.csv", *src.glob("f1_*.csv")]:
        shutil.copy(path, tmp_path / path.name)
    assert main(["report", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "% generated inliers" in printed and printed.rstrip().splitlines()[-1].startswith("report written to")
    t5 = (tmp_path / "report" / "table5.md").read_text()
    assert ". ." not in t5.splitlines()[0]
    if list(src.glob("f1_*.csv")):
        assert "(ours) | 0.9" in t5  # Table 5 from the exported F1 rows
    for table in (tmp_path / "report").glob("table*.md"):
        assert "/shared/" not in table.read_text()  # captions never carry a machine's path


def test_cells_written_before_protocol_digests_get_theirs_from_their_settings(two_sources, tmp_path):
    """An older cell (no protocol_digest in its record) joins the protocol its config.json's settings give, so a
    folder continued after the upgrade is not split; an export of it says so in data.json and regenerates alike."""
    out = _copy_with_one_protocol(two_sources, tmp_path / "older")
    synth = two_sources[1][1]
    old = next(c for c in (out / "cells").glob("facemask/test_mean/r30/s0/*"))
    for name in ("done.json", "metrics.json"):
        blob = json.loads((old / name).read_text())
        blob["row"].pop("protocol_digest")
        (old / name).write_text(json.dumps(blob))
    report.write_report(out)  # runs.csv is rebuilt from the cells (_copy_with_one_protocol removed it)
    assert (out / "report" / "table1.csv").exists()  # one protocol: not split
    digest = json.loads((old / "done.json").read_text())["row"]["config_digest"]
    data = json.loads((out / "report" / "data.json").read_text())
    assert data["cells"] == {digest: synth[0].protocol_digest}
    exported = tmp_path / "exported"
    (exported / "report").mkdir(parents=True)
    shutil.copy(out / "runs.csv", exported / "runs.csv")
    for name in report.EXPORTED:
        shutil.copy(out / "report" / name, exported / "report" / name)
    report.write_report(exported)
    assert _tables(exported / "report") == _tables(out / "report")


# ---------------------------------------------------------------------------------------------- closing words


def test_the_end_of_run_words_fit_the_data(two_sources):
    out, (spec_s, synth), (spec_f, folder) = two_sources
    on_synth = summary.end_of_run(spec_s, synth, None)
    on_folder = summary.end_of_run(spec_f, folder, None)
    assert "README's main job" in on_synth.splitlines()[-1]
    last = on_folder.splitlines()[-1]
    assert "README's main job" not in last and "--profile cpu and the same --data-root" in last
    demo = [report.Data("facemask", "p", "synthetic-v2:faces", True)]
    stand_in = [report.Data("facemask", "q", "ab" * 32, False)]
    assert "synthetic data and tiny models" in summary.closing_words("demo", demo)
    words = summary.closing_words("demo", stand_in)
    assert "synthetic" not in words and "Next: a real stand-in" not in words and "same data" in words
    assert "NOT a real dataset" in summary.closing_words("cpu", demo)
    assert "NOT a real dataset" not in summary.closing_words("cpu", stand_in)
    both = summary.closing_words("demo", demo + [report.Data("folder", "r", "cd" * 32, False)])
    assert "facemask (embedded synthetic data)" in both and "folder (your data folders)" in both
