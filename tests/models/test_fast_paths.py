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
