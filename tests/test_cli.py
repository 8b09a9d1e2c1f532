"""The command line: JSON output, determinism, and bad input as one line with exit status 2."""

import json
import subprocess
import sys

import pytest

from bench.api import parse_ratios
from bench.cli import main
from bench.errors import BenchError


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


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
        (["run", "--profile", "smoke", "--set", "models.rvqvae.loss=\"huber\""], "bad setting models.rvqvae.loss"),
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
