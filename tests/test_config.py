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
    assert (
        round(0.3 / 0.7 * rc.inliers) + rc.classifier_train_per_class + rc.classifier_test_per_class <= rc.pool_per_half
    )


def test_set_and_toml_override(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data]\nsize = 16\n[data.facemask]\ninliers = 50\n[models.rvqvae]\neta = 0.1\n")
    p = load_profile("cpu", cfg, ["data.size=24", 'eval.inception_weights="/x.pth"'])
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


# ------------------------------------------------------------------------------------- the grid's selection


def test_run_selection_settings_and_their_defaults():
    from bench.config import RunConfig

    run = load_profile("cpu").run
    selection = (run.models, run.datasets, run.seeds, run.filters, run.data_roots, run.backend)
    assert selection == ("all", "", "0", ["none"], {}, "loky")
    p = load_profile("smoke", sets=["run.seeds=[0, 1]", "run.ratios=30", "run.models=gan,vqvae", "run.backend=dask",
                                    'run.filters=["none", "pca:0.3"]', "run.data_roots.folder=/data/mine"])  # fmt: skip
    assert (p.run.seeds, p.run.ratios, p.run.models, p.run.backend) == ("0,1", "30", "gan,vqvae", "dask")
    assert p.run.filters == ["none", "pca:0.3"] and p.run.data_roots == {"folder": "/data/mine"}
    assert load_profile("smoke", sets=["run.ratios=[0, 12.5, 30]"]).run.ratios == "0,12.5,30"
    assert RunConfig().filters is not RunConfig().filters  # no list shared between profiles


@pytest.mark.parametrize(
    "sets, fragment",
    [
        (["run.backend=spark"], "backend must be one of loky, dask"),
        (["run.filters=pca"], "bad value for 'run.filters'"),
        (["run.data_roots=x"], "name a field inside 'data_roots'"),
        (["run.data_roots.folder=3"], "data_roots.folder must be a folder"),
        (["run.seeds=true"], "bad value for 'run.seeds'"),
    ],
)
def test_bad_run_selection_is_one_clear_error(sets, fragment):
    with pytest.raises(BenchError, match=fragment):
        load_profile("smoke", None, sets)


def test_a_stored_profile_without_the_selection_still_loads():
    """Cells stored before run.models/seeds/filters/data_roots/backend existed: their profile loads with defaults."""
    from bench.config import Profile

    d = load_profile("smoke").to_dict()
    for k in ("models", "seeds", "filters", "data_roots", "backend"):
        del d["run"][k]
    assert Profile.from_dict(d).run == load_profile("smoke").run


# ----------------------------------------------------------------------------------------------- image counts


@pytest.mark.parametrize("ratio", [0, 10, 30, 60])
@pytest.mark.parametrize("dataset", ["folder", "corrupted"])
@pytest.mark.parametrize("profile", ["smoke", "demo", "cpu", "paper"])
def test_fitting_counts_fit_and_keep_the_minimums(profile, dataset, ratio):
    from bench.config import COUNT_KEYS, MIN_COUNTS, fitting_counts, image_needs

    s = load_profile(profile).data.dataset(dataset)
    need_in, need_out = image_needs({k: getattr(s, k) for k in COUNT_KEYS}, ratio)
    for have_in, have_out in [(need_in - 1, need_out), (need_in, need_out // 3), (need_in // 2, need_out // 2),
                              (60, 40), (36, 19 if ratio <= 30 else 40)]:  # fmt: skip
        fit = fitting_counts(s, ratio, have_in, have_out)
        assert fit is not None, (have_in, have_out)
        counts, factor = fit
        got_in, got_out = image_needs(counts, ratio)
        assert got_in <= have_in and got_out <= have_out and 0 < factor < 1
        assert all(counts[k] >= MIN_COUNTS[k] and counts[k] <= getattr(s, k) for k in COUNT_KEYS)
        assert got_in >= 0.9 * have_in or got_out >= 0.9 * have_out or counts == MIN_COUNTS  # not far below
    assert fitting_counts(s, ratio, 35, 1_000) is None and fitting_counts(s, ratio, 1_000, 11) is None


def test_bench_datasets_states_each_profiles_image_needs(capsys):
    from bench.cli import main
    from bench.datasets import counts_for, registry

    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert any(ln.startswith("filters ") and "self-trim:FRACTION" in ln for ln in out.splitlines())
    for name in ("folder", "facemask", "corrupted", "roomcrop"):
        block = out.split(f"dataset    {name} ", 1)[1].split("\ndataset ", 1)[0]
        assert f"--set data.{name}.<key>=N" in block and "r = 30 %" in block
        for profile in ("smoke", "demo", "cpu", "paper"):
            s = registry.get(name).settings_for(profile)
            c = counts_for(s, 30)
            line = next(ln for ln in block.splitlines() if ln.split()[:1] == [profile])
            assert (f"{c.inliers_needed:,} inlier images = {s.inliers} inliers + {s.classifier_train_per_class} "
                    f"classifier_train_per_class + {s.classifier_test_per_class} classifier_test_per_class + "
                    f"{s.reference} reference; {c.outliers_needed:,} outlier images") in line  # fmt: skip
    assert main(["datasets", "--profile", "cpu", "--ratio", "10", "--set", "data.folder.inliers=700"]) == 0
    block = capsys.readouterr().out.split("dataset    folder ", 1)[1].split("\ndataset ", 1)[0]
    assert "r = 10 %" in block and [ln.split()[0] for ln in block.splitlines()[2:]] == ["cpu"]
    assert "3,500 inlier images = 700 inliers + 900" in block and "+ 78 training outliers" in block
