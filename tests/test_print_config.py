"""``bench run --print-config > my.toml`` then ``bench run --config my.toml`` reruns the same grid, and a folder
with too few images gets ``--set`` values that fit it.

- print-config holds everything that selects cells (models, datasets, ratios, seeds, filters, data roots; jobs and
  backend too), and ``--dry-run`` of ``--config`` of it lists exactly the cells (digests) of the original command;
- precedence: a command-line option overrides the config file, the config file overrides the profile;
- a count error is one line with the breakdown of each need, and re-running with exactly the ``--set`` values it
  suggests passes ``--dry-run``.

Every command is a dry run or a print-config on folders of a few dozen 8 x 8 images: seconds in all.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bench.cli import main
from tests.conftest import write_images

# Tiny counts on the user's folder: 16 + 8 + 4 + 8 = 36 inliers, 8 + 4 + 7 = 19 outliers at r = 30 %.
TINY = {"inliers": 16, "classifier_train_per_class": 8, "classifier_test_per_class": 4, "reference": 8}


def tiny(dataset: str) -> list[str]:
    return [a for k, v in TINY.items() for a in ("--set", f"data.{dataset}.{k}={v}")]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A `folder` root (inliers/, outliers/), a FaceMask root and a `corrupted` image folder, all small."""
    root = tmp_path_factory.mktemp("data")
    write_images(root / "mine" / "inliers", 40, (200, 60, 60), size=(8, 8))
    write_images(root / "mine" / "outliers", 24, (60, 60, 200), size=(8, 8))
    write_images(root / "faces" / "without_mask", 40, (220, 180, 150), size=(8, 8))
    write_images(root / "faces" / "with_mask", 24, (240, 240, 245), size=(8, 8))
    write_images(root / "rooms", 80, (120, 100, 80), size=(8, 8))
    return root


def bench(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def dry_run(capsys, *args: str, out: Path) -> list[str]:
    code, stdout, err = bench(capsys, "run", *args, "--out", str(out), "--dry-run")
    assert code == 0, err
    return stdout.splitlines()


def print_config(capsys, tmp_path: Path, *args: str) -> Path:
    code, toml, err = bench(capsys, "run", *args, "--print-config")
    assert code == 0, err
    path = tmp_path / "my.toml"
    path.write_text(toml, encoding="utf-8")
    return path


COMBINATIONS = {
    # the command: datasets and ratios used to be lost (32 facemask cells planned instead of 2 folder cells)
    "folder-ratios": lambda d: ["--datasets", "folder", "--data-root", f"folder={d / 'mine'}", "--ratios", "0,30",
                                "--profile", "demo", "--models", "gan", *tiny("folder")],
    "folder-all-models": lambda d: ["--datasets", "folder", "--data-root", f"folder={d / 'mine'}", "--ratios", "0,30",
                                    "--profile", "smoke", *tiny("folder")],
    "seeds-models-filters": lambda d: ["--datasets", "folder", "--data-root", f"folder={d / 'mine'}", "--ratios", "10",
                                       "--seeds", "0,2", "--models", "vqvae,gan,replay", "--filter", "none",
                                       "--filter", "pca:0.3", "--profile", "smoke", *tiny("folder")],
    "alias-root-and-corrupted": lambda d: ["--datasets", "facemask,corrupted", "--data-root-facemask", str(d / "faces"),
                                           "--data-root", f"corrupted={d / 'rooms'}", "--ratios", "0,5,...,15",
                                           "--models", "rvqvae", "--profile", "smoke", *tiny("facemask"),
                                           *tiny("corrupted"), "--set", "data.corrupted.pool_per_half=40",
                                           "--set", "data.corrupted.corruption=noise"],
    "sets-on-embedded-data": lambda d: ["--datasets", "facemask,roomcrop", "--ratios", "0,30", "--models",
                                        "rvqvae,gan", "--profile", "cpu", "--set", "models.rvqvae.eta=0.1",
                                        "--set", "data.roomcrop.params.reading=area", "--set", "data.size=24",
                                        "--set", "eval.classifier_epochs=3", "--jobs", "2"],
    "profile-defaults": lambda d: ["--profile", "demo"],
}  # fmt: skip


@pytest.mark.parametrize("make_args", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_config_of_print_config_plans_the_same_cells(make_args, data, tmp_path, capsys):
    args = make_args(data)
    original = dry_run(capsys, *args, out=tmp_path / "out")
    path = print_config(capsys, tmp_path, *args)
    again = dry_run(capsys, "--config", str(path), out=tmp_path / "out")
    assert again == original
    assert re.match(r"\d+ cells \(profile ", original[-1])
    # the file alone says what runs, under [run]; with the command's own order of ratios and seeds
    run = tomllib.loads(path.read_text(encoding="utf-8"))["run"]
    cells = [line.split()[2] for line in original[:-1]]
    assert {c.split("/")[0] for c in cells} == set(run["datasets"].split(","))
    assert {c.split("/")[1] for c in cells} <= set(run["models"].split(","))
    assert {c.split("/")[3] for c in cells} == {f"s{s}" for s in run["seeds"].split(",")}
    # a second round trip writes the same file (nothing is lost or re-resolved differently)
    code, toml, err = bench(capsys, "run", "--config", str(path), "--print-config")
    assert code == 0, err
    assert toml == path.read_text(encoding="utf-8")


def test_print_config_holds_the_whole_selection(data, tmp_path, capsys):
    path = print_config(capsys, tmp_path, "--datasets", "folder", "--data-root", f"folder={data / 'mine'}",
                        "--ratios", "0,30", "--seeds", "1,3", "--models", "gan,vqvae", "--filter", "pca:0.3",
                        "--jobs", "3", "--backend", "dask", "--profile", "smoke")  # fmt: skip
    toml = tomllib.loads(path.read_text(encoding="utf-8"))
    assert toml["profile"] == "smoke"
    assert toml["run"] | {"data_roots": None} == toml["run"] | {
        "datasets": "folder", "ratios": "0,30", "seeds": "1,3", "models": "gan,vqvae", "filters": ["pca:0.3"],
        "jobs": 3, "backend": "dask", "data_roots": None,
    }  # fmt: skip
    assert toml["run"]["data_roots"] == {"folder": str((data / "mine").absolute())}
    assert set(toml["data"]) == {"size", "folder"} and set(toml["models"]) == {"gan", "vqvae"}


def test_command_line_overrides_the_file_which_overrides_the_profile(data, tmp_path, capsys):
    path = print_config(capsys, tmp_path, "--datasets", "folder", "--data-root", f"folder={data / 'mine'}",
                        "--ratios", "0,30", "--seeds", "0,1", "--models", "gan,vqvae", "--profile", "demo",
                        *tiny("folder"))  # fmt: skip
    out = tmp_path / "out"
    # the file wins over the demo profile's ratios (0,10,20,30) and default datasets (facemask)
    lines = dry_run(capsys, "--config", str(path), out=out)
    assert lines[-1].startswith("8 cells (profile demo, training in ")
    # each option given on the command line wins over the file
    lines = dry_run(capsys, "--config", str(path), "--seeds", "2", "--models", "gan", "--ratios", "30", out=out)
    assert [line.split()[2] for line in lines[:-1]] == ["folder/gan/r30/s2"]
    lines = dry_run(capsys, "--config", str(path), "--filter", "mcd:0.3", "--models", "gan", out=out)
    assert all("filter=mcd:0.3" in line for line in lines[:-1]) and lines[-1].startswith("4 cells")
    # --set wins over the file's settings (another digest: a variant)
    lines = dry_run(capsys, "--config", str(path), "--models", "gan", "--ratios", "0", "--seeds", "0",
                    "--set", "data.folder.reference=10", out=out)  # fmt: skip
    assert "data.folder.reference=10" in lines[0]
    # another --data-root replaces the file's; --datasets elsewhere leaves the file's root of `folder` unused
    other = data / "mine-copy"
    write_images(other / "inliers", 40, (200, 60, 60), size=(8, 8))
    write_images(other / "outliers", 24, (60, 60, 240), size=(8, 8))
    moved = dry_run(capsys, "--config", str(path), "--data-root", f"folder={other}", out=out)
    assert moved[0].split()[1] != dry_run(capsys, "--config", str(path), out=out)[0].split()[1]  # other images
    lines = dry_run(capsys, "--config", str(path), "--datasets", "facemask", "--models", "gan", out=out)
    assert {line.split()[2].split("/")[0] for line in lines[:-1]} == {"facemask"}
    # a profile that disagrees with the file's is refused in one line
    code, _, err = bench(capsys, "run", "--config", str(path), "--profile", "cpu", "--dry-run")
    assert code == 2 and err.count("\n") == 1 and "disagrees" in err


def test_run_settings_in_a_hand_written_file(data, tmp_path, capsys):
    """A config written by hand: lists and numbers where the command line takes comma lists."""
    path = tmp_path / "hand.toml"
    path.write_text(f'profile = "smoke"\n[run]\ndatasets = ["folder"]\nratios = [0, 12.5]\nseeds = [0, 1]\n'
                    f'models = "gan"\nfilters = ["none"]\n[run.data_roots]\nfolder = "{data / "mine"}"\n'
                    f'[data.folder]\ninliers = 16\nclassifier_train_per_class = 8\nclassifier_test_per_class = 4\n'
                    f'reference = 8\n', encoding="utf-8")  # fmt: skip
    lines = dry_run(capsys, "--config", str(path), out=tmp_path / "out")
    assert [line.split()[2] for line in lines[:-1]] == ["folder/gan/r0/s0", "folder/gan/r0/s1", "folder/gan/r12.5/s0",
                                                        "folder/gan/r12.5/s1"]  # fmt: skip


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('[run]\nbackend = "spark"', "backend must be one of loky, dask"),
        ("[run]\nfilters = [3]", "filters must be strings"),
        ('[run.data_roots]\nnosuch = "/x"', "unknown dataset 'nosuch'"),
        ('[run]\nseeds = "a"', "bad --seeds"),
        ("[run]\nseeds = [true]", "bad value for 'run.seeds'"),
    ],
)
def test_bad_run_settings_are_one_line(tmp_path, capsys, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(f'profile = "smoke"\n{text}\n', encoding="utf-8")
    code, _, err = bench(capsys, "run", "--config", str(path), "--dry-run", "--out", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and fragment in err, err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------- count errors


def suggested_sets(err: str) -> list[str]:
    return [a for s in re.findall(r"--set (\S+=\d+)", err) for a in ("--set", s)]


@pytest.mark.parametrize(
    "n_in, n_out, dataset, extra, short",
    [
        pytest.param(150, 200, "folder", [], "inlier", id="inliers-short"),
        pytest.param(500, 90, "folder", [], "outlier", id="outliers-short"),
        pytest.param(100, 40, "folder", ["--profile", "demo", "--set", "data.folder.inliers=150"], "inlier and outlier",
                     id="the-issue's-held-out-sets"),
        pytest.param(200, 0, "corrupted", [], "inlier and outlier", id="corrupted-halves"),
    ],
)  # fmt: skip
def test_count_error_names_every_key_and_its_suggestion_passes(tmp_path, capsys, n_in, n_out, dataset, extra, short):
    root = tmp_path / "d"
    if dataset == "folder":
        write_images(root / "inliers", n_in, (200, 60, 60), size=(8, 8))
        write_images(root / "outliers", n_out, (60, 60, 200), size=(8, 8))
    else:
        write_images(root, n_in, (120, 100, 80), size=(8, 8))
    out = tmp_path / "out"
    args = ["run", "--datasets", dataset, "--data-root", f"{dataset}={root}", "--ratios", "0,30", "--models", "gan",
            "--profile", "smoke", *extra, "--out", str(out)]  # fmt: skip
    code, _, err = bench(capsys, *args)  # a real run: rejected before any work, nothing written
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: not enough {dataset} {short} images")
    assert "Traceback" not in err and not out.exists()
    for key in ("inliers", "classifier_train_per_class", "classifier_test_per_class", "reference"):
        assert f" {key} " in err and f"--set data.{dataset}.{key}=" in err
    assert "training outliers" in err and "inlier images" in err and "outlier images" in err
    sets = suggested_sets(err)
    assert len(sets) == 8
    code, stdout, err = bench(capsys, *args, *sets, "--dry-run")
    assert code == 0, err
    assert stdout.splitlines()[-1].startswith("2 cells")


def test_count_error_breakdown_adds_up(tmp_path, capsys):
    """The issue's example: demo counts with inliers=150 on 500 inlier images: 150 + 300 + 200 + 300 = 950."""
    root = tmp_path / "mydata"
    write_images(root / "inliers", 500, (200, 60, 60), size=(8, 8))
    write_images(root / "outliers", 600, (60, 60, 200), size=(8, 8))
    code, _, err = bench(capsys, "run", "--datasets", "folder", "--data-root", f"folder={root}", "--ratios", "0,30",
                         "--profile", "demo", "--set", "data.folder.inliers=150", "--dry-run")  # fmt: skip
    assert code == 2
    assert ("150 inliers + 300 classifier_train_per_class + 200 classifier_test_per_class + 300 reference = 950 "
            "inlier images (the folder has 500)") in err  # fmt: skip
    assert "300 classifier_train_per_class + 200 classifier_test_per_class + 64 training outliers = 564" in err
    assert "lower the largest --ratios" not in err  # the outliers fit: only the inliers are short
    counts = dict(re.findall(r"--set data\.folder\.(\w+)=(\d+)", err))
    assert sum(map(int, counts.values())) <= 500 and int(counts["inliers"]) < 150
    # docs/data.md shows this very error
    docs = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text(encoding="utf-8")
    shown = re.search(r"```text\n(error: not enough folder .*?)\n```", docs, re.S)
    assert shown and shown.group(1) == err.strip().replace(str(root), "mydata"), "docs/data.md's count error is stale"


def test_folder_too_small_for_any_counts(tmp_path, capsys):
    root = tmp_path / "d"
    write_images(root / "inliers", 20, (200, 60, 60), size=(8, 8))
    write_images(root / "outliers", 20, (60, 60, 200), size=(8, 8))
    code, _, err = bench(capsys, "run", "--datasets", "folder", "--data-root", f"folder={root}", "--profile", "smoke",
                         "--dry-run")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "too small even for the smallest counts" in err and "--set" not in err
