import math

import pytest
import torch

from bench.errors import BenchError
from bench.models import registry
from bench.models.base import FitConfig
from bench.models.rvqvae import codebook_std, confidence_match, flag_outliers, weighted_distance
from tests.models.test_vqvae import _images, _resume_matches_uninterrupted, _tiny


def test_paper_defaults():
    cfg = registry.get("rvqvae").make_config("paper")
    assert (cfg.inlier_codebook_size, cfg.outlier_codebook_size, cfg.eta, cfg.beta, cfg.code_dim) == (
        512,
        256,
        0.2,
        0.25,
        64,
    )
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.selection) == (400, 10, 3e-4, "batch")
    with pytest.raises(BenchError, match="loss must be one of"):  # a one-line user error, not a traceback
        registry.get("rvqvae").make_config("paper", {"loss": "other"})


def test_weighted_distance_hand_computed():
    z = torch.tensor([1.0, 2.0, 3.0])
    mu = torch.tensor([0.0, 0.0, 1.0])
    s = torch.tensor([2.0, 0.5, 1.0])
    # sqrt(2^2 * 1^2 + 0.5^2 * 2^2 + 1^2 * 2^2) = sqrt(4 + 1 + 4) = 3
    assert weighted_distance(z, mu, s).item() == pytest.approx(3.0)


def test_codebook_std_is_per_dimension_and_detached():
    cb = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]], requires_grad=True)
    s = codebook_std(cb)
    assert torch.allclose(s, torch.tensor([2.0, 0.0]))
    assert not s.requires_grad


def test_confidence_matching_weights_by_codebook_spread():
    # Dimension 0 spreads widely across codes (std large), dimension 1 barely: d_W trusts dimension 0.
    codebook = torch.tensor([[0.0, 0.0], [10.0, 0.1], [0.0, 0.2], [10.0, 0.3]])
    z = torch.tensor([[4.0, 0.3]])  # plain Euclid: code 2 (d^2 = 16.01) vs weighted: dimension 0 dominates more
    k, s = confidence_match(z, codebook)
    assert torch.allclose(s, codebook.std(0))
    d_w = weighted_distance(z, codebook, s)
    assert k.item() == d_w.argmin().item() == 2
    z = torch.tensor([[6.0, 0.0]])
    assert confidence_match(z, codebook)[0].item() == 1


def test_eq4_eq6_pick_the_codebook_of_the_flag():
    model = _tiny("rvqvae")
    with torch.no_grad():
        z = model.encoder(torch.rand(4, 3, 16, 16) * 2 - 1)
    flags = torch.tensor([False, True, False, True])
    q = model.quantise(z, flags)
    g = model.grid
    zq = q["z_vq"].permute(0, 2, 3, 1).reshape(4, g * g, -1)
    k_in = q["k_in"].reshape(4, g * g)
    k_out = q["k_out"].reshape(4, g * g)
    for i, f in enumerate(flags):
        expected = model.codebook_out[k_out[i]] if f else model.codebook_in[k_in[i]]
        assert torch.equal(zq[i], expected)
    assert torch.equal(q["s"].reshape(4, g * g, -1)[1, 0], codebook_std(model.codebook_out))
    assert torch.equal(q["s"].reshape(4, g * g, -1)[0, 0], codebook_std(model.codebook_in))


@pytest.mark.parametrize("variant", ["paper", "stable"])
def test_eq7_gradients_reach_only_what_stop_gradients_allow(variant):
    model = _tiny("rvqvae", loss=variant)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    out = model.losses(x, torch.tensor([False, True, False, True]))
    groups = {
        "enc": list(model.encoder.parameters()),
        "dec": list(model.decoder.parameters()),
        "c_in": [model.codebook_in],
        "c_out": [model.codebook_out],
    }
    flat = [p for ps in groups.values() for p in ps]

    def reached(term):
        grads = iter(torch.autograd.grad(out[term], flat, retain_graph=True, allow_unused=True))
        return {
            k: any(g is not None and g.abs().sum() > 0 for g in [next(grads) for _ in ps]) for k, ps in groups.items()
        }

    assert reached("recon") == {"enc": True, "dec": True, "c_in": False, "c_out": False}
    assert reached("codebook") == {"enc": False, "dec": False, "c_in": True, "c_out": True}
    assert reached("commitment") == {"enc": True, "dec": False, "c_in": False, "c_out": False}


def test_eq7_paper_terms_are_unsquared_norms():
    model = _tiny("rvqvae", loss="paper")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = model.losses(x, torch.tensor([False, False]))
    with torch.no_grad():
        x_rec = model.decoder(out["z_vq"])
    expected = (x - x_rec).reshape(2, -1).norm(dim=1).mean()
    assert out["recon"].item() == pytest.approx(expected.item(), rel=1e-5)
    s = codebook_std(model.codebook_in)
    diff = (out["z_enc"] - out["z_vq"]).permute(0, 2, 3, 1) * s
    assert out["codebook"].item() == pytest.approx(diff.reshape(2, -1).norm(dim=1).mean().item(), rel=1e-5)
    stable = _tiny("rvqvae", loss="stable")
    stable.load_state_dict(model.state_dict())
    out2 = stable.losses(x, torch.tensor([False, False]))
    assert out2["codebook"].item() == pytest.approx((diff.reshape(2, -1).norm(dim=1) ** 2).mean().item(), rel=1e-5)


def test_top_eta_selection_batch_and_global():
    errors = torch.tensor([0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.4, 0.6, 0.5, 0.0])
    assert flag_outliers(errors, 0.2).nonzero().flatten().tolist() == [1, 3]  # global: top 2 of 10
    batch = torch.tensor([0, 2, 4, 6, 8])  # errors 0.1, 0.3, 0.2, 0.4, 0.5 -> top ceil(0.2 * 5) = 1
    assert batch[flag_outliers(errors[batch], 0.2)].tolist() == [8]
    assert int(flag_outliers(errors[:3], 0.2).sum()) == 1  # ceil(0.6) = 1


@pytest.mark.parametrize("selection", ["batch", "global"])
def test_fit_flags_eta_fraction_and_reports_against_labels(selection):
    images = _images(n=40)
    labels = torch.zeros(40, dtype=torch.bool)
    labels[:8] = True
    images[:8] = 255 - images[:8]  # outliers: inverted
    model = _tiny("rvqvae", epochs=3, batch_size=10, selection=selection)
    hist = model.fit(images, labels, FitConfig(seed=0))
    assert hist.history["epochs"][0]["flag"] is None  # epoch 1: everything uses C_in
    for row in hist.history["epochs"][1:]:
        assert row["flag"]["flagged"] == 8  # ceil(0.2 * 10) per batch x 4 batches, or ceil(0.2 * 40)
        assert row["flag"]["chance_precision"] == pytest.approx(0.2)
    for key in ("flag_precision", "flag_recall", "flag_auc"):
        assert 0.0 <= hist.history[key] <= 1.0


def test_training_never_reads_the_labels():
    images = _images(n=32)
    a, b = _tiny("rvqvae", epochs=2), _tiny("rvqvae", epochs=2)
    a.fit(images, torch.zeros(32, dtype=torch.bool), FitConfig(seed=0))
    b.fit(images, torch.arange(32) % 3 == 0, FitConfig(seed=0))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(torch.as_tensor(va), torch.as_tensor(vb)), k


def test_eq8_indices_come_from_the_inlier_codebook_only():
    model = _tiny("rvqvae")
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z = model.encoder(x)
        # Make C_out an exact copy of some latents: a free-for-all nearest search would now pick C_out codes.
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        model.codebook_out.copy_(flat[: model.codebook_out.shape[0]])
    idx = model.latent_indices(((x + 1) * 127.5).round().to(torch.uint8))
    assert idx.max() < model.codebook_in.shape[0]
    expected, _ = confidence_match(flat, model.codebook_in)
    z_u8 = model.encoder(((((x + 1) * 127.5).round().to(torch.uint8)).float() / 127.5) - 1)
    expected, _ = confidence_match(z_u8.permute(0, 2, 3, 1).reshape(-1, z.shape[1]), model.codebook_in)
    assert torch.equal(idx.flatten(), expected)
    rec = model.reconstruct_inlier_only(((x + 1) * 127.5).round().to(torch.uint8))
    assert torch.equal(rec, model.decode_indices(idx))


@pytest.mark.parametrize("variant", ["paper", "stable"])
def test_loss_goes_down_on_a_tiny_set(variant):
    model = _tiny("rvqvae", epochs=8, batch_size=8, lr=1e-3, loss=variant)
    hist = model.fit(_images(), torch.zeros(48, dtype=torch.bool), FitConfig(seed=0))
    recon = [r["recon"] for r in hist.history["epochs"]]
    assert recon[-1] < 0.8 * recon[0]
    assert all(math.isfinite(r["loss"]) for r in hist.history["epochs"])


def test_fit_resumes_from_checkpoint(tmp_path):
    _resume_matches_uninterrupted("rvqvae", tmp_path, epochs=3, batch_size=10)


def test_error_via_inlier_scores_flagged_images_by_their_c_in_reconstruction():
    model = _tiny("rvqvae", error_via="inlier")
    x = _images(6).float().div(127.5).sub(1.0)
    flagged = torch.tensor([True, False, True, False, False, False])
    with torch.no_grad():
        out = model.losses(x, flagged)
        errors = model._inlier_errors(x, out["k_in"], out["errors"], flagged)
        # by hand: decode the eq. 4 (C_in) codes of every image, take ||x - x~||_2
        z_in = model.codebook_in[out["k_in"]].reshape(6, model.grid, model.grid, -1).permute(0, 3, 1, 2)
        by_hand = (x - model.decoder(z_in)).flatten(1).norm(dim=1)
    assert torch.allclose(errors[flagged], by_hand[flagged], atol=1e-5)
    assert torch.equal(errors[~flagged], out["errors"][~flagged])  # unflagged images already used C_in
    assert not torch.allclose(out["errors"][flagged], by_hand[flagged])  # C_out reconstructions differ
    with pytest.raises(BenchError, match="error_via"):
        registry.get("rvqvae").make_config("paper", {"error_via": "other"})


def test_error_via_inlier_trains(tmp_path):
    images, labels = _images(), torch.zeros(48, dtype=torch.bool)
    labels[:10] = True
    model = _tiny("rvqvae", error_via="inlier", epochs=3)
    history = model.fit(images, labels, FitConfig(seed=0))
    assert all(math.isfinite(e["loss"]) for e in history.history["epochs"])
    assert history.history["epochs"][-1]["flag"] is not None
