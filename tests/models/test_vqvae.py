import torch

from bench.models import registry
from bench.models.base import Checkpointer, FitConfig, GenerativeModel


def _images(n=48, size=16, seed=0):
    """Smooth procedural images: random colour gradients (learnable, unlike white noise)."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, size)
    a, b, c = (torch.rand(n, 3, 1, 1, generator=g) for _ in range(3))
    img = a * ramp.view(1, 1, size, 1) + b * ramp.view(1, 1, 1, size) + 0.3 * c
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def _tiny(name="vqvae", **over):
    settings = {
        "epochs": 2,
        "batch_size": 16,
        "prior_epochs": 1,
        "prior_layers": 0,
        "prior_dim": 16,
        "prior_head_hidden": 16,
        "hidden": 32,
        "residual_hidden": 8,
        "sample_batch_size": 8,
    }
    if name == "vqvae":
        settings["codebook_size"] = 32
    else:
        settings.update(inlier_codebook_size=32, outlier_codebook_size=16)
    settings.update(over)
    return registry.get(name).build("smoke", 16, settings)


def test_profiles_registered_with_paper_defaults():
    spec = registry.get("vqvae")
    paper = spec.make_config("paper")
    assert (paper.epochs, paper.batch_size, paper.lr, paper.codebook_size, paper.code_dim, paper.beta) == (
        400,
        10,
        3e-4,
        512,
        64,
        0.25,
    )
    assert paper.codebook_remedy == "none"
    for profile in ("smoke", "cpu"):
        spec.make_config(profile)


def test_eq2_gradients_reach_only_allowed_parameters():
    model = _tiny()
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    out = model.losses(x)
    params = {"enc": list(model.encoder.parameters()), "dec": list(model.decoder.parameters()), "cb": [model.codebook]}

    def grads(term):
        g = torch.autograd.grad(
            out[term], [p for ps in params.values() for p in ps], retain_graph=True, allow_unused=True
        )
        it = iter(g)
        return {k: any(x is not None and x.abs().sum() > 0 for x in [next(it) for _ in ps]) for k, ps in params.items()}

    assert grads("recon") == {"enc": True, "dec": True, "cb": False}
    assert grads("codebook") == {"enc": False, "dec": False, "cb": True}
    assert grads("commitment") == {"enc": True, "dec": False, "cb": False}


def test_loss_goes_down_on_a_tiny_set():
    model = _tiny(epochs=8, batch_size=8, lr=1e-3)
    hist = model.fit(_images(), torch.zeros(48, dtype=torch.bool), FitConfig(seed=0))
    losses = [r["loss"] for r in hist.history["epochs"]]
    assert losses[-1] < 0.7 * losses[0]
    assert {"perplexity", "dead_codes"} <= set(hist.history["epochs"][0])


def test_save_load_gives_identical_samples(tmp_path):
    model = _tiny(epochs=1)
    model.fit(_images(), torch.zeros(48, dtype=torch.bool), FitConfig(seed=0))
    model.save(tmp_path / "m.pt")
    loaded = GenerativeModel.load(tmp_path / "m.pt")
    a, b = model.sample(10, seed=5), loaded.sample(10, seed=5)
    assert a.dtype == torch.uint8 and a.shape == (10, 3, 16, 16)
    assert torch.equal(a, b)
    assert not torch.equal(a, model.sample(10, seed=6))


class _Killed(Exception):
    pass


def _kill_after_first_epoch(total, desc):
    class Bar:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def set_postfix(self, *a, **k):
            pass

        def update(self, n=1):
            if "train" in desc and n == 1:
                raise _Killed

    return Bar()


def _resume_matches_uninterrupted(name, tmp_path, **over):
    images, labels = _images(), torch.zeros(48, dtype=torch.bool)
    labels[:8] = True
    full = _tiny(name, **over)
    h_full = full.fit(images, labels, FitConfig(seed=3))
    ckpt = Checkpointer(tmp_path / "ckpt.pt", every_s=0.0)
    first = _tiny(name, **over)
    try:
        first.fit(images, labels, FitConfig(seed=3, checkpoint=ckpt), progress=_kill_after_first_epoch)
        raise AssertionError("the simulated kill did not happen")
    except _Killed:
        pass
    assert ckpt.load()["epoch"] == 1
    resumed = _tiny(name, **over)
    h_res = resumed.fit(images, labels, FitConfig(seed=3, checkpoint=ckpt))
    assert len(h_res.history["epochs"]) == len(h_full.history["epochs"])
    for a, b in zip(h_full.history["epochs"], h_res.history["epochs"]):
        assert abs(a["loss"] - b["loss"]) < 1e-4 * max(1.0, abs(a["loss"]))
    assert torch.equal(full.sample(6, seed=1), resumed.sample(6, seed=1))


def test_fit_resumes_from_checkpoint(tmp_path):
    _resume_matches_uninterrupted("vqvae", tmp_path)


def test_dead_code_reset_revives_unused_codes():
    model = _tiny(epochs=1, codebook_remedy="dead_code_reset")
    hist = model.fit(_images(), torch.zeros(48, dtype=torch.bool), FitConfig(seed=0))
    row = hist.history["epochs"][0]
    assert row["codes_reset"] == row["dead_codes"] > 0
