"""What a user types, validated: outlier ratios, seeds and data roots from the command line or the API, each bad
value one :class:`~bench.errors.BenchError` line saying how to fix it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.datasets import registry as dataset_registry
from bench.errors import BenchError


def _list(value: Any, parse) -> list:
    if isinstance(value, str):
        return parse(value)
    return list(value)


def parse_ratios(text: str) -> list[float]:
    """``0,5,10`` or the range form ``0,5,...,30`` -> [0.0, 5.0, ...] (percent)."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        if "..." in parts:
            i = parts.index("...")
            if i < 2 or i != len(parts) - 2:
                raise ValueError
            a, b, end = float(parts[i - 2]), float(parts[i - 1]), float(parts[i + 1])
            step = b - a
            if step <= 0:
                raise ValueError
            head = [float(p) for p in parts[: i - 2]]
            n = int(round((end - a) / step))
            values = head + [a + k * step for k in range(n + 1) if a + k * step <= end + 1e-9]
        else:
            values = [float(p) for p in parts]
    except ValueError:
        raise BenchError(f"bad --ratios '{text}': use percents like 0,5,10 or the range form 0,5,...,30") from None
    return check_ratios(values)


def check_ratios(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            raise BenchError(f"bad outlier ratio {v!r}: ratios are percents in [0, 100), e.g. --ratios 0,10,30")
        if not 0 <= v < 100:
            raise BenchError(f"bad outlier ratio {v:g} in --ratios: must be in [0, 100) percent")
        out.append(float(v))
    if not out:
        raise BenchError("no ratio given: pass --ratios, e.g. --ratios 0,5,...,30")
    return list(dict.fromkeys(out))


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise BenchError(f"bad --seeds '{text}': use non-negative integers like 0 or 0,1,2") from None
    return check_seeds(seeds)


def check_seeds(values: Iterable[Any]) -> list[int]:
    out = []
    for s in values:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**31:
            raise BenchError(f"bad seed {s!r}: seeds are integers in [0, 2^31), e.g. --seeds 0,1,2")
        out.append(int(s))
    if not out:
        raise BenchError("no seed given: pass --seeds 0")
    return list(dict.fromkeys(out))


def parse_data_roots(items: Iterable[str], known: Iterable[str] | None = None) -> dict[str, str]:
    """``NAME=PATH`` items -> {name: path}; names must be registered datasets."""
    roots = {}
    for item in items:
        name, eq, path = item.partition("=")
        if not eq or not name.strip() or not path.strip():
            raise BenchError(f"bad --data-root '{item}': expected NAME=PATH, e.g. --data-root facemask=/data/FaceMaskLite")
        dataset_registry.get(name.strip())
        roots[name.strip()] = path.strip()
    return roots
