"""An earlier commit's ``bench`` package, importable beside this checkout's as ``bench_base`` (benchmark scripts only)."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE_PKG = "bench_base"


def export(rev: str) -> Path:
    """``rev``'s ``bench`` package as ``<tmp>/bench_base`` with its own imports pointing at itself; put on sys.path."""
    out = Path(tempfile.mkdtemp(prefix="ab-base-"))
    archive = subprocess.run(["git", "archive", rev, "bench"], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    (out / "bench").rename(out / BASE_PKG)
    pattern = re.compile(r"\bbench(?=[.\s]|$)")
    # Module names as string literals ("bench.models.registry", module == "bench" in registries.is_builtin): without
    # this, the exported built-ins would count as plug-ins of a package that is still loading its built-ins.
    literal = re.compile(r"""(["'])bench(?=\.|\1)""")
    for path in (out / BASE_PKG).rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        fixed = [
            pattern.sub(BASE_PKG, ln) if re.match(r"\s*(from|import)\s+bench\b", ln) or "bench.models" in ln else ln
            for ln in lines
        ]
        fixed = [literal.sub(rf"\g<1>{BASE_PKG}", ln) for ln in fixed]
        path.write_text("".join(fixed), encoding="utf-8")
    sys.path.insert(0, str(out))
    return out


def short(rev: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def describe() -> str:
    """This checkout's commit, with -dirty when tracked files differ."""
    return subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
