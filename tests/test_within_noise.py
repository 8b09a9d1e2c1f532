"""benchmarks/within_noise.py: the check that a profile change stays within one seed's noise."""

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from bench import store

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "within_noise.py"
spec = importlib.util.spec_from_file_location("within_noise", SCRIPT)
within_noise = importlib.util.module_from_spec(spec)
sys.modules["within_noise"] = within_noise  # dataclasses look their module up there
spec.loader.exec_module(within_noise)

RATIOS = (0.0, 10.0, 20.0, 30.0)
# three reference seeds: seed 1 is 4 points above seed 0 and seed 2 4 points below it, at every ratio
REFERENCE = {0: (95.0, 80.0, 70.0, 60.0), 1: (99.0, 84.0, 74.0, 64.0), 2: (91.0, 76.0, 66.0, 56.0)}


def results(tmp_path: Path, name: str, by_seed: dict[int, tuple[float, ...]]) -> Path:
    out = tmp_path / name
    out.mkdir()
    rows = [{"dataset": "facemask", "model": "gan", "variant": "", "ratio": r, "seed": s, "pct_inliers": v,
             "profile": "cpu", "config_digest": hashlib.sha256(f"{name}{s}{r}".encode()).hexdigest()}
            for s, values in by_seed.items() for r, v in zip(RATIOS, values)]  # fmt: skip
    store.ResultsStore(out).write_index([store.CellRecord.from_row(r) for r in rows])
    return out


def comparison(tmp_path: Path, candidate: tuple[float, ...]) -> "within_noise.Comparison":
    ref = within_noise.unfiltered(results(tmp_path, "ref", REFERENCE), "facemask")
    cand = within_noise.unfiltered(results(tmp_path, "cand", {0: candidate}), "facemask")
    return within_noise.compare(cand, ref, "gan", "pct_inliers")


def test_the_bound_is_the_largest_seed_pair_and_the_candidate_is_paired_with_its_own_seed(tmp_path):
    r = comparison(tmp_path, (93.0, 78.0, 68.0, 58.0))  # 2 points below seed 0 everywhere
    assert r.cells == 4
    assert r.paired_mad == pytest.approx(2.0) and r.paired_shift == pytest.approx(-2.0)
    assert r.noise_max == pytest.approx(8.0)  # seeds 1 and 2
    assert r.noise_mean == pytest.approx((4 + 4 + 8) / 3)
    assert r.in_range == 4 and r.within


def test_a_shift_larger_than_any_seed_pair_is_outside(tmp_path):
    r = comparison(tmp_path, (85.0, 70.0, 60.0, 50.0))  # 10 points below seed 0
    assert r.paired_mad == pytest.approx(10.0) and r.paired_shift == pytest.approx(-10.0)
    assert r.in_range == 0 and not r.within


def test_a_candidate_without_its_seed_in_the_reference_is_not_compared(tmp_path):
    ref = within_noise.unfiltered(results(tmp_path, "ref", {1: REFERENCE[1], 2: REFERENCE[2]}), "facemask")
    cand = within_noise.unfiltered(results(tmp_path, "cand", {0: REFERENCE[0]}), "facemask")
    assert within_noise.compare(cand, ref, "gan", "pct_inliers") is None


def test_several_candidate_seeds_are_each_paired_with_their_own_and_ratios_can_be_chosen(tmp_path):
    ref = within_noise.unfiltered(results(tmp_path, "ref", REFERENCE), "facemask")
    cand = within_noise.unfiltered(
        results(tmp_path, "cand", {0: (94.0, 0.0, 0.0, 59.0), 1: (100.0, 0.0, 0.0, 65.0)}), "facemask"
    )
    r = within_noise.compare(cand, ref, "gan", "pct_inliers", ratios={0.0, 30.0})
    assert r.cells == 4  # seeds 0 and 1 at 0 % and 30 %; 10 % and 20 % (80 points off) left out
    assert r.paired_mad == pytest.approx(1.0) and r.paired_shift == pytest.approx(0.0)
    assert r.noise_max == pytest.approx(8.0) and r.within and r.in_range == 2  # 100 and 65 lie above seed 1


@pytest.mark.parametrize("extra", [["--metrics", "nonsense"], ["--ratios", "x"], ["--dataset", "roomcrop"]])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, extra):
    ref, cand = results(tmp_path, "ref", REFERENCE), results(tmp_path, "cand", {0: REFERENCE[0]})
    monkeypatch.setattr(sys, "argv", ["within_noise.py", "--candidate", str(cand), "--reference", str(ref), *extra])
    with pytest.raises(SystemExit) as exit_:
        within_noise.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("within_noise: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_folder_that_is_not_a_results_folder_is_refused(tmp_path, monkeypatch, capsys):
    ref = results(tmp_path, "ref", REFERENCE)
    monkeypatch.setattr(
        sys, "argv", ["within_noise.py", "--candidate", str(tmp_path / "none"), "--reference", str(ref)]
    )
    with pytest.raises(SystemExit) as exit_:
        within_noise.main()
    assert exit_.value.code == 2 and "is not a results folder" in capsys.readouterr().err
