"""Training and sampling on a CUDA device (``run.device``). Skipped where torch sees no CUDA device (CI)."""

import pytest
import torch

from bench.models import registry
from bench.models.base import Checkpointer, FitConfig, GenerativeModel
from tests.models.test_vqvae import _images, _tiny

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
MODELS = ["vqvae", "rvqvae", "gan", "sdnrgan3", "robustot"]


def _model(name):
    if name in ("vqvae", "rvqvae"):
        return _tiny(name)
    return registry.get(name).build("smoke", 16, None)


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, dict):
        for v in tree.values():
            yield from _tensors(v)


@cuda
@pytest.mark.parametrize("name", MODELS)
def test_fit_and_sample_on_cuda(name, tmp_path):
    images, labels = _images(), torch.zeros(48, dtype=torch.bool)
    labels[:8] = True
    model = _model(name)
    history = model.fit(images, labels, FitConfig(seed=1, device="cuda"))
    assert model.device.type == "cuda"
    samples = model.sample(12, seed=5)
    assert samples.dtype == torch.uint8 and samples.device.type == "cpu" and samples.shape == (12, 3, 16, 16)
    assert torch.equal(samples, model.sample(12, seed=5))
    assert all(t.device.type == "cpu" for t in _tensors(model.state_dict()))  # saved state is device-independent
    model.save(tmp_path / "m.pt")  # a GPU-trained model loads and samples on a CPU-only machine
    on_cpu = GenerativeModel.load(tmp_path / "m.pt")
    assert on_cpu.sample(12, seed=5).shape == samples.shape
    if name == "rvqvae":
        assert 0.0 <= history.history["flag_precision"] <= 1.0


@cuda
@pytest.mark.parametrize("name", ["vqvae", "rvqvae"])
def test_resume_on_cuda_from_a_checkpoint(name, tmp_path):
    images, labels = _images(), torch.zeros(48, dtype=torch.bool)
    ckpt = Checkpointer(tmp_path / "ckpt.pt", every_s=0.0)
    first = _model(name)
    first.fit(images, labels, FitConfig(seed=2, device="cuda", checkpoint=ckpt))
    assert ckpt.load() is not None
    again = _model(name)  # finds the finished checkpoint and only rebuilds state on the device
    history = again.fit(images, labels, FitConfig(seed=2, device="cuda", checkpoint=ckpt))
    assert again.device.type == "cuda" and len(history.history["epochs"]) == first.cfg.epochs
