"""bf16 mixed precision (bench/precision.py, FitConfig.precision): the fp32 fallback and its reason, the autocast
contexts, R1 / gradient penalty through bf16 networks, a short bf16 fit of every built-in model, and fp32 fits
bit-identical to the code before precision existed."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bench import precision as P
from bench.models import gan_common as gc
from bench.models import registry
from bench.models.base import FitConfig
from bench.models.pixelcnn import GatedPixelCNN, PixelCNNConfig

REPO = Path(__file__).resolve().parent.parent
# The last commit before bench/precision.py: its models' fp32 fits are what today's fp32 fits must equal, bit for bit.
# If a later change alters the fp32 maths on purpose, move this to the commit before that change.
PRE_PRECISION = "389010d56e81dce1cabbda41ad7f28310e43fb1e"

# Smoke-sized fits at 16 px, a few seconds in all on one core.
TINY = {
    "gan": {"iterations": 6},
    "sdnrgan3": {"iterations": 6},
    "robustot": {"iterations": 8, "weight_warmup": 3},
    "vqvae": {"epochs": 2, "batch_size": 8, "prior_epochs": 1, "prior_batch_size": 8},
    "rvqvae": {"epochs": 2, "batch_size": 8, "prior_epochs": 1, "prior_batch_size": 8},
}
TIMING = ("seconds", "per_s")  # history entries that are wall-clock measurements


def tiny_data(n: int = 32, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    labels = torch.zeros(n, dtype=torch.bool)
    labels[: n // 8] = True
    return images, labels


def state_digest(state: dict) -> str:
    """sha256 over every tensor of a state dict (nested dicts flattened), in key order."""
    h = hashlib.sha256()

    def walk(prefix: str, d: dict) -> None:
        for k in sorted(d):
            v = d[k]
            if isinstance(v, dict):
                walk(f"{prefix}{k}.", v)
            elif torch.is_tensor(v):
                h.update(f"{prefix}{k}".encode())
                h.update(v.detach().contiguous().cpu().numpy().tobytes())

    walk("", state)
    return h.hexdigest()


def measured(history: dict) -> dict:
    """Every entry of a fit's history but its timings (losses to the last bit: more sensitive than the state after
    a few Adam steps, whose first updates are about lr * sign(gradient) whatever the rounding)."""

    def keep(v):
        if isinstance(v, dict):
            return {k: keep(x) for k, x in v.items() if not any(t in k for t in TIMING)}
        if isinstance(v, list):
            return [keep(x) for x in v]
        return v

    return keep(history)


def fit_and_sample(spec, name: str, precision: str | None = None, fit_config=FitConfig):
    model = spec.build("smoke", 16, TINY[name])
    cfg = fit_config(seed=3) if precision is None else fit_config(seed=3, precision=precision)
    result = model.fit(*tiny_data(), cfg)
    return model, result, model.sample(6, seed=5)


@pytest.fixture
def native(monkeypatch):
    """bf16 counted as native here whatever the CPU (autocast emulates it where it is not: slow, but tiny fits)."""
    monkeypatch.setattr(P, "native_bf16", lambda device="cpu": (True, "test"))


# ------------------------------------------------------------------------------------------- the module


def test_resolve_keeps_fp32_and_bf16_where_native(native):
    assert P.resolve("fp32", "cpu") == ("fp32", "")
    assert P.resolve("bf16", "cpu") == ("bf16", "")


def test_resolve_falls_back_to_fp32_with_one_line_saying_why(monkeypatch):
    monkeypatch.setattr(P, "native_bf16", lambda device="cpu": (False, "the CPU has neither avx512_bf16 nor amx_bf16"))
    used, note = P.resolve("bf16", "cpu")
    assert used == "fp32"
    assert "\n" not in note and "bf16" in note and "fp32" in note and "neither avx512_bf16 nor amx_bf16" in note


def test_resolve_refuses_an_unknown_precision():
    with pytest.raises(ValueError, match="fp32"):
        P.resolve("fp16", "cpu")
    with pytest.raises(ValueError):
        P.autocast("half", "cpu")


def test_native_bf16_reads_the_cpu_flags_then_torchs_capability(monkeypatch):
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert P.native_bf16("cpu") == (True, "the CPU has avx512_bf16")
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    native, why = P.native_bf16("cpu")
    assert not native and "avx512_bf16" in why and "AVX2" in why
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AMX")
    assert P.native_bf16("cpu")[0]


def test_a_onednn_isa_cap_below_bf16_means_no_native_bf16(monkeypatch):
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core")
    native, why = P.native_bf16("cpu")
    assert not native and "ONEDNN_MAX_CPU_ISA=AVX512_CORE" in why
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert P.native_bf16("cpu")[0]


def test_no_cuda_means_no_native_bf16_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert P.native_bf16("cuda") == (False, "no CUDA device is available")
    assert P.resolve("bf16", "cuda:0")[0] == "fp32"


def test_autocast_is_bf16_autocast_or_nothing():
    x, w = torch.randn(2, 4), torch.randn(3, 4)
    with P.autocast("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
        assert F.linear(x, w).dtype == torch.float32
    with P.autocast("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu")
        y = F.linear(x, w)
        assert y.dtype == torch.bfloat16
        with P.fp32("bf16", "cpu"):  # a region kept in fp32 inside
            assert F.linear(P.widen(y), torch.randn(5, 3)).dtype == torch.float32
        assert F.linear(x, w).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")
    assert isinstance(P.fp32("fp32", "cpu"), type(P.autocast("fp32", "cpu")))  # both null contexts


def test_widen_touches_only_low_precision_tensors():
    for dtype in (torch.float32, torch.float64):
        t = torch.ones(3, dtype=dtype)
        assert P.widen(t) is t
    assert P.widen(torch.ones(3, dtype=torch.bfloat16)).dtype == torch.float32


def test_fit_config_defaults_to_fp32():
    assert FitConfig().precision == "fp32"


# --------------------------------------------------------------------- regularisers through bf16 networks


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.parametrize("penalty", ["r1", "gp"])
def test_r1_and_gradient_penalty_double_backward_under_bf16(penalty):
    """The penalty and its gradient w.r.t. D's weights (the double backward) in bf16 against float64: the gradient
    comes back in the input's dtype (fp32) and both are within bf16's error of the exact values."""
    torch.manual_seed(0)
    d = gc.ResNetDiscriminator(16, channels=16, residual_factor=1.0)
    real, fake, alpha = torch.rand(8, 3, 16, 16) * 2 - 1, torch.rand(8, 3, 16, 16) * 2 - 1, torch.rand(8)

    def value_and_grads(net: torch.nn.Module, dtype: torch.dtype, precision: str):
        x = real.to(dtype).requires_grad_(True)
        if penalty == "r1":
            with P.autocast(precision, "cpu"):
                out = P.widen(net(x))
            assert out.dtype == dtype
            value = gc.r1_penalty(out, x)
        else:
            value = gc.gradient_penalty(net, x, fake.to(dtype), alpha.to(dtype), precision)
        assert value.dtype == dtype
        params = list(net.parameters())  # the head's bias does not enter dD/dx: its gradient is zero
        grads = torch.autograd.grad(value, params, allow_unused=True)
        return value.detach(), [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]

    exact, exact_grads = value_and_grads(d.double(), torch.float64, "fp32")
    value, grads = value_and_grads(d.float(), torch.float32, "bf16")
    assert torch.isfinite(value) and abs(float(value) - float(exact)) / float(exact) < 0.05
    assert all(g.dtype == torch.float32 for g in grads)
    flat, exact_flat = torch.cat([g.flatten() for g in grads]), torch.cat([g.flatten() for g in exact_grads])
    assert _rel(flat, exact_flat) < 0.1


def test_pixelcnn_loss_in_bf16_is_close_to_fp32():
    torch.manual_seed(0)
    prior = GatedPixelCNN(PixelCNNConfig(num_codes=32, dim=16, layers=3, head_hidden=32))
    idx = torch.randint(0, 32, (8, 4, 4))
    exact = prior.loss(idx).item()
    bf16 = prior.loss(idx, "bf16")
    assert bf16.dtype == torch.float32 and abs(bf16.item() - exact) < 0.02 * exact
    bf16.backward()
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in prior.parameters())


# ---------------------------------------------------------------------------------------- bf16 fits


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_short_bf16_fit_gives_finite_losses_fp32_state_and_uint8_samples(name, native):
    model, result, samples = fit_and_sample(registry.get(name), name, "bf16")
    history = result.history
    assert history["training_precision"] == "bf16" and "training_precision_note" not in history
    losses = [v for k, v in history.items() if k.startswith("loss_") or k in ("final_loss", "prior_nll")]
    values = [x for v in losses for x in (v if isinstance(v, list) else [v]) if x is not None]
    assert values and all(torch.isfinite(torch.tensor(float(x))) for x in values)
    assert samples.dtype == torch.uint8 and samples.shape == (6, 3, 16, 16)
    state = model.state_dict()
    tensors = [*state.get("nets", {}).values(), *(v for v in state.values() if torch.is_tensor(v))]
    floats = [t for t in tensors if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float32 for t in floats)  # parameters stay fp32


@pytest.mark.parametrize("name", ["gan", "vqvae"])
def test_bf16_without_native_bf16_trains_in_fp32_and_says_so(name, monkeypatch):
    _, fp32_result, fp32_samples = fit_and_sample(registry.get(name), name)
    monkeypatch.setattr(P, "native_bf16", lambda device="cpu": (False, "no avx512_bf16 here"))
    _, result, samples = fit_and_sample(registry.get(name), name, "bf16")
    assert result.history["training_precision"] == "fp32"
    assert "no avx512_bf16 here" in result.history["training_precision_note"]
    assert torch.equal(samples, fp32_samples)


# ------------------------------------------------------------------- fp32 unchanged, bit for bit


@pytest.fixture(scope="module")
def pre_precision_bench():
    """The ``bench`` package of PRE_PRECISION, importable as ``bench_base`` (benchmarks/_base.py's export)."""
    try:
        subprocess.run(["git", "cat-file", "-e", f"{PRE_PRECISION}^{{commit}}"], cwd=REPO, check=True,
                       capture_output=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"commit {PRE_PRECISION[:10]} is not in this checkout's history (shallow clone?)")
    spec = importlib.util.spec_from_file_location("_bench_export_base", REPO / "benchmarks" / "_base.py")
    base = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(base)
    path = list(sys.path)
    try:
        base.export(PRE_PRECISION)
        yield (
            importlib.import_module(f"{base.BASE_PKG}.models.registry"),
            importlib.import_module(f"{base.BASE_PKG}.models.base"),
        )
    finally:
        sys.path[:] = path
        for mod in [m for m in sys.modules if m == base.BASE_PKG or m.startswith(base.BASE_PKG + ".")]:
            del sys.modules[mod]


@pytest.mark.parametrize("name", sorted(TINY))
def test_an_fp32_fit_equals_the_pre_precision_code_bit_for_bit(name, pre_precision_bench):
    old_registry, old_base = pre_precision_bench
    old_model, old_result, old_samples = fit_and_sample(old_registry.get(name), name, fit_config=old_base.FitConfig)
    model, result, samples = fit_and_sample(registry.get(name), name, "fp32")
    history = dict(result.history)
    assert history.pop("training_precision") == "fp32"
    assert measured(history) == measured(dict(old_result.history))
    assert torch.equal(samples, old_samples)
    assert state_digest(model.state_dict()) == state_digest(old_model.state_dict())
