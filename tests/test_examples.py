"""The examples and the API guide's snippet (docs/api.md) run as written; tests/test_docs.py checks every other
command, snippet and link of README.md and docs/."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args, cwd, timeout=900):
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_api_tour_example(tmp_path):
    r = _run([str(REPO / "examples" / "api_tour.py"), "--profile", "smoke", "--out", str(tmp_path / "tour")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "memoriser:" in r.stdout and (tmp_path / "tour" / "fig4-from-api.png").stat().st_size > 1000


@pytest.mark.slow
def test_api_guide_snippet(tmp_path):
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- api-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert block, "docs/api.md lost its API snippet marker"
    script = tmp_path / "snippet.py"
    script.write_text(block.group(1).replace('profile="demo"', 'profile="smoke"'))
    r = _run([str(script)], tmp_path)
    assert r.returncode == 0, r.stderr
