"""Speed-ups that must not change the maths: each optimised path against the plain formulation it replaced.

Compared in float64, so any difference beyond summation order would show.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.models import gan_common as gc

# ------------------------------------------------------------------- GAN ResNet blocks (as written before)


def plain_up(block: gc.UpBlock, x: torch.Tensor) -> torch.Tensor:
    h = block.conv2(F.relu(block.conv1(gc._up(F.relu(x)))))
    return block.shortcut(gc._up(x)) + block.factor * h


def plain_down(block: gc.DownBlock, x: torch.Tensor) -> torch.Tensor:
    h = block.conv2(F.relu(block.conv1(x if block.first else F.relu(x))))
    if block.downsample:
        h = F.avg_pool2d(h, 2)
    if block.first:
        s = block.shortcut(F.avg_pool2d(x, 2))
    elif block.shortcut is not None:
        s = block.shortcut(x)
        s = F.avg_pool2d(s, 2) if block.downsample else s
    else:
        s = x
    return s + block.factor * h


def plain_forward(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net``'s forward pass with every block run by the plain formulation above."""
    if isinstance(net, gc.ResNetGenerator):
        h = net.linear(x).view(x.shape[0], net.channels, 4, 4)
        for b in net.blocks:
            h = plain_up(b, h)
        return torch.tanh(net.to_rgb(F.relu(h)))
    h = x
    for b in net.blocks:
        h = plain_down(b, h)
    return net.head(F.relu(h).mean(dim=(2, 3))).squeeze(1)


def grads_of(net: torch.nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, list(net.parameters())))


@pytest.mark.parametrize("factor", [1.0, 0.1])
@pytest.mark.parametrize("size", [16, 32])
def test_generator_blocks_equal_the_plain_formulation(factor, size):
    torch.manual_seed(0)
    g = gc.ResNetGenerator(size, latent_dim=8, channels=8, residual_factor=factor).double()
    z = torch.randn(5, 8, dtype=torch.float64)
    fast, plain = g(z), plain_forward(g, z)
    torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
    w = torch.randn_like(fast)
    for a, b in zip(grads_of(g, (fast * w).sum()), grads_of(g, (plain * w).sum())):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("factor", [1.0, 0.1])
@pytest.mark.parametrize("size", [16, 32, 64])
def test_discriminator_blocks_equal_the_plain_formulation_with_r1(factor, size):
    """Forward value, and the gradients of loss + R1 (double backward) w.r.t. every parameter."""
    torch.manual_seed(0)
    d = gc.ResNetDiscriminator(size, channels=8, residual_factor=factor).double()
    x = torch.randn(4, 3, size, size, dtype=torch.float64)

    def loss(forward) -> tuple[torch.Tensor, torch.Tensor]:
        real = x.clone().requires_grad_(True)
        out = forward(real)
        return out, F.softplus(-out).mean() + 10 * gc.r1_penalty(out, real)

    (fast_out, fast_loss), (plain_out, plain_loss) = loss(d), loss(lambda t: plain_forward(d, t))
    torch.testing.assert_close(fast_out, plain_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast_loss, plain_loss, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_of(d, fast_loss), grads_of(d, plain_loss)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------- Robust OT step (as written before)


def plain_robustot_step(model, iteration: int, data, rng: torch.Generator) -> None:
    """Robust OT's training iteration as first written: W step first, three separate critic passes."""
    from bench.models.robustot import chi_square, weight_loss

    c, g, d = model.cfg, model.nets["g"], model.nets["d"]
    real = data.next(c.batch_size)
    if iteration > c.weight_warmup and iteration % c.weight_update_every == 0:
        with torch.no_grad():
            critic_real = d(real)
        opt = model.optimizers["w"]
        opt.zero_grad(set_to_none=True)
        weight_loss(model.weights(real), critic_real, c.rho, c.budget_penalty).backward()
        opt.step()
    generator_step = iteration % c.n_critic == 0
    z = torch.randn(real.shape[0], c.latent_dim, generator=rng)
    with torch.set_grad_enabled(generator_step):
        fake = g(z)
    alpha = torch.rand(real.shape[0], generator=rng)
    with torch.no_grad():
        w = model.weights(real)
    opt_d = model.optimizers["d"]
    opt_d.zero_grad(set_to_none=True)
    weighted_real = (w * d(real)).mean()
    fake_term = d(fake.detach()).mean()
    gp = gc.gradient_penalty(d, real, fake, alpha)
    (fake_term - weighted_real + c.lambda_gp * gp).backward()
    opt_d.step()
    chi_square(w)
    if generator_step:
        opt_g = model.optimizers["g"]
        opt_g.zero_grad(set_to_none=True)
        with gc.frozen(d):
            loss_g = -d(fake).mean()
        loss_g.backward()
        opt_g.step()


class DoubleBatches(gc.RealBatches):
    def next(self, batch_size: int) -> torch.Tensor:
        return super().next(batch_size).double()


def test_robustot_step_equals_the_plain_step():
    """Same parameters (G, critic, W) after iterations with G steps and W steps, float64."""
    from bench.models import registry

    images = torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    overrides = {
        "weight_warmup": 1,
        "weight_update_every": 2,
        "n_critic": 2,
        "g_channels": 8,
        "d_channels": 8,
        "w_channels": 8,
        "batch_size": 8,
    }
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        params = []
        for step in ("fast", "plain"):
            model = registry.get("robustot").build("smoke", 16, overrides)
            model.nets.double().train()
            model.optimizers = model.build_optimizers()
            rng = torch.Generator().manual_seed(0)
            data = DoubleBatches(images, rng, clamp=False)
            for it in range(7):
                if step == "fast":
                    model.train_step(it, data, rng)
                else:
                    plain_robustot_step(model, it, data, rng)
            params.append({k: v.detach().clone() for k, v in model.nets.state_dict().items()})
    finally:
        torch.set_default_dtype(default)
    fast, plain = params
    assert fast.keys() == plain.keys()
    for k in fast:
        torch.testing.assert_close(fast[k], plain[k], rtol=1e-9, atol=1e-11, msg=k)


# ------------------------------------------------------------------- optimiser and EMA


def test_fused_adam_equals_plain_adam_up_to_rounding():
    from bench.models.optim import adam

    torch.manual_seed(0)
    params = [torch.randn(7, 5), torch.randn(5)]
    # the VQ models' call (default betas) and the GAN family's (their own betas), each against torch's plain Adam
    for betas in (None, (0.5, 0.99)):
        fused = [p.clone().requires_grad_(True) for p in params]
        reference = [p.clone().requires_grad_(True) for p in params]
        fused_opt = adam(fused, 1e-2) if betas is None else adam(fused, 1e-2, betas)
        ref_opt = torch.optim.Adam(reference, lr=1e-2, betas=betas or (0.9, 0.999))
        for _ in range(10):
            grads = [torch.randn_like(p) for p in params]
            for group, opt in ((fused, fused_opt), (reference, ref_opt)):
                for p, g in zip(group, grads):
                    p.grad = g.clone()
                opt.step()
        for a, c in zip(fused, reference):
            torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)


def test_resumed_fused_adam_state_in_another_memory_layout_gives_the_uninterrupted_step():
    """A channels_last weight whose Adam moments come back from a checkpoint in NCHW (saved before the network moved
    to channels_last): the next fused step must equal the uninterrupted one (plain load_state_dict does not)."""
    from bench.models.optim import adam, load_optimizer_state

    torch.manual_seed(0)
    start = torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    grads = [torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last) for _ in range(2)]

    def two_steps(resume) -> torch.Tensor:
        p = torch.nn.Parameter(start.clone(memory_format=torch.preserve_format))
        opt = adam([p], 1e-3)
        p.grad = grads[0]
        opt.step()
        if resume is not None:
            saved = opt.state_dict()
            saved["state"] = {i: {k: v.contiguous() if v.dim() else v.clone() for k, v in s.items()}
                              for i, s in saved["state"].items()}  # fmt: skip
            opt = adam([p], 1e-3)
            resume(opt, saved)
        p.grad = grads[1]
        opt.step()
        return p.detach()

    uninterrupted = two_steps(None)
    # with plain opt.load_state_dict this differs by ~1e-3 (torch 2.14's fused kernel)
    torch.testing.assert_close(two_steps(load_optimizer_state), uninterrupted, rtol=0, atol=1e-7)


def test_ema_update_equals_per_parameter_lerp_exactly():
    torch.manual_seed(0)
    net = gc.ResNetGenerator(16, latent_dim=8, channels=8)
    ema = gc.ema_copy(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    expected = [e.detach().clone().lerp_(p.detach(), 1 - 0.99) for e, p in zip(ema.parameters(), net.parameters())]
    gc.ema_update(ema, net, 0.99)
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), expected))
