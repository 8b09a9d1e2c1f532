import torch

from bench.models.vq_common import Decoder, Encoder, ResidualBlock, straight_through, usage_stats


def test_encoder_decoder_shapes_follow_the_paper():
    enc, dec = Encoder(code_dim=64), Decoder(code_dim=64)
    for size in (16, 32, 64):
        z = enc(torch.randn(2, 3, size, size))
        assert z.shape == (2, 64, size // 4, size // 4)
        assert dec(z).shape == (2, 3, size, size)
    convs = [m for m in enc.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size[0], c.out_channels, c.stride[0]) for c in convs[:3]] == [
        (4, 64, 2),
        (4, 128, 2),
        (3, 128, 1),
    ]


def test_residual_block_keeps_its_input_intact():
    block = ResidualBlock(8, 4)
    x = torch.randn(1, 8, 4, 4)
    x_copy = x.clone()
    with torch.no_grad():
        block.conv1.weight.zero_()
        block.conv1.bias.zero_()
        y = block(x)
    assert torch.equal(x, x_copy)  # no in-place ReLU on the skip input
    assert torch.equal(y, x)  # zero branch -> identity, not relu(x)


def test_straight_through_passes_value_of_code_and_gradient_to_encoder():
    z = torch.randn(3, 4, requires_grad=True)
    q = torch.randn(3, 4)
    out = straight_through(z, q)
    assert torch.allclose(out, q)
    upstream = torch.randn(3, 4)
    out.backward(upstream)
    assert torch.equal(z.grad, upstream)


def test_usage_stats():
    assert abs(usage_stats(torch.full((16,), 5))["perplexity"] - 16) < 1e-9
    stats = usage_stats(torch.tensor([10, 0, 0, 0]))
    assert stats == {"perplexity": 1.0, "dead_codes": 3}
