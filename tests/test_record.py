"""The typed cell record and the one scoring step: columns come from the record, a row parses back to the same record,
bad rows are refused by name, and the sharpness statistic behaves as documented."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest
import torch

from bench.record import COLUMNS, NUMERIC, CellRecord, RecordError
from bench.scoring import Score, laplacian_energy
from bench.store import ResultsStore

DIGEST = hashlib.sha256(b"cell").hexdigest()
ROW = {"dataset": "facemask", "model": "gan", "variant": "", "ratio": 30.0, "seed": 1, "profile": "cpu", "size": 32,
       "n_inliers": 300, "n_outliers": 129, "n_samples": 300, "pct_inliers": 71.5, "robustness": 0.05,
       "fid_kind": "none", "recall": 0.61, "config_digest": DIGEST, "settings_digest": DIGEST}  # fmt: skip


def test_columns_are_the_record_fields_flattened_in_order():
    assert COLUMNS[:11] == ("dataset", "model", "variant", "ratio", "seed", "profile", "size", "n_inliers",
                            "n_outliers", "n_samples", "pct_inliers")  # fmt: skip
    assert [c for c in COLUMNS if c in Score.columns()] == Score.columns()
    assert "kid_std" not in COLUMNS and "sharpness" in COLUMNS and "sharpness" in NUMERIC
    assert COLUMNS[-4:] == ("commit", "protocol_digest", "config_digest", "settings_digest")


def test_a_row_round_trips_through_runs_csv(tmp_path):
    record = CellRecord.from_row(ROW)
    assert record.score.pct_inliers == 71.5 and record.score.fid is None and record.timing.train_s is None
    store = ResultsStore(tmp_path)
    store.write_index([record])
    (line,) = csv.DictReader(io.StringIO((tmp_path / "runs.csv").read_text()))
    assert list(line) == list(COLUMNS)
    assert CellRecord.from_row(line) == record


def test_rows_of_older_versions_get_defaults():
    old = {k: ROW[k] for k in ("dataset", "model", "ratio", "seed", "profile", "pct_inliers")}
    record = CellRecord.from_row(old)
    assert (record.variant, record.kind, record.config_digest) == ("", "model", "legacy")


@pytest.mark.parametrize("change, field", [
    ({"dataset": "../../x"}, "dataset"), ({"model": "GAN!"}, "model"), ({"pct_inliers": "abc"}, "pct_inliers"),
    ({"pct_inliers": None}, "pct_inliers"), ({"seed": 1.5}, "seed"), ({"ratio": 130}, "ratio"),
    ({"config_digest": "abc"}, "config_digest"), ({"robustness": float("inf")}, "robustness"), ({"profile": 3}, "profile"),
])  # fmt: skip
def test_bad_rows_are_refused_naming_the_field(change, field):
    with pytest.raises(RecordError, match=field):
        CellRecord.from_row({**ROW, **change})


def test_sharpness_falls_with_blur_and_is_zero_for_flat_images():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    blurred = [images]
    for _ in range(3):  # repeated 3 x 3 box blur: each pass removes high frequencies
        x = torch.nn.functional.avg_pool2d(blurred[-1].float(), 3, stride=1, padding=1, count_include_pad=False)
        blurred.append(x.round().to(torch.uint8))
    energies = [laplacian_energy(x) for x in blurred]
    assert energies == sorted(energies, reverse=True) and energies[-1] < 0.2 * energies[0]
    assert laplacian_energy(torch.full((4, 3, 16, 16), 128, dtype=torch.uint8)) == 0.0
