import torch

from bench.models.pixelcnn import GatedPixelCNN, PixelCNNConfig, min_layers_for_grid


def _model(grid, num_codes=7, dim=8, seed=0):
    torch.manual_seed(seed)
    cfg = PixelCNNConfig(num_codes=num_codes, dim=dim, layers=min_layers_for_grid(grid), head_hidden=16)
    return GatedPixelCNN(cfg).eval()


def test_logits_depend_on_exactly_the_earlier_positions():
    """No mask leak and no blind spot: d logits(r, c) / d input(r', c') != 0  <=>  (r', c') before (r, c)."""
    grid = 6
    model = _model(grid).double()
    for r, c in [(0, 0), (2, 3), (5, 0), (5, 5), (3, 5)]:
        x = torch.randn(1, model.cfg.dim, grid, grid, dtype=torch.float64, requires_grad=True)
        model.forward_embedded(x)[0, :, r, c].sum().backward()
        depends = x.grad[0].abs().sum(0) > 0
        expected = torch.arange(grid * grid).reshape(grid, grid) < r * grid + c
        assert torch.equal(depends, expected), (r, c)


def test_fast_sampler_equals_naive_sampler_on_same_seed():
    grid = 5
    model = _model(grid, num_codes=11)
    with torch.no_grad():  # sharpen nothing, but make the logits non-trivial
        for p in model.parameters():
            p.mul_(3.0)
    fast = model.sample(16, grid, torch.Generator().manual_seed(42))
    naive = model.sample_naive(16, grid, torch.Generator().manual_seed(42))
    assert fast.shape == (16, grid, grid)
    assert torch.equal(fast, naive)
    assert len(fast.unique()) > 3  # not a degenerate constant draw
    other = model.sample(16, grid, torch.Generator().manual_seed(43))
    assert not torch.equal(fast, other)


def test_prior_learns_a_deterministic_pattern():
    grid = 4
    model = _model(grid, num_codes=5, dim=16).train()
    g = torch.Generator().manual_seed(0)
    # Each grid is a row pattern: first index random, the rest copy it (predictable from the past).
    first = torch.randint(0, 5, (64, 1, 1), generator=g)
    data = first.expand(64, grid, grid).clone()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = model.loss(data)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # Only the first position is unpredictable: mean NLL -> log(5)/16 ~ 0.1.
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    samples = model.sample(32, grid, torch.Generator().manual_seed(0))
    copies = (samples == samples[:, :1, :1]).float().mean()
    assert copies > 0.8


def test_loss_is_the_mean_nll_of_the_full_forward_pass():
    """The training loss (head as matmuls over positions) equals -mean log softmax(forward(idx))[idx], by hand."""
    grid = 4
    model = _model(grid, num_codes=9, dim=8).double()
    idx = torch.randint(0, 9, (3, grid, grid), generator=torch.Generator().manual_seed(1))
    logp = model(idx).log_softmax(dim=1)  # B x K x H x W
    by_hand = -logp.gather(1, idx.unsqueeze(1)).mean()
    assert torch.allclose(model.loss(idx), by_hand, rtol=1e-12, atol=1e-12)
