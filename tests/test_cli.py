"""The command line: JSON output, determinism, and bad input as one line with exit status 2."""

import json
import subprocess
import sys

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.inputs import parse_ratios


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_parse_ratios():
    assert parse_ratios("0,5,...,30") == [0, 5, 10, 15, 20, 25, 30]
    assert parse_ratios("0, 10") == [0, 10]
    for bad in ("a", "0,...,30", "5,0,...,30", "120", ""):
        with pytest.raises(BenchError):
            parse_ratios(bad)


def test_data_build_json_twice_same_hash(tmp_path):
    args = ["data", "build", "--dataset", "roomcrop", "--ratio", "30", "--profile", "smoke", "--json"]
    a = run_cli(*args, "--out", str(tmp_path / "a"))
    b = run_cli(*args, "--out", str(tmp_path / "b"))
    assert a.returncode == 0, a.stderr
    ja, jb = json.loads(a.stdout), json.loads(b.stdout)
    for key in ("dataset", "ratio", "n_inliers", "n_outliers", "size", "split_hash", "path"):
        assert key in ja
    assert ja["split_hash"] == jb["split_hash"]
    assert abs(ja["n_outliers"] - 0.3 * (ja["n_inliers"] + ja["n_outliers"])) <= 1
    assert (tmp_path / "a" / "previews").is_dir() and list((tmp_path / "a" / "previews").glob("*.png"))


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["data", "build", "--dataset", "facemask", "--ratio", "100"], "[0, 100)"),
        (["data", "build", "--dataset", "faces", "--ratio", "10"], "unknown dataset"),
        (["data", "build", "--dataset", "facemask", "--ratio", "10", "--profile", "big"], "unknown profile"),
        (["data", "build", "--dataset", "facemask", "--ratio", "10", "--set", "data.zzz=1"], "unknown setting"),
        (["data", "build", "--dataset", "facemask", "--ratio", "10", "--data-root", "/no/such"], "not found"),
        (["run", "--models", "nosuchmodel", "--profile", "smoke"], "unknown model"),
        (["run", "--ratios", "0,200", "--profile", "smoke"], "bad outlier ratio"),
        (["run", "--profile", "smoke", "--set", "models.vqvae.nosuch=1"], "unknown setting models.vqvae.nosuch"),
        (["run", "--profile", "smoke", "--set", 'models.rvqvae.loss="huber"'], "bad setting models.rvqvae.loss"),
        (["data", "build", "--ratio", "10"], "Missing option"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, fragment):
    code = main([*args, "--out", str(tmp_path)] if args[0] == "data" or args[0] == "run" else args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and fragment in err
    assert "Traceback" not in err
    assert not list(tmp_path.rglob("*.npz")) and not (tmp_path / "runs.csv").exists()


def test_bad_input_via_console_process(tmp_path):
    r = run_cli("data", "build", "--dataset", "facemask", "--ratio", "-5", "--out", str(tmp_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


# Split hashes of the smoke profile at r = 30 %, seed 0, recorded with the code before the dataset registry
# (245ebff): RoomCrop, now a `corrupted` dataset with the rectangles corruption, and FaceMask must keep them, and the
# generic datasets must reproduce them (`corrupted` on the bedrooms; `folder` with inliers/ and outliers/ links).
PINNED_SPLITS = {
    "roomcrop": ("bedroom/images", "9903f9d13f7800e59de1194f92247f1eba40edfe283728661cbe6dce957c1694"),
    "corrupted": ("bedroom/images", "9903f9d13f7800e59de1194f92247f1eba40edfe283728661cbe6dce957c1694"),
    "facemask": ("facemask12k", "6d969958c023e6073c0619757849c3b4c744a99ec573914439961c8247ee38a8"),
    "folder": ("facemask12k", "6d969958c023e6073c0619757849c3b4c744a99ec573914439961c8247ee38a8"),
}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(PINNED_SPLITS))
def test_stand_in_split_hashes_are_pinned(dataset, tmp_path):
    from tests.conftest import shared_path

    folder, expected = PINNED_SPLITS[dataset]
    root = shared_path(folder)
    if dataset == "folder":
        (tmp_path / "root").mkdir()
        (tmp_path / "root" / "inliers").symlink_to(root / "without_mask")
        (tmp_path / "root" / "outliers").symlink_to(root / "with_mask")
        root = tmp_path / "root"
    out = run_cli("data", "build", "--dataset", dataset, "--data-root", str(root), "--ratio", "30", "--profile",
                  "smoke", "--json", "--out", str(tmp_path / "out"))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["split_hash"] == expected
