"""Every benchmark script imports against today's package (a renamed or removed module fails here, not months later
when someone runs the script), and none does its work at import time."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))


def test_there_are_scripts_to_check():
    assert SCRIPTS, f"no benchmark scripts found in {BENCHMARKS}"


def _has_main_guard(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
            consts = {n.value for n in ast.walk(node.test) if isinstance(n, ast.Constant)}
            if "__name__" in names and "__main__" in consts:
                return True
    return False


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_script_imports(path: Path, monkeypatch: pytest.MonkeyPatch):
    # As `python benchmarks/x.py` runs it: the script's folder first on sys.path (helpers such as _common, _ops).
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "argv", [str(path)])
    name = f"_benchmark_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    if not path.name.startswith("_"):
        assert _has_main_guard(path), f"{path.name}: guard the script's work with if __name__ == '__main__':"
        assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
