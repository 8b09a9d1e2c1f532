import pytest

from bench.config import load_profile
from bench.errors import BenchError


def test_profiles_have_the_documented_protocols():
    paper = load_profile("paper")
    assert (paper.data.size, paper.data.facemask.inliers, paper.data.roomcrop.inliers) == (64, 10_000, 30_000)
    cpu = load_profile("cpu")
    assert cpu.data.size == 32
    smoke = load_profile("smoke")
    assert 16 <= smoke.data.size <= 32 and 100 <= smoke.data.facemask.inliers <= 200


def test_cpu_profile_fits_the_stand_ins():
    d = load_profile("cpu").data
    fm, rc = d.facemask, d.roomcrop
    n_out_30 = round(0.3 / 0.7 * fm.inliers)
    assert fm.inliers + fm.classifier_train_per_class + fm.classifier_test_per_class + fm.reference <= 5_932
    assert n_out_30 + fm.classifier_train_per_class + fm.classifier_test_per_class <= 5_710
    assert 2 * rc.pool_per_half <= 5_000
    assert rc.inliers + rc.classifier_train_per_class + rc.classifier_test_per_class + rc.reference <= rc.pool_per_half
    assert round(0.3 / 0.7 * rc.inliers) + rc.classifier_train_per_class + rc.classifier_test_per_class <= rc.pool_per_half


def test_set_and_toml_override(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data]\nsize = 16\n[data.facemask]\ninliers = 50\n[models.rvqvae]\neta = 0.1\n")
    p = load_profile("cpu", cfg, ["data.size=24", "eval.inception_weights=\"/x.pth\""])
    assert p.data.size == 24 and p.data.facemask.inliers == 50
    assert p.models == {"rvqvae": {"eta": 0.1}} and p.eval.inception_weights == "/x.pth"


@pytest.mark.parametrize(
    "sets, fragment",
    [
        (["data.nope=1"], "unknown setting 'data.nope'"),
        (["data.size=abc"], "bad value for 'data.size'"),
        (["data.size=30"], "multiple of 4"),
        (["size"], "expected KEY=VALUE"),
        (["data=3"], "name a field inside 'data'"),
        (["data.rect_reading=area"], "data.<dataset>.params.<name>"),
        (["data.roomcrop.params.reading=diag"], "reading"),
        (["data.roomcrop.corruption=blur"], "unknown corruption 'blur'"),
        (["models.vqvae.lr=abc"], "bad value for 'models.vqvae.lr'"),
        (["models.vqvae.epochs=-1"], "epochs must be positive"),
        (["models.nosuch.x=1"], "unknown model 'nosuch'"),
        (["run.threads=-1"], "threads must be >= 0"),
        (["models.rvqvae=1"], "models.<model>.<field>"),
    ],
)
def test_bad_settings_are_one_clear_error(sets, fragment):
    with pytest.raises(BenchError, match=fragment):
        load_profile("smoke", None, sets)


def test_bad_profile_and_config_file(tmp_path):
    with pytest.raises(BenchError, match="unknown profile"):
        load_profile("huge")
    with pytest.raises(BenchError, match="not found"):
        load_profile("smoke", tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(BenchError, match="not valid TOML"):
        load_profile("smoke", bad)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cpu:0", "tpu"])
def test_bad_device_is_one_clear_error(device):
    with pytest.raises(BenchError, match="bad run.device"):
        load_profile("smoke", sets=[f"run.device={device}"])


def test_cuda_device_without_cuda_says_how_to_fix():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal cannot happen here")
    with pytest.raises(BenchError, match="run.device=cpu"):
        load_profile("smoke", sets=["run.device=cuda"])
    assert load_profile("smoke", sets=["run.device=cpu"]).run.device == "cpu"
