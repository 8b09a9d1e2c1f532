"""Interface contracts every adversarial baseline must keep, run once per model (tiny settings from each model's tests)."""

import pytest

from tests.models import test_gan, test_robustot, test_sdnrgan3
from tests.models.test_gan_common import (
    contract_deterministic_sampling,
    contract_outlier_labels_unused,
    contract_resume,
    contract_save_load,
)

MODELS = [pytest.param(m.NAME, m.TINY, id=m.NAME) for m in (test_gan, test_sdnrgan3, test_robustot)]


@pytest.mark.parametrize("name, tiny", MODELS)
def test_deterministic_sampling(name, tiny):
    contract_deterministic_sampling(name, tiny)


@pytest.mark.parametrize("name, tiny", MODELS)
def test_save_load_round_trip(name, tiny, tmp_path):
    contract_save_load(name, tiny, tmp_path)


@pytest.mark.parametrize("name, tiny", MODELS)
def test_resume_from_checkpoint_matches_uninterrupted_run(name, tiny, tmp_path):
    contract_resume(name, tiny, tmp_path)


@pytest.mark.parametrize("name, tiny", MODELS)
def test_outlier_labels_do_not_affect_training(name, tiny):
    contract_outlier_labels_unused(name, tiny)
