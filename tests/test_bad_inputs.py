"""Bad-input probes from the user study: the CLI's rule for bad input, pinned down probe by probe.

The rule (bench/cli.py, bench/errors.py): bad input prints ONE line on stderr (``error: what, where, how to fix``)
and exits with status 2, with no traceback; it is detected before expensive work; nothing is half-written (no
``*.tmp``, no new cell folder, no runs.csv for an input rejected up front); earlier results are untouched.

Where the issue allows a success instead (odd but usable images, a damaged runs.csv that can be rebuilt from the
cells' done.json), the probe accepts exit 0 only with a correct result: an image skip must be counted AND printed,
a report must never show a number that differs from the cell's own done.json.

Cost: one module-scoped smoke run makes a finished results folder; probes work on copies of it (or on a fresh
folder seeded with its caches, so that a probe the code fails to reject costs seconds, not a classifier training).
Most probes call ``bench.cli.main`` in-process; an exception escaping ``main`` is what a real process prints as a
Traceback. A handful run ``python -m bench.cli`` in a real process to check stderr there.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.cli import main
from tests.conftest import write_images

REPO = Path(__file__).resolve().parents[1]
GRID = ["--profile", "smoke", "--models", "vqvae", "--datasets", "facemask", "--ratios", "0"]
B = ["run", *GRID]  # the issue's $B (plus --out OUT)
CELL_BASE = Path("cells", "facemask", "vqvae", "r0", "s0")  # the cell's folder: the one digest folder under it


def cell_dir(out: Path) -> Path:
    return next(d for d in sorted((out / CELL_BASE).iterdir()) if (d / "done.json").exists())


# Tiny FaceMask counts for probes on a user folder D: 16 + 8 + 4 + 8 = 36 inliers and 8 + 4 = 12 outliers at 0 %,
# and a 2-epoch classifier, so a run on D takes about a second.
TINY_COUNTS = {"inliers": 16, "classifier_train_per_class": 8, "classifier_test_per_class": 4, "reference": 8}
TINY = [a for k, v in TINY_COUNTS.items() for a in ("--set", f"data.facemask.{k}={v}")]
TINY += ["--set", "eval.classifier_epochs=2"]
TINY_INLIERS_NEEDED = sum(TINY_COUNTS.values())
TINY_OUTLIERS_NEEDED = TINY_COUNTS["classifier_train_per_class"] + TINY_COUNTS["classifier_test_per_class"]


# --------------------------------------------------------------------------------------------------- helpers


@dataclass
class Outcome:
    code: int | None  # None: an exception escaped main()
    out: str
    err: str
    raised: BaseException | None = None

    def describe(self) -> str:
        if self.raised is not None:
            return (
                f"uncaught {type(self.raised).__name__}: {str(self.raised)[:300]} (a real process prints a Traceback)"
            )
        last = (self.err.strip().splitlines() or [""])[-1]
        return (
            f"exit {self.code}; last stderr line {last[:300]!r}; stderr {self.err[-600:]!r}; stdout {self.out[-300:]!r}"
        )


def cli(capsys, *args) -> Outcome:
    """``bench ARGS`` in this process; an exception escaping ``main`` is recorded, not raised."""
    capsys.readouterr()
    raised, code = None, None
    try:
        code = main([os.fspath(a) if isinstance(a, Path) else a for a in args])
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - SystemExit included: main must return, not exit
        raised = e
    finally:
        torch.set_num_threads(1)  # a run sets torch's threads for the process
    cap = capsys.readouterr()
    return Outcome(code, cap.out, cap.err, raised)


def proc(*args, timeout=240) -> Outcome:
    """``python -m bench.cli ARGS`` in a real process with this checkout on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-m", "bench.cli", *[os.fspath(a) for a in args]],
        capture_output=True, env=env, timeout=timeout, cwd=REPO,
    )  # fmt: skip
    return Outcome(r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace"))


def assert_no_traceback(res: Outcome) -> None:
    assert res.raised is None, res.describe()
    assert "Traceback" not in res.out + res.err, res.describe()


def assert_rejected(res: Outcome, *fragments: str) -> None:
    """Exit 2, exactly one stderr line starting 'error: ' (mentioning each regex in ``fragments``), nothing on
    stdout, no traceback."""
    assert_no_traceback(res)
    assert res.code == 2, f"expected exit 2 with one 'error: ' line; got {res.describe()}"
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"stderr must be one 'error: ' line, got {res.err!r}"
    for frag in fragments:
        assert re.search(frag, lines[0], re.IGNORECASE), f"error line should name {frag!r}: {lines[0]!r}"
    assert not res.out.strip(), f"rejected input printed on stdout: {res.out[-300:]!r}"


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``root`` (empty when ``root`` is absent)."""
    if not root.exists():
        return {}
    return {
        os.fsdecode(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_unchanged(before: dict[str, str], root: Path, what: str = "results folder") -> None:
    after = snapshot(root)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), (
        f"{what} {root} modified: added {added}, removed {removed}, changed {changed}"
    )


def assert_no_tmp(root: Path) -> None:
    leftovers = [os.fsdecode(p) for p in root.rglob("*.tmp")] if root.exists() else []
    assert not leftovers, f"half-written files left: {leftovers}"


def cell_row(out: Path) -> dict:
    return json.loads((cell_dir(out) / "done.json").read_text(encoding="utf-8"))["row"]


def png_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def noise_rgb(seed: int, h: int = 30, w: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished smoke grid (one cell): ``$B --out OUT``. Probes copy it before touching it."""
    out = tmp_path_factory.mktemp("finished") / "out"
    torch.set_num_threads(1)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main([*B, "--out", str(out)])
    torch.set_num_threads(1)
    assert code == 0, err.getvalue()
    assert (cell_dir(out) / "done.json").exists() and (out / "runs.csv").exists()
    return out


@pytest.fixture
def done_out(finished, tmp_path) -> Path:
    """A private copy of the finished results folder."""
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    return out


@pytest.fixture
def seeded_out(finished, tmp_path) -> Path:
    """A results folder with no cell and no runs.csv yet, holding only the smoke grid's caches (split, classifier,
    reference features, Table 5), so a bad setting that slips through costs a model fit, not a classifier."""
    out = tmp_path / "seeded"
    out.mkdir()
    for name in ("cache", "f1"):
        shutil.copytree(finished / name, out / name)
    return out


def facemask_root(root: Path, n_in: int = TINY_INLIERS_NEEDED, n_out: int = TINY_OUTLIERS_NEEDED) -> Path:
    write_images(root / "without_mask", n_in, (200, 150, 120))
    write_images(root / "with_mask", n_out, (60, 120, 200))
    return root


def first_drawn_inlier(n_files: int, seed: int = 0) -> int:
    """Index (in name order) of the first without_mask/ file the split builder decodes: it walks the folder in
    np.random.default_rng([seed, 0x5EED]).permutation(n) order (bench/datasets/split.py: assemble). The bad file is
    put there so it is certainly read."""
    return int(np.random.default_rng([seed, 0x5EED]).permutation(n_files)[0])


def facemask_root_with(root: Path, suffix: bytes, data: bytes) -> tuple[Path, Path]:
    """A tiny FaceMask folder whose without_mask/ holds exactly the inliers needed plus one bad file (read first).
    Returns (root, bad file path)."""
    facemask_root(root, n_in=TINY_INLIERS_NEEDED + 1)
    folder = root / "without_mask"
    k = first_drawn_inlier(TINY_INLIERS_NEEDED + 1)
    (folder / f"{k:04d}.png").unlink()
    bad = os.path.join(os.fsencode(folder), f"{k:04d}".encode() + suffix)
    with open(bad, "wb") as fh:
        fh.write(data)
    return root, Path(os.fsdecode(bad))


def split_meta(out: Path) -> dict:
    splits = sorted((out / "cache" / "splits").glob("*.npz"))
    assert len(splits) == 1, f"expected one cached split in {out}, found {splits}"
    with np.load(splits[0], allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


# --------------------------------------------------------------------------------------------------- run: options


@pytest.mark.parametrize(
    "extra, fragment",
    [
        pytest.param(["--seeds", "-1"], "seed", id="seeds-negative"),
        pytest.param(["--seeds", "0,-2"], "seed", id="seeds-one-negative"),
        pytest.param(["--seeds", "abc"], "seed", id="seeds-garbage"),
        pytest.param(["--seeds", "1.5"], "seed", id="seeds-float"),
        pytest.param(["--seeds", ","], "seed", id="seeds-empty"),
        pytest.param(["--ratios", "abc"], "ratio", id="ratios-garbage"),
        pytest.param(["--ratios", "0,5,..."], "ratio", id="ratios-open-range"),
        pytest.param(["--ratios", "100"], "ratio", id="ratios-100"),
        pytest.param(["--ratios", "-5"], "ratio", id="ratios-negative"),
        pytest.param(["--ratios", "nan"], "ratio", id="ratios-nan"),
        pytest.param(["--ratios", ""], "ratio", id="ratios-empty"),
        pytest.param(["--jobs", "0"], "jobs", id="jobs-0"),
        pytest.param(["--jobs", "-2"], "jobs", id="jobs-negative"),
        pytest.param(["--jobs", "two"], "jobs", id="jobs-garbage"),
        pytest.param(["--backend", "threads"], "backend", id="backend-unknown"),
        pytest.param(["--scheduler", "tcp://127.0.0.1:1"], "scheduler|backend", id="scheduler-without-dask"),
        pytest.param(["--models", ""], "model", id="models-empty"),
        pytest.param(["--models", "vqvae,nosuch"], "nosuch", id="models-unknown"),
        pytest.param(["--datasets", "faces"], "faces", id="datasets-unknown"),
        pytest.param(["--datasets", ""], "dataset", id="datasets-empty"),
        pytest.param(["--profile", "huge"], "huge", id="profile-unknown"),
        pytest.param(["--set", "models.vqvae.epochs"], "models.vqvae.epochs", id="set-without-equals"),
        pytest.param(["--set", "=3"], "=3", id="set-empty-key"),
        pytest.param(["--set", "data.size=abc"], "data.size", id="set-data-size-garbage"),
        pytest.param(["--set", "data.size=-4"], "data.size", id="set-data-size-negative"),
        pytest.param(["--set", "data.size=1e3"], "data.size", id="set-data-size-float"),
        pytest.param(["--set", "data.nosuch=1"], "nosuch", id="set-unknown-key"),
        pytest.param(["--set", "data.facemask=3"], "data.facemask", id="set-table-as-value"),
        pytest.param(["--set", "data.facemask.inliers=0"], "inliers", id="set-count-zero"),
        pytest.param(["--set", "data.facemask.inliers=many"], "inliers", id="set-count-garbage"),
        pytest.param(["--set", "models=3"], "models", id="set-models-scalar"),
        pytest.param(["--set", "models.vqvae=3"], "models.vqvae", id="set-model-scalar"),
        pytest.param(["--set", "run.threads=-1"], "run.threads", id="set-threads-negative"),
        pytest.param(["--set", "run.threads=two"], "run.threads", id="set-threads-garbage"),
        pytest.param(["--set", "run.device=tpu"], "run.device", id="set-device-unknown"),
        pytest.param(["--data-root-facemask", "/no/such/folder"], "/no/such/folder", id="data-root-missing"),
        pytest.param(["--inception-weights", "/no/such/weights.pth"], "inception", id="inception-weights-missing"),
    ],
)
def test_run_bad_option_on_finished_results(capsys, done_out, extra, fragment):
    """Bad options on a folder with finished results: rejected up front, the results untouched."""
    before = snapshot(done_out)
    res = cli(capsys, *B, "--out", done_out, *extra)
    assert_rejected(res, fragment)
    assert_unchanged(before, done_out)


@pytest.mark.parametrize(
    "key, value",
    [
        # the probes
        ("models.vqvae.lr", "abc"),
        ("models.vqvae.epochs", "-1"),
        # counts and sizes that must be positive
        ("models.vqvae.epochs", "0"),
        ("models.vqvae.batch_size", "0"),
        ("models.vqvae.batch_size", "-32"),
        ("models.vqvae.prior_epochs", "-1"),
        ("models.vqvae.prior_batch_size", "0"),
        ("models.vqvae.sample_batch_size", "0"),
        ("models.vqvae.codebook_size", "0"),
        # learning rates and weights that must be > 0 / >= 0
        ("models.vqvae.lr", "0"),
        ("models.vqvae.lr", "-1e-3"),
        ("models.vqvae.prior_lr", "-1"),
        ("models.vqvae.beta", "-0.25"),
        # wrong types, one per kind of field (int, float, str) and per kind of wrong value
        ("models.vqvae.epochs", "2.5"),
        ("models.vqvae.epochs", "true"),
        ("models.vqvae.epochs", "abc"),
        ("models.vqvae.epochs", "[1, 2]"),
        ("models.vqvae.lr", "true"),
        ("models.vqvae.lr", '"3e-4"'),
        ("models.vqvae.codebook_remedy", "3"),
        ("models.vqvae.codebook_remedy", "bogus"),
        # the other model families
        ("models.rvqvae.eta", "abc"),
        ("models.rvqvae.selection", "1"),
        ("models.gan.iterations", "-1"),
        ("models.gan.d_batch_size", "0"),
        ("models.gan.lr", "abc"),
        ("models.gan.beta2", "1.5"),
        ("models.robustot.batch_size", "0"),
        ("models.robustot.n_critic", "0"),
        ("models.robustot.lr", "-1e-4"),
        ("models.sdnrgan3.lambda_ds", "x"),
        ("models.sdnrgan3.iterations", "-1"),
        # unknown model / field
        ("models.nosuch.epochs", "3"),
        ("models.VQVAE.epochs", "3"),
        ("models.vqvae.epoch", "3"),
        # profile settings the model and evaluation use
        ("eval.max_generated", "0"),
        ("eval.classifier_epochs", "-1"),
        ("eval.classifier_batch", "0"),
        ("eval.kid_subset_size", "0"),
        ("eval.inception_weights", '"/no/such/weights.pth"'),
        ("run.grid_samples", "-1"),
    ],
)
def test_run_bad_setting(capsys, seeded_out, key, value):
    """``$B --set KEY=VALUE`` (with --models set to the model the key names): rejected before any training, no cell
    folder, no runs.csv, caches untouched."""
    model = key.split(".")[1] if key.startswith("models.") and key.split(".")[1] in (
        "vqvae", "rvqvae", "gan", "robustot", "sdnrgan3") else "vqvae"  # fmt: skip
    before = snapshot(seeded_out)
    args = [a if a != "vqvae" else model for a in B]
    res = cli(capsys, *args, "--out", seeded_out, "--set", f"{key}={value}")
    # where: the key, or its section and field apart ("bad setting for models.vqvae: codebook_remedy must be ..."),
    # or, for a model that does not exist, its name
    section, _, name = key.rpartition(".")
    if key.startswith("models.") and model != key.split(".")[1]:
        assert_rejected(res, re.escape(key.split(".")[1]))
    else:
        assert_rejected(res, re.escape(section), re.escape(name))
    assert not (seeded_out / "cells").exists(), "a cell folder was created for a rejected setting"
    assert not (seeded_out / "runs.csv").exists(), "runs.csv was created for a rejected setting"
    assert_unchanged(before, seeded_out)


def test_run_garbage_inception_weights_rejected_before_training(capsys, seeded_out, tmp_path):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(os.urandom(300))
    before = snapshot(seeded_out)
    res = cli(capsys, *B, "--out", seeded_out, "--inception-weights", weights)
    assert_rejected(res, re.escape(str(weights)))
    assert not (seeded_out / "cells").exists() and not (seeded_out / "runs.csv").exists()
    assert_unchanged(before, seeded_out)


def test_run_bad_model_lr_in_a_real_process(seeded_out):
    """The issue's ``$B --set models.vqvae.lr=abc`` in a real process."""
    before = snapshot(seeded_out)
    res = proc(*B, "--out", seeded_out, "--set", "models.vqvae.lr=abc")
    assert_rejected(res, "models.vqvae.lr")
    assert_unchanged(before, seeded_out)


# --------------------------------------------------------------------------------------------------- run: config


def _config(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "bench.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_config_profile_key_is_honoured_or_rejected(capsys, tmp_path, done_out):
    """A TOML ``--config`` with ``profile = "smoke"`` (and no --profile): either the smoke profile runs, or the key
    is rejected with one line; silently running the default (cpu) profile is wrong."""
    cfg = _config(tmp_path, 'profile = "smoke"\n')
    before = snapshot(done_out)
    args = [a for a in GRID if a not in ("--profile", "smoke")]
    res = cli(capsys, "run", *args, "--out", done_out, "--config", cfg, "--dry-run")
    assert_no_traceback(res)
    if res.code == 2:
        assert_rejected(res, "profile")
    else:
        assert res.code == 0, res.describe()
        assert "profile smoke" in res.out, f'profile = "smoke" in {cfg.name} was ignored: {res.out!r}'
        assert re.search(r"done\s+[0-9a-f]{12}\s+facemask/vqvae/r0/s0", res.out), res.out  # the smoke cell is found
    assert_unchanged(before, done_out)


@pytest.mark.parametrize(
    "text, fragment",
    [
        pytest.param("[data\nsize = 16\n", "bench.toml", id="syntax-error"),
        pytest.param(b"\xff\xfe\x00garbage", "bench.toml", id="binary"),
        pytest.param('profile = "huge"\n', "huge", id="profile-unknown"),
        pytest.param("profile = 3\n", "profile", id="profile-not-a-string"),
        pytest.param("[data]\nzzz = 1\n", "zzz", id="unknown-key"),
        pytest.param('[data]\nsize = "big"\n', "data.size", id="wrong-type"),
        pytest.param("data = 3\n", "data", id="scalar-for-table"),
        pytest.param("[models.vqvae]\nepochs = -1\n", "models.vqvae.epochs", id="model-epochs-negative"),
        pytest.param('[models.vqvae]\nlr = "fast"\n', "models.vqvae.lr", id="model-lr-string"),
        pytest.param("[run]\nthreads = -1\n", "run.threads", id="threads-negative"),
    ],
)
def test_config_file_bad(capsys, tmp_path, done_out, text, fragment):
    cfg = _config(tmp_path, text)
    before = snapshot(done_out)
    res = cli(capsys, *B, "--out", done_out, "--config", cfg)
    assert_rejected(res, fragment)
    assert_unchanged(before, done_out)


def test_config_file_missing(capsys, tmp_path, done_out):
    before = snapshot(done_out)
    res = cli(capsys, *B, "--out", done_out, "--config", tmp_path / "nope.toml")
    assert_rejected(res, "nope.toml")
    assert_unchanged(before, done_out)


def test_config_file_is_a_folder(capsys, tmp_path, done_out):
    (tmp_path / "conf.toml").mkdir()
    before = snapshot(done_out)
    res = cli(capsys, *B, "--out", done_out, "--config", tmp_path / "conf.toml")
    assert_rejected(res, "conf.toml")
    assert_unchanged(before, done_out)


# --------------------------------------------------------------------------------------------------- run: --out


def test_run_out_below_a_regular_file(capsys, tmp_path):
    """``--out FILE/sub``: cannot be created; rejected before building any split."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder\n")
    res = cli(capsys, *B, "--out", blocker / "sub")
    assert_rejected(res, re.escape(str(blocker)))
    assert blocker.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_run_out_is_a_regular_file(capsys, tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder\n")
    res = cli(capsys, *B, "--out", blocker)
    assert_rejected(res, re.escape(str(blocker)))
    assert blocker.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_run_out_in_read_only_folder(capsys, tmp_path):
    """An --out nobody may write: a chmod 555 folder, or (as root, whom chmod does not stop) a folder under /proc."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        target = Path("/proc") / "bench-read-only-probe" / "results"
        res = cli(capsys, *B, "--out", target)
        assert_rejected(res, re.escape(str(target)))
        assert not target.parent.exists()
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        res = cli(capsys, *B, "--out", ro / "results")
        assert_rejected(res, re.escape(str(ro)))
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_rerun_of_finished_grid_rewrites_nothing(capsys, done_out):
    """Nothing new to run: exit 0, and runs.csv (bytes and mtime) and every other file stay as they were."""
    before = snapshot(done_out)
    mtime = (done_out / "runs.csv").stat().st_mtime_ns
    res = cli(capsys, *B, "--out", done_out)
    assert_no_traceback(res)
    assert res.code == 0, res.describe()
    assert_unchanged(before, done_out)
    assert (done_out / "runs.csv").stat().st_mtime_ns == mtime, "runs.csv was rewritten although nothing was new"


# --------------------------------------------------------------------------------------------------- images


def test_decode_16bit_grayscale_matches_8bit(tmp_path):
    """A 16-bit grayscale PNG (mode I;16) decodes like its 8-bit conversion, not as a solid white image."""
    from bench.datasets.images import decode

    grad8 = np.tile(np.linspace(0, 255, 40).round().astype(np.uint8), (30, 1))
    grad8[:, :10] = 30  # a dark band, so an all-white result cannot match by accident
    img16 = Image.fromarray(grad8.astype(np.uint16) * 257)
    assert img16.mode.startswith("I")
    img16.save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as check:
        assert check.mode in ("I;16", "I;16B", "I"), check.mode  # really a 16-bit file
    Image.fromarray(grad8, "L").save(tmp_path / "g8.png")
    for source in (tmp_path / "g16.png", (tmp_path / "g16.png").read_bytes()):
        d16, d8 = decode(source, 16), decode(tmp_path / "g8.png", 16)
        assert d16 is not None and d16.shape == (16, 16, 3)
        assert not (d16 == 255).all(), "16-bit grayscale decoded as a solid white image"
        diff = np.abs(d16.astype(int) - d8.astype(int)).max()
        assert diff <= 2, f"16-bit grayscale differs from its 8-bit conversion by up to {diff} levels"


def _truncated_png() -> bytes:
    data = png_bytes(noise_rgb(1))
    return data[: len(data) // 2]


def _truncated_jpeg() -> bytes:
    data = png_bytes(noise_rgb(2), fmt="JPEG")
    return data[: len(data) // 2]


@functools.lru_cache(maxsize=1)
def _huge_png() -> bytes:
    """14000 x 14000, 1 bit per pixel: a few kB on disk, 196 M pixels (PIL calls it a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("1", (14000, 14000), 1).save(buf, format="PNG")
    return buf.getvalue()


# name suffix (bytes), content, whether a correct decode is possible (else it must be skipped and counted)
BAD_IMAGES = {
    "truncated-png": (b".png", _truncated_png, False),
    "truncated-jpeg": (b".jpg", _truncated_jpeg, False),
    "zero-bytes": (b".png", lambda: b"", False),
    "text-named-png": (b".png", lambda: b"this is not an image\n" * 20, False),
    "huge-14000px": (b".png", _huge_png, True),
    "non-utf8-name": (b"\xff\xfe.png", lambda: png_bytes(noise_rgb(3)), True),
}


@pytest.mark.parametrize("kind", list(BAD_IMAGES))
def test_run_with_bad_image_file(capsys, tmp_path, kind):
    """``$B --data-root-facemask D`` with one bad file in D/without_mask/: a correct result, or the file skipped,
    counted (split meta) AND printed; never a crash."""
    suffix, make, decodable = BAD_IMAGES[kind]
    root, _ = facemask_root_with(tmp_path / "D", suffix, make())
    out = tmp_path / "out"
    res = cli(capsys, *B, "--out", out, "--data-root-facemask", root, *TINY)
    assert_no_traceback(res)
    assert res.code == 0, res.describe()
    meta = split_meta(out)
    skipped = meta.get("unreadable_skipped")
    if not decodable:
        assert skipped == 1, f"the unreadable file was not counted: unreadable_skipped={skipped}"
    assert skipped in (0, 1), skipped
    if skipped:
        assert re.search(r"skip|unreadable", res.out + res.err, re.IGNORECASE), (
            f"{skipped} unreadable image(s) skipped but nothing printed about it: {res.describe()}"
        )
    assert meta["n_inliers"] == TINY_COUNTS["inliers"]
    assert cell_row(out)["n_inliers"] == TINY_COUNTS["inliers"]
    assert_no_tmp(out)


@pytest.mark.parametrize("kind", list(BAD_IMAGES))
def test_data_build_json_with_bad_image_file(capsys, tmp_path, kind):
    """``data build --json`` on the same folders: exit 0 and the skip counted in the printed JSON."""
    suffix, make, decodable = BAD_IMAGES[kind]
    root, _ = facemask_root_with(tmp_path / "D", suffix, make())
    out = tmp_path / "out"
    res = cli(capsys, "data", "build", "--dataset", "facemask", "--ratio", "0", "--profile", "smoke", *TINY,
              "--data-root", root, "--out", out, "--json")  # fmt: skip
    assert_no_traceback(res)
    assert res.code == 0, res.describe()
    info = json.loads(res.out)
    assert info["n_inliers"] == TINY_COUNTS["inliers"]
    assert info["unreadable_skipped"] == (info["unreadable_skipped"] if decodable else 1), info
    assert info["unreadable_skipped"] in (0, 1)
    assert_no_tmp(out)


def test_data_build_text_mode_prints_the_skip(capsys, tmp_path):
    """Without --json the one summary line must still say that an unreadable file was skipped."""
    root, _ = facemask_root_with(tmp_path / "D", b".png", b"")
    res = cli(capsys, "data", "build", "--dataset", "facemask", "--ratio", "0", "--profile", "smoke", *TINY,
              "--data-root", root, "--out", tmp_path / "out")  # fmt: skip
    assert_no_traceback(res)
    assert res.code == 0, res.describe()
    assert re.search(r"skip|unreadable", res.out + res.err, re.IGNORECASE), res.describe()


def test_data_build_non_utf8_name_in_a_real_process(tmp_path):
    root, _ = facemask_root_with(tmp_path / "D", b"\xff.png", png_bytes(noise_rgb(4)))
    res = proc("data", "build", "--dataset", "facemask", "--ratio", "0", "--profile", "smoke", *TINY,
               "--data-root", root, "--out", tmp_path / "out", "--json")  # fmt: skip
    assert_no_traceback(res)
    assert res.code == 0, res.describe()
    assert json.loads(res.out)["n_inliers"] == TINY_COUNTS["inliers"]


def test_run_data_root_with_non_utf8_folder_name(capsys, tmp_path):
    """D itself has a name that is not valid UTF-8 (config.json records it): a correct run or one clear line."""
    parent = os.fsencode(tmp_path)
    root_b = os.path.join(parent, b"faces\xff")
    os.mkdir(root_b)
    root = Path(os.fsdecode(root_b))
    facemask_root(root)
    out = tmp_path / "out"
    res = cli(capsys, *B, "--out", out, "--data-root-facemask", root, *TINY)
    assert_no_traceback(res)
    if res.code == 2:
        assert_rejected(res)
        assert not (out / "cells").exists() and not (out / "runs.csv").exists()
    else:
        assert res.code == 0, res.describe()
        assert cell_row(out)["n_inliers"] == TINY_COUNTS["inliers"]
    assert_no_tmp(out)


@pytest.mark.parametrize(
    "setup, fragment",
    [
        pytest.param(lambda d: (d.parent.mkdir(parents=True, exist_ok=True), d.write_text("x")), "facemask",
                     id="root-is-a-file"),
        pytest.param(lambda d: facemask_root(d) and shutil.rmtree(d / "with_mask"), "with_mask", id="no-with_mask"),
        pytest.param(lambda d: (facemask_root(d, n_out=0), (d / "with_mask").mkdir(exist_ok=True)), "with_mask",
                     id="empty-with_mask"),
        pytest.param(lambda d: (write_images(d / "with_mask", 3, (60, 120, 200)),
                                (d / "without_mask").mkdir(), (d / "without_mask" / "a.png").write_bytes(b"")),
                     "without_mask|readable|image", id="only-unreadable-inliers"),
        pytest.param(lambda d: facemask_root(d, n_in=10, n_out=5), "not enough|too small|images", id="too-few-images"),
    ],
)  # fmt: skip
def test_run_bad_data_root(capsys, tmp_path, setup, fragment):
    """Bad FaceMask folders with the full smoke profile: one line, nothing written to OUT."""
    root = tmp_path / "D"
    setup(root)
    out = tmp_path / "out"
    res = cli(capsys, *B, "--out", out, "--data-root-facemask", root)
    assert_rejected(res, fragment)
    assert snapshot(out) == {}, f"files written for a rejected data root: {sorted(snapshot(out))}"


def test_run_data_root_points_one_level_too_deep(capsys, tmp_path):
    root = facemask_root(tmp_path / "D")
    res = cli(capsys, *B, "--out", tmp_path / "out", "--data-root-facemask", root / "without_mask")
    assert_rejected(res, "without_mask")
    assert snapshot(tmp_path / "out") == {}


# --------------------------------------------------------------------------------------------------- data build


@pytest.mark.parametrize(
    "extra, fragment",
    [
        pytest.param(["--dataset", "facemask", "--ratio", "abc"], "ratio", id="ratio-garbage"),
        pytest.param(["--dataset", "facemask", "--ratio", "100"], "ratio", id="ratio-100"),
        pytest.param(["--dataset", "facemask", "--ratio", "-5"], "ratio", id="ratio-negative"),
        pytest.param(["--dataset", "facemask", "--ratio", "inf"], "ratio", id="ratio-inf"),
        pytest.param(["--dataset", "facemask", "--ratio", "10", "--seed", "-1"], "seed", id="seed-negative"),
        pytest.param(["--dataset", "facemask", "--ratio", "10", "--seed", "x"], "seed", id="seed-garbage"),
        pytest.param(["--dataset", "facemask", "--ratio", "10", "--profile", "huge"], "huge", id="profile-unknown"),
        pytest.param(["--dataset", "facemask,roomcrop", "--ratio", "10"], "dataset", id="two-datasets"),
        pytest.param(["--dataset", "", "--ratio", "10"], "dataset", id="dataset-empty"),
        pytest.param(["--dataset", "facemask", "--ratio", "10", "--set", "data.size=10"], "data.size", id="size-10"),
    ],
)
def test_data_build_bad_option(capsys, tmp_path, extra, fragment):
    out = tmp_path / "out"
    res = cli(capsys, "data", "build", *extra, "--out", out)
    assert_rejected(res, fragment)
    assert snapshot(out) == {}, f"files written for rejected input: {sorted(snapshot(out))}"


def test_data_build_out_below_a_regular_file(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = cli(capsys, "data", "build", "--dataset", "facemask", "--ratio", "10", "--profile", "smoke",
              "--out", blocker / "sub")  # fmt: skip
    assert_rejected(res, re.escape(str(blocker)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_data_build_roomcrop_garbage_lmdb(capsys, tmp_path):
    """A RoomCrop root holding a data.mdb that is not an LMDB database."""
    root = tmp_path / "rooms"
    root.mkdir()
    (root / "data.mdb").write_bytes(os.urandom(4096))
    res = cli(capsys, "data", "build", "--dataset", "roomcrop", "--ratio", "10", "--profile", "smoke",
              "--data-root", root, "--out", tmp_path / "out")  # fmt: skip
    assert_rejected(res, "data.mdb|lmdb")
    assert snapshot(tmp_path / "out") == {}


def test_data_build_roomcrop_folder_of_facemask_layout(capsys, tmp_path):
    """A FaceMask folder given as the RoomCrop root (no images directly in it)."""
    root = facemask_root(tmp_path / "D")
    res = cli(capsys, "data", "build", "--dataset", "roomcrop", "--ratio", "10", "--profile", "smoke",
              "--data-root", root, "--out", tmp_path / "out")  # fmt: skip
    assert_rejected(res, "roomcrop|images")
    assert snapshot(tmp_path / "out") == {}


# --------------------------------------------------------------------------------------------------- eval


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _without_samples_key(path: Path) -> None:
    with np.load(path) as z:
        arr = z["samples"]
    with open(path, "wb") as fh:
        np.savez_compressed(fh, images=arr)


def _wrong_shape(path: Path) -> None:
    with open(path, "wb") as fh:
        np.savez_compressed(fh, samples=np.zeros((5, 7), np.float64))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_random_bytes, id="random-300-bytes"),
        pytest.param(_cut_in_half, id="cut-in-half"),
        pytest.param(_without_samples_key, id="no-samples-key"),
        pytest.param(_wrong_shape, id="wrong-shape"),
    ],
)
def test_eval_damaged_samples(capsys, done_out, damage):
    """``eval --cell`` when samples.npz is damaged: one line naming the file; done.json, metrics.json and runs.csv
    unchanged."""
    damage(cell_dir(done_out) / "samples.npz")
    before = snapshot(done_out)
    res = cli(capsys, "eval", "--cell", cell_dir(done_out))
    assert_rejected(res, "samples")
    assert_unchanged(before, done_out)


def test_eval_damaged_samples_in_a_real_process(done_out):
    _random_bytes(cell_dir(done_out) / "samples.npz")
    before = snapshot(done_out)
    res = proc("eval", "--cell", cell_dir(done_out))
    assert_rejected(res, "samples")
    assert_unchanged(before, done_out)


@pytest.mark.parametrize(
    "damage, fragment",
    [
        pytest.param(lambda c: (c / "config.json").unlink(), "config.json", id="config-missing"),
        pytest.param(lambda c: (c / "config.json").write_text("{not json"), "config.json", id="config-garbage"),
        pytest.param(lambda c: (c / "config.json").write_text('{"cell": {}}'), "config.json", id="config-no-profile"),
        pytest.param(lambda c: (c / "done.json").write_text("{"), "done.json|finished", id="done-garbage"),
        pytest.param(lambda c: (c / "metrics.json").write_text("{"), "metrics.json", id="metrics-garbage"),
    ],
)
def test_eval_damaged_cell_files(capsys, done_out, damage, fragment):
    damage(cell_dir(done_out))
    before = snapshot(done_out)
    res = cli(capsys, "eval", "--cell", cell_dir(done_out))
    assert_rejected(res, fragment)
    assert_unchanged(before, done_out)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda out: out, id="results-folder"),
        pytest.param(lambda out: out / "cells" / "facemask", id="dataset-folder"),
        pytest.param(lambda out: out / "cells" / "nosuch" / "vqvae" / "r0" / "s0", id="missing-folder"),
        pytest.param(lambda out: cell_dir(out) / "done.json", id="a-file"),
    ],
)
def test_eval_not_a_cell(capsys, done_out, where):
    before = snapshot(done_out)
    target = where(done_out)
    res = cli(capsys, "eval", "--cell", target)
    assert_rejected(res, re.escape(target.name))
    assert_unchanged(before, done_out)
    assert not (done_out / "cells" / "nosuch").exists()


def test_eval_cell_copied_out_of_its_results_folder(capsys, done_out, tmp_path):
    """A cell folder copied elsewhere: its results folder is not ``folder.parents[4]``. Re-evaluating must not write
    a runs.csv or caches into whatever folder happens to sit four levels up."""
    top = tmp_path / "elsewhere"
    loose = top / "a" / "b" / "c" / "d" / "s0"  # parents[4] is ``top``
    shutil.copytree(cell_dir(done_out), loose)
    before = snapshot(top)
    res = cli(capsys, "eval", "--cell", loose)
    assert_no_traceback(res)
    assert res.code in (0, 2), res.describe()
    if res.code == 2:
        assert_rejected(res)
    strays = sorted(k for k in set(snapshot(top)) - set(before) if not k.startswith("a/b/c/d/s0/"))
    assert not strays, f"eval wrote outside the cell folder: {strays}"


# --------------------------------------------------------------------------------------------------- report


def assert_report_shows_cell_numbers(out: Path) -> None:
    """Table 1 and Table 3 show exactly the cell's done.json values (pct_inliers, fd_classifier)."""
    import pandas as pd

    row = cell_row(out)
    for table, metric, digits in (("table1", "pct_inliers", 2), ("table3", "fd_classifier", 3)):
        path = out / "report" / f"{table}.csv"
        assert path.exists(), f"{table}.csv missing although a finished cell exists"
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        ours = df[df.iloc[:, 0] == "VQ-VAE"]
        assert len(ours) == 1, f"{table}: no single VQ-VAE row:\n{df}"
        shown = ours.iloc[0].get("0%")
        assert shown == f"{row[metric]:.{digits}f}", f"{table} shows {shown!r}, done.json says {metric}={row[metric]}"


def _append(text: str | bytes):
    def damage(path: Path) -> None:
        with open(path, "ab") as fh:
            fh.write(text if isinstance(text, bytes) else text.encode())

    return damage


def _cut_inside_pct_inliers(path: Path) -> None:
    """The row ends ``...,<pct_inliers>,...``: cut after all but the last digit of pct_inliers (100 -> 10)."""
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    col = header.index("pct_inliers")
    fields = lines[1].split(",")
    assert len(fields[col]) >= 2, fields[col]
    prefix = ",".join(fields[:col]) + "," + fields[col][:-1]
    path.write_text(lines[0] + prefix)


def _duplicate_row_other_value(path: Path) -> None:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[1].split(",")
    fields[header.index("pct_inliers")] = "10"
    path.write_text("\n".join([*lines, ",".join(fields)]) + "\n")


RUNS_CSV_DAMAGE = {
    "garbage-line": _append("x,y,z\n"),
    "open-quote": _append('facemask,"vqvae,0,0,smoke\n'),
    "binary-bytes": _append(b"\x00\xff\xfe\x89PNG\r\n\x1a\n\x00\x00"),
    "emptied": lambda p: p.write_bytes(b""),
    "cut-to-100-bytes": lambda p: p.write_bytes(p.read_bytes()[:100]),
    "cut-inside-a-number": _cut_inside_pct_inliers,
    "deleted": lambda p: p.unlink(),
    "duplicate-row-other-value": _duplicate_row_other_value,
}


@pytest.mark.parametrize("kind", list(RUNS_CSV_DAMAGE))
def test_report_on_damaged_runs_csv(capsys, done_out, kind):
    """A damaged runs.csv: no crash; either one error line (exit 2), or exit 0 with a note that runs.csv was
    rebuilt and tables showing exactly the cells' done.json numbers. The cells are never modified."""
    RUNS_CSV_DAMAGE[kind](done_out / "runs.csv")
    cells_before = snapshot(done_out / "cells")
    res = cli(capsys, "report", "--out", done_out)
    assert_no_traceback(res)
    assert res.code in (0, 2), res.describe()
    if res.code == 2:
        assert_rejected(res, "runs.csv")
    else:
        assert_report_shows_cell_numbers(done_out)
        assert "runs.csv" in res.err + res.out, f"runs.csv was damaged and nothing says so: {res.describe()}"
    assert_unchanged(cells_before, done_out / "cells", "cells folder")
    assert_no_tmp(done_out)


def test_report_on_emptied_runs_csv_in_a_real_process(done_out):
    (done_out / "runs.csv").write_bytes(b"")
    res = proc("report", "--out", done_out)
    assert_no_traceback(res)
    assert res.code in (0, 2), res.describe()
    if res.code == 2:
        assert_rejected(res, "runs.csv")


def test_report_out_does_not_exist(capsys, tmp_path):
    missing = tmp_path / "DOES_NOT_EXIST"
    res = cli(capsys, "report", "--out", missing)
    assert_rejected(res, "DOES_NOT_EXIST")
    assert not missing.exists(), "report created the folder it was asked to read"


def test_report_out_is_a_regular_file(capsys, tmp_path):
    path = tmp_path / "results"
    path.write_text("x")
    res = cli(capsys, "report", "--out", path)
    assert_rejected(res, "results")
    assert path.read_text() == "x"


def test_report_out_empty_folder(capsys, tmp_path):
    """An existing folder with no results (a wrong --out): one line, and no report/ folder left behind."""
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli(capsys, "report", "--out", empty)
    assert_rejected(res, "empty|runs.csv")
    assert list(empty.iterdir()) == []


def test_report_folder_is_a_file(capsys, done_out):
    """OUT/report exists as a regular file: the report cannot be written there."""
    shutil.rmtree(done_out / "report", ignore_errors=True)  # `bench run` wrote one
    (done_out / "report").write_text("x")
    before = snapshot(done_out)
    res = cli(capsys, "report", "--out", done_out)
    assert_rejected(res, "report")
    assert_unchanged(before, done_out)


def _rename_dataset(out: Path, new: str) -> None:
    runs = out / "runs.csv"
    runs.write_text(runs.read_text().replace("\nfacemask,", f"\n{new},"))
    for name in ("done.json", "config.json", "metrics.json"):
        p = cell_dir(out) / name
        p.write_text(p.read_text().replace('"facemask"', f'"{new}"'))
    (out / "cells" / "facemask").rename(out / "cells" / new)
    f1 = next((out / "f1").glob("facemask_s0*.csv"))  # f1/<dataset>_s<seed>_<held-out hash>.csv
    f1.write_text(f1.read_text().replace(",facemask,", f",{new},"))
    f1.rename(out / "f1" / f1.name.replace("facemask", new, 1))


def test_report_unknown_dataset(capsys, done_out):
    """Results of a dataset the report does not know (renamed everywhere): no KeyError traceback."""
    _rename_dataset(done_out, "celeba")
    cells_before = snapshot(done_out / "cells")
    res = cli(capsys, "report", "--out", done_out)
    assert_no_traceback(res)
    assert res.code in (0, 2), res.describe()
    if res.code == 2:
        assert_rejected(res, "celeba")
    assert_unchanged(cells_before, done_out / "cells", "cells folder")


@pytest.mark.parametrize(
    "content",
    [pytest.param(b"x,y,z\n1,2\n", id="garbage"), pytest.param(b"\x00\xff" * 50, id="binary"),
     pytest.param(b"", id="empty")],
)  # fmt: skip
def test_report_damaged_f1_table(capsys, done_out, content):
    """A damaged f1/<dataset>_s<seed>.csv (Table 5's input): one line or a report without it; no crash."""
    next((done_out / "f1").glob("facemask_s0*.csv")).write_bytes(content)
    cells_before = snapshot(done_out / "cells")
    res = cli(capsys, "report", "--out", done_out)
    assert_no_traceback(res)
    assert res.code in (0, 2), res.describe()
    if res.code == 2:
        assert_rejected(res, "f1|facemask_s0")
    else:
        assert_report_shows_cell_numbers(done_out)
    assert_unchanged(cells_before, done_out / "cells", "cells folder")


# --------------------------------------------------------------------------------------------------- click level


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["rnu"], id="unknown-command"),
        pytest.param(["run", "--nosuch"], id="unknown-option"),
        pytest.param(["run", "--seeds"], id="missing-value"),
        pytest.param(["data", "build", "--ratio", "10"], id="missing-required"),
        pytest.param(["eval"], id="eval-without-cell"),
        pytest.param(["models", "extra"], id="extra-argument"),
    ],
)
def test_usage_errors(capsys, tmp_path, args):
    res = cli(capsys, *args)
    assert_rejected(res)
