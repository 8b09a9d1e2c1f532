"""`bench check-model`: every built-in model passes its own contract; the seed item catches a fit that ignores
FitConfig.seed and the device item one that ignores FitConfig.device (tests/plugins/checkmodel_models.py)."""

from pathlib import Path

import pytest
import torch

from bench import api, checkmodel
from bench.cli import main
from bench.models import registry
from tests.grid_helpers import forget_plugin

PLUGIN = str(Path(__file__).parent / "plugins" / "checkmodel_models.py")
DOUBLES = ("cm_honest", "cm_global_rng", "cm_fixed_seed", "cm_cpu_only", "cm_data_only")


@pytest.mark.slow
@pytest.mark.parametrize("name", registry.names())
def test_built_in_model_passes_check_model(name):
    report = checkmodel.check(name)
    assert not report.failed, "\n".join(report.lines())
    statuses = {i.name: i.status for i in report.items}
    assert statuses["save/load round trip"] == "ok" and statuses["same seed -> same samples"] == "ok"
    assert statuses[checkmodel.SEED_ITEM] == "ok"
    if registry.get(name).oracle:
        assert statuses["fit does not read the outlier labels"] == "skip"
    else:
        assert statuses["fit does not read the outlier labels"] == "ok"
    # models that train networks are checked on the stand-in device; the replay references have nothing to put there
    assert statuses[checkmodel.DEVICE_ITEM] == ("skip" if registry.get(name).kind == "reference" else "ok")
    # the list of items that a failure can leave "not checked" names exactly the items a full run checks, in order
    assert [i.name for i in report.items] == list(checkmodel.ITEMS)
    assert not any(i.detail.startswith("not checked") for i in report.items)


@pytest.fixture(scope="module")
def doubles():
    """The test doubles' check-model reports, by name (each takes about a second)."""
    try:
        yield {name: api.check_model(name, plugins=[PLUGIN]) for name in DOUBLES}
    finally:
        forget_plugin(PLUGIN, *DOUBLES)


def item(report: checkmodel.CheckReport, name: str) -> checkmodel.Item:
    return next(i for i in report.items if i.name == name)


def test_honest_doubles_pass_every_item(doubles):
    for name in ("cm_honest", "cm_global_rng"):  # seeded from cfg.seed / from the global RNG the harness seeds
        report = doubles[name]
        assert not report.failed, "\n".join(report.lines())
        assert item(report, checkmodel.SEED_ITEM).status == "ok"
        assert "sampled values differ" in item(report, checkmodel.SEED_ITEM).detail
        device = item(report, checkmodel.DEVICE_ITEM)
        assert device.status == "ok" and "1 network(s) there" in device.detail, device


def test_fit_that_ignores_its_seed_fails_the_seed_item(doubles):
    report = doubles["cm_fixed_seed"]  # torch.manual_seed(0) inside fit, after the harness seeded the global RNG
    assert [i.name for i in report.failed] == [checkmodel.SEED_ITEM], "\n".join(report.lines())
    detail = item(report, checkmodel.SEED_ITEM).detail
    assert "\n" not in detail
    assert detail.startswith(
        "fits with seeds 3 and 4 give identical samples, yet the model draws random numbers (torch "
    )
    assert "torch.manual_seed(0)" in detail and "torch.manual_seed(cfg.seed)" in detail
    # still deterministic: the same seed gives the same samples, so only the seed item fails
    assert item(report, "same seed -> same samples").status == "ok"


def test_fit_that_ignores_its_device_fails_the_device_item(doubles):
    cpu_only = doubles["cm_cpu_only"]
    assert [i.name for i in cpu_only.failed] == [checkmodel.DEVICE_ITEM], "\n".join(cpu_only.lines())
    detail = item(cpu_only, checkmodel.DEVICE_ITEM).detail
    assert "\n" not in detail and "fit put no tensor on the device although it trains networks" in detail
    assert "net.to(cfg.device)" in detail
    data_only = doubles["cm_data_only"]  # data on the device, network on the CPU: a GPU would stop in the forward
    assert [i.name for i in data_only.failed] == [checkmodel.DEVICE_ITEM], "\n".join(data_only.lines())
    detail = item(data_only, checkmodel.DEVICE_ITEM).detail
    assert "fit mixes device tensors with CPU tensors (addmm x6" in detail
    assert "Expected all tensors to be on the same device" in detail


def test_cli_names_the_failed_item_in_one_line(doubles, capsys):
    assert main(["check-model", "cm_fixed_seed", "--plugin", PLUGIN]) == 2
    captured = capsys.readouterr()
    assert "[FAIL] fit follows FitConfig.seed" in captured.out and "all checks passed" not in captured.out
    assert captured.err.strip() == f"error: check-model cm_fixed_seed: failed: {checkmodel.SEED_ITEM}"


def test_a_fit_without_randomness_needs_no_seed_nor_device():
    report = checkmodel.check("replay")  # stores the training images: nothing random, nothing to compute
    assert not report.failed, "\n".join(report.lines())
    assert "fit draws no random numbers" in item(report, checkmodel.SEED_ITEM).detail
    device = item(report, checkmodel.DEVICE_ITEM)
    assert device.status == "skip" and "nothing needs a GPU" in device.detail


def test_stand_in_device_computes_on_the_cpu_and_tracks_what_is_on_it():
    dev = checkmodel._StandInDevice()
    net = torch.nn.Linear(3, 2)
    with dev.active():
        net.to(checkmodel.STAND_IN)
        x = torch.ones(4, 3, device=checkmodel.STAND_IN)
        y = net(x)  # real numbers, computed on the CPU
        assert y.device == torch.device(checkmodel.STAND_IN) and torch.equal(y.detach(), net(x).detach())
        back = y.cpu()
        assert back.device == torch.device("cpu") and dev.marked(y) and not dev.marked(back)
        _ = y * torch.tensor(2.0)  # a 0-dim CPU tensor is a scalar: fine on a GPU
        assert not dev.mixed
        _ = y + torch.zeros(4, 2)  # a GPU stops here
    assert dict(dev.mixed) == {"add": 1} and dev.requests == 3  # weight, bias, x
    assert all(dev.marked(p) for p in net.parameters())
    assert y.device == torch.device("cpu")  # outside the block: plain CPU tensors
