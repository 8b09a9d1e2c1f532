"""The InceptionV3 weights file is only ever unpickled by us, with ``weights_only=True``: a file carrying code is
refused with one line and its code never runs; torch-fidelity (which would reload the file with
``weights_only=False``) gets the checked state dict, never the file. No real Inception weights exist here: the
end-to-end test builds a state dict of the right shapes from torch-fidelity's own network on the meta device."""

from __future__ import annotations

import hashlib
import pathlib
import pickle

import pytest
import torch

from bench.classifiers import features
from bench.config import EvalConfig
from bench.errors import BenchError


class Payload:
    """Unpickling this runs ``Path.touch(marker)``: the proof that a pickle's code was executed."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def malicious_file(tmp_path: pathlib.Path, how: str) -> tuple[pathlib.Path, pathlib.Path]:
    marker = tmp_path / "pwned"
    path = tmp_path / "weights.pth"
    if how == "torch.save":  # zip archive, as torch.save writes and torch-fidelity's file is
        torch.save({"conv.weight": torch.zeros(2), "evil": Payload(marker)}, path)
    else:  # a legacy plain pickle
        with open(path, "wb") as fh:
            pickle.dump({"conv.weight": Payload(marker)}, fh, protocol=2)
    assert not marker.exists()
    return path, marker


def one_line(err: BenchError) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch):
    monkeypatch.setattr(features, "_inception_cache", {})
    monkeypatch.setattr(features, "_file_hash_cache", {})


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, how):
    path, marker = malicious_file(tmp_path, how)
    for attempt in (
        lambda: features._check_is_state_dict(path),
        lambda: features.load_state_dict_safely(path),
        lambda: features.load_inception_extractor(path),
        lambda: features.inception_space(EvalConfig(inception_weights=str(path))),
    ):
        with pytest.raises(BenchError) as info:
            attempt()
        text = one_line(info.value)
        assert str(path) in text and "not a readable PyTorch state dict" in text, text
        assert not marker.exists(), "code from the weights file was executed"


@pytest.mark.parametrize("content", [{"a": 1}, {}, [torch.zeros(2)], {1: torch.zeros(2)}, torch.zeros(3)])
def test_not_a_state_dict_is_refused(tmp_path, content):
    path = tmp_path / "weights.pth"
    torch.save(content, path)
    with pytest.raises(BenchError) as info:
        features._check_is_state_dict(path)
    assert "does not hold a state dict" in one_line(info.value)


def test_garbage_is_refused(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(BenchError) as info:
        features.load_inception_extractor(path)
    assert "not a readable PyTorch state dict" in one_line(info.value)


def test_plain_state_dict_passes_the_check(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.arange(6.0).view(2, 3), "bn.num_batches_tracked": torch.tensor(3)}, path)
    features._check_is_state_dict(path)
    state = features.load_state_dict_safely(path)
    assert torch.equal(state["conv.weight"], torch.arange(6.0).view(2, 3))
    assert torch.equal(state["bn.num_batches_tracked"], torch.tensor(3))
    assert features.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_state_dict_of_another_network_is_one_line(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(2, 3)}, path)
    with pytest.raises(BenchError) as info:
        features.load_inception_extractor(path)
    assert "does not fit torch-fidelity's InceptionV3" in one_line(info.value)


def inception_shaped_state_dict() -> dict[str, torch.Tensor]:
    """Every tensor of torch-fidelity's InceptionV3, with distinct values, as views of one storage (a small file)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    load = torch.nn.Module.load_state_dict
    hook = fe.load_state_dict_from_url
    fe.load_state_dict_from_url = lambda *a, **k: {}
    torch.nn.Module.load_state_dict = lambda self, *a, **k: None  # build the bare network
    try:
        with torch.device("meta"):
            net = fe.FeatureExtractorInceptionV3(features.INCEPTION_NAME, [features.INCEPTION_LAYER])
    finally:
        torch.nn.Module.load_state_dict = load
        fe.load_state_dict_from_url = hook
    shapes = {k: (v.shape, v.dtype) for k, v in net.state_dict().items()}
    # positive (running variances) and small (activations stay finite through 90-odd layers)
    base = torch.arange(max(s.numel() for s, _ in shapes.values()), dtype=torch.float32).remainder_(7.0).add_(1.0)
    base.mul_(0.01)
    return {k: base[: s.numel()].view(s) if dt.is_floating_point else torch.zeros(s, dtype=dt)
            for k, (s, dt) in shapes.items()}  # fmt: skip


def test_inception_gets_the_checked_state_dict_not_the_file(tmp_path, monkeypatch):
    state = inception_shaped_state_dict()
    path = tmp_path / features.INCEPTION_WEIGHTS_FILENAME
    torch.save(state, path)

    calls = []
    real_load = torch.load

    def watched_load(f, *args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        if kwargs.get("weights_only") is not True:
            raise AssertionError("torch.load without weights_only=True")
        return real_load(f, *args, **kwargs)

    def no_download(url, *args, **kwargs):
        raise AssertionError(f"download attempted: {url}")

    import torch_fidelity.feature_extractor_inceptionv3 as fe

    monkeypatch.setattr(torch, "load", watched_load)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    hook = fe.load_state_dict_from_url
    space = features.inception_space(EvalConfig(inception_weights=str(path)))
    assert fe.load_state_dict_from_url is hook and torch.hub.load_state_dict_from_url is no_download  # restored
    assert calls == [True], "the weights file must be unpickled exactly once, by us"
    extractor = features.load_inception_extractor(path)
    assert calls == [True], "the extractor is cached per process"
    for name in ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.bn.running_var", "fc.weight"):
        assert torch.equal(extractor.state_dict()[name], state[name]), name
    assert space.kind == "inception" and space.identity.endswith(features.file_sha256(path))
    out = space.extract_batch(torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8))
    assert out.shape == (2, 2048) and torch.isfinite(out).all()
