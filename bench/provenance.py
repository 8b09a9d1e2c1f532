"""Provenance of a result: the command line, library versions, platform, CPU (and whether it has native bf16), device
and code commit.

``LOADED_COMMIT`` is read once, when the process loads this code: a commit made while a grid runs must not be
credited to workers still running the older code. "+dirty" marks a tree with uncommitted changes to tracked files.
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("robust-gen-bench", "torch", "torchvision", "torch-fidelity", "numpy", "pandas", "scikit-learn")


def git_commit() -> str:
    """Short commit of the code that ran, with "+dirty" when tracked files differ from it ("" outside git)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=5, check=True).stdout

    try:
        commit = git("rev-parse", "--short=12", "HEAD").strip()
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no").strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""


LOADED_COMMIT = git_commit()


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def command_line(argv: list[str] | None = None) -> str:
    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).name in ("bench", "cli.py", "__main__.py"):
        argv[0] = "bench"
    return shlex.join(argv)


def hardware(device: str = "cpu") -> dict[str, Any]:
    """The CPU's model, torch's CPU capability and whether ``device`` computes bf16 natively (bench.precision), so a
    result says what ran: a "bf16" run on a device without it trained in fp32."""
    import torch

    from bench import precision

    native, why = precision.native_bf16(device)
    return {
        "cpu": precision.cpu_model(),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "native_bf16": native,
        "native_bf16_why": why,
    }


def environment(device: str = "cpu") -> dict[str, Any]:
    """What a cell's config.json records besides its settings."""
    return {
        "command": command_line(),
        "versions": versions(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        **hardware(device),
        "device": device,
        "commit": LOADED_COMMIT,
    }
