"""Every built-in model passes its own contract (`bench check-model`), in seconds each."""

import pytest

from bench import checkmodel
from bench.models import registry


@pytest.mark.slow
@pytest.mark.parametrize("name", registry.names())
def test_built_in_model_passes_check_model(name):
    report = checkmodel.check(name)
    assert not report.failed, "\n".join(report.lines())
    statuses = {i.name: i.status for i in report.items}
    assert statuses["save/load round trip"] == "ok" and statuses["same seed -> same samples"] == "ok"
    if registry.get(name).oracle:
        assert statuses["fit does not read the outlier labels"] == "skip"
    else:
        assert statuses["fit does not read the outlier labels"] == "ok"
    # the list of items that a failure can leave "not checked" names exactly the items a full run checks, in order
    assert [i.name for i in report.items] == list(checkmodel.ITEMS)
    assert not any(i.detail.startswith("not checked") for i in report.items)
