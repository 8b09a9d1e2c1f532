"""Shared GAN pieces against hand-checkable cases, plus the interface contract every adversarial baseline meets.

The ``contract_*`` helpers are imported by test_gan.py, test_sdnrgan3.py and test_robustot.py (package-relative import,
tests is a package), so each model file runs the same checks with its own tiny config.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.errors import BenchError
from bench.models import gan_common as gc
from bench.models import registry
from bench.models.base import Checkpointer, FitConfig, GenerativeModel

# ---------------------------------------------------------------------------------------- contract


def tiny_data(n: int = 24, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    is_outlier = torch.zeros(n, dtype=torch.bool)
    is_outlier[: n // 4] = True
    return images, is_outlier


def build(name: str, overrides: dict, size: int = 16) -> GenerativeModel:
    return registry.get(name).build("smoke", size, overrides)


def flat_params(model: GenerativeModel, net: str) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.nets[net].parameters()])


def contract_shapes(name: str, overrides: dict) -> None:
    for size in (16, 32, 64):
        model = build(name, overrides, size)
        x = model.sample(5, seed=0)
        assert x.dtype == torch.uint8 and x.shape == (5, 3, size, size)
        assert x.float().std() > 0
        net = model.sampling_net()
        raw = net(torch.randn(3, net.latent_dim))
        assert raw.shape == (3, 3, size, size) and raw.min() >= -1 and raw.max() <= 1
        assert model.nets["d"](raw).shape == (3,)


def contract_training_step(name: str, overrides: dict, nets: tuple[str, ...]) -> dict:
    model = build(name, {**overrides, "iterations": 2})
    before = {k: flat_params(model, k) for k in nets}
    images, is_outlier = tiny_data()
    history = model.fit(images, is_outlier, FitConfig(seed=0)).history
    for k in nets:
        assert not torch.equal(before[k], flat_params(model, k)), f"{k} did not change"
    losses = [v for k, series in history.items() if k.startswith("loss_") for v in series if v is not None]
    assert losses and all(math.isfinite(v) for v in losses)
    return history


def contract_deterministic_sampling(name: str, overrides: dict) -> None:
    model = build(name, overrides)
    assert torch.equal(model.sample(6, seed=3), model.sample(6, seed=3))
    assert not torch.equal(model.sample(6, seed=3), model.sample(6, seed=4))
    torch.randn(10)  # the global RNG does not matter
    assert torch.equal(model.sample(4, seed=3), model.sample(6, seed=3)[:4])


def contract_save_load(name: str, overrides: dict, tmp_path) -> None:
    model = build(name, {**overrides, "iterations": 2})
    model.fit(*tiny_data(), FitConfig(seed=1))
    path = tmp_path / "model.pt"
    model.save(path)
    torch.load(path, weights_only=True)
    loaded = GenerativeModel.load(path)
    assert type(loaded) is type(model)
    assert torch.equal(loaded.sample(8, seed=5), model.sample(8, seed=5))


class _Interrupt(Exception):
    pass


def _interrupting_progress(after: int):
    class Bar:
        def __init__(self):
            self.n = 0

        def update(self, n: int = 1):
            self.n += n
            if self.n >= after:
                raise _Interrupt

        def set_postfix(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    return lambda total, desc: Bar()


def contract_resume(name: str, overrides: dict, tmp_path, iterations: int = 6, stop_at: int = 3) -> None:
    """Interrupt after ``stop_at`` iterations, resume from the checkpoint: same result as an uninterrupted run."""
    cfg = {**overrides, "iterations": iterations}
    data = tiny_data()
    straight = build(name, cfg)
    straight.fit(*data, FitConfig(seed=2))

    ckpt = Checkpointer(tmp_path / "ckpt.pt", every_s=0.0)
    first = build(name, cfg)
    with pytest.raises(_Interrupt):
        first.fit(*data, FitConfig(seed=2, checkpoint=ckpt), progress=_interrupting_progress(stop_at))
    assert int(torch.load(ckpt.path, weights_only=True)["iteration"]) == stop_at

    resumed = build(name, cfg)
    history = resumed.fit(*data, FitConfig(seed=2, checkpoint=Checkpointer(ckpt.path, every_s=1e9)))
    assert history.history["resumed_from"] == stop_at and history.history["iterations"] == iterations
    for key, value in straight.nets.state_dict().items():
        torch.testing.assert_close(resumed.nets.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert torch.equal(resumed.sample(4, seed=0), straight.sample(4, seed=0))


def contract_outlier_labels_unused(name: str, overrides: dict) -> None:
    images, is_outlier = tiny_data()
    a, b = build(name, {**overrides, "iterations": 2}), build(name, {**overrides, "iterations": 2})
    a.fit(images, is_outlier, FitConfig(seed=0))
    b.fit(images, ~is_outlier, FitConfig(seed=0))
    for key, value in a.nets.state_dict().items():
        assert torch.equal(b.nets.state_dict()[key], value), key


# ---------------------------------------------------------------------------------- shared pieces


def test_stages_per_size():
    assert [gc.stages(s) for s in (16, 32, 64)] == [2, 3, 4]
    for bad in (8, 24, 48, 0):
        with pytest.raises(BenchError):
            gc.stages(bad)


def test_official_parameter_counts_at_32px():
    with gc.seeded(0):
        g = gc.ResNetGenerator(32)
        d = gc.ResNetDiscriminator(32)
    assert sum(p.numel() for p in g.parameters()) == 1_202_691
    assert sum(p.numel() for p in d.parameters()) == 1_053_825


def test_discriminator_ends_at_8x8_for_every_size():
    for size in (16, 32, 64):
        d = gc.ResNetDiscriminator(size, channels=4)
        assert d.blocks(torch.zeros(1, 3, size, size)).shape[-1] == 8


class _Linear(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1) @ self.w.flatten()


def test_r1_of_linear_discriminator_is_squared_weight_norm():
    w = torch.tensor([[[3.0, 0.0], [0.0, 4.0]]])  # |w| = 5
    x = torch.randn(7, 1, 2, 2, requires_grad=True)
    r1 = gc.r1_penalty(_Linear(w)(x), x)
    assert r1.item() == pytest.approx(25.0)


def test_r1_gradient_reaches_discriminator_weights():
    d = _Linear(torch.tensor([3.0, 4.0]))
    x = torch.randn(5, 2, requires_grad=True)
    gc.r1_penalty(d(x), x).backward()
    torch.testing.assert_close(d.w.grad, 2 * torch.tensor([3.0, 4.0]))


def test_gradient_penalty_linear_and_quadratic_critics():
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    alpha = torch.rand(4)
    gp = gc.gradient_penalty(_Linear(torch.tensor([3.0, 0.0, 0.0, 4.0])), real, fake, alpha)
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2)

    class HalfSquare(nn.Module):  # D(x) = |x|^2 / 2, grad = x, so the norm is |x_hat|
        def forward(self, x):
            return 0.5 * x.flatten(1).pow(2).sum(1)

    real, fake = torch.full((2, 1, 1, 1), 3.0), torch.zeros(2, 1, 1, 1)
    gp = gc.gradient_penalty(HalfSquare(), real, fake, torch.tensor([1.0, 0.5]))  # |x_hat| = 3 and 1.5
    assert gp.item() == pytest.approx(((3 - 1) ** 2 + (1.5 - 1) ** 2) / 2)


def test_ema_update_is_convex_combination():
    net = nn.Linear(2, 1)
    ema = gc.ema_copy(net)
    start = ema.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    gc.ema_update(ema, net, beta=0.9)
    torch.testing.assert_close(ema.weight, 0.9 * start + 0.1 * net.weight.detach())
    assert not any(p.requires_grad for p in ema.parameters())


def test_frozen_blocks_parameter_grads_but_not_input_grads():
    net = nn.Linear(3, 1)
    x = torch.randn(2, 3, requires_grad=True)
    with gc.frozen(net):
        net(x).sum().backward()
    assert net.weight.grad is None and x.grad is not None
    assert all(p.requires_grad for p in net.parameters())


def test_real_batches_range_dequantisation_and_epochs():
    images = torch.arange(10, dtype=torch.uint8).mul(25).view(10, 1, 1, 1).expand(10, 3, 2, 2).contiguous()
    data = gc.RealBatches(images, torch.Generator().manual_seed(0))
    seen = torch.cat([data.indices(3) for _ in range(3)])  # one pass, last incomplete batch dropped
    assert len(set(seen.tolist())) == 9
    x = data.next(4)
    assert x.min() >= -1 and x.max() <= 1
    state = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in data.state_dict().items()}
    rng_state = data.rng.get_state()
    a = data.next(4)
    data.load_state_dict(state)
    data.rng.set_state(rng_state)
    assert torch.equal(a, data.next(4))


def test_real_batches_dequantisation_is_within_one_level():
    images = torch.full((4, 3, 2, 2), 100, dtype=torch.uint8)
    x = gc.RealBatches(images, torch.Generator().manual_seed(0)).next(4)
    base = 100 / 127.5 - 1
    assert (x >= base).all() and (x < base + 1 / 128).all() and x.std() > 0


def test_real_batches_rejects_bad_input():
    with pytest.raises(BenchError):
        gc.RealBatches(torch.zeros(2, 3, 4, 4), torch.Generator())


def test_loss_log_windows_and_missing_values():
    log = gc.LossLog(every=2)
    log.add(0, {"d": 1.0})
    log.add(1, {"d": 3.0})
    log.add(2, {"d": 5.0, "g": 1.0})
    log.add(3, {"d": 7.0})
    assert log.iterations == [2, 4]
    assert log.series == {"d": [2.0, 6.0], "g": [None, 1.0]}
