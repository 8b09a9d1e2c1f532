"""Op-level tracing for the benchmark scripts (not part of the package): count FLOPs, record every aten op a piece
of code dispatches, and replay the recorded ops on fresh tensors of the same shapes, strides and dtypes.

``OpTrace`` is a ``TorchDispatchMode``: it sees each aten op below autograd (forward, backward and double backward
alike) and counts FLOPs with torch's own formulas (``torch.utils.flop_counter.flop_registry``: convolutions, their
backward, mm/addmm/bmm). Unlike ``FlopCounterMode`` it installs no module hooks, so it works around
``torch.autograd.grad(create_graph=True)`` (R1, gradient penalty).

``replay`` times each distinct recorded op alone (median of a few calls, times how often it occurred), so a step's
time splits into: FLOP-counted kernels (convolutions, matmuls), every other op (element-wise, pooling, reductions,
copies, optimiser maths: mostly memory-bound), and what is left of the measured step time, i.e. Python, module
calls and the autograd engine ("framework overhead").
"""

from __future__ import annotations

import collections
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import flop_registry


class TensorMeta:
    """Shape, strides and dtype of a tensor argument; ``make`` builds a fresh tensor like it: floats uniform in
    [0.5, 1.5) (positive, so sqrt/log/division see valid inputs: sqrt of negative numbers runs ~60x slower, NaN
    outputs), integers zero (index arguments stay in range)."""

    __slots__ = ("shape", "stride", "dtype")

    def __init__(self, t: torch.Tensor):
        self.shape, self.stride, self.dtype = tuple(t.shape), tuple(t.stride()), t.dtype

    def key(self) -> tuple:
        return ("T", self.shape, self.stride, str(self.dtype))

    def make(self) -> torch.Tensor:
        n = 1 + sum((s - 1) * st for s, st in zip(self.shape, self.stride)) if all(self.shape) else 0
        flat = torch.rand(n).add_(0.5) if self.dtype.is_floating_point else torch.zeros(n)
        return flat.to(self.dtype).as_strided(self.shape, self.stride)


def _meta(x: Any) -> Any:
    return TensorMeta(x) if isinstance(x, torch.Tensor) else x


def _key(x: Any) -> Any:
    if isinstance(x, TensorMeta):
        return x.key()
    if isinstance(x, (list, tuple)):
        return tuple(_key(v) for v in x)
    if isinstance(x, dict):
        return tuple(sorted((k, _key(v)) for k, v in x.items()))
    if isinstance(x, torch.Generator):
        return "generator"
    return repr(x)


def _materialise(x: Any) -> Any:
    return tree_map(lambda v: v.make() if isinstance(v, TensorMeta) else v, x)


@dataclass
class OpRecord:
    func: Any
    args: Any
    kwargs: Any
    flops: int


_aten = torch.ops.aten
_DECOMPOSE = {
    _aten.conv1d,
    _aten.conv2d,
    _aten.conv3d,
    _aten.conv_transpose1d,
    _aten.conv_transpose2d,
    _aten.conv_transpose3d,
    _aten.linear,
    _aten.matmul,
    _aten.einsum,
}


class OpTrace(TorchDispatchMode):
    """Records every aten op run inside it (tensor arguments as ``TensorMeta``) with its FLOP count."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[OpRecord] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        # Under inference mode composite ops (conv2d, linear, ...) arrive undecomposed: decompose those, so their
        # convolutions and matmuls are seen (and counted) as in training; other ops run as they are.
        if func._overloadpacket in _DECOMPOSE:
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        flops = flop_registry[packet](*args, **kwargs, out_val=out) if packet in flop_registry else 0
        self.records.append(OpRecord(func, tree_map(_meta, args), tree_map(_meta, kwargs), int(flops)))
        return out

    @property
    def flops(self) -> int:
        return sum(r.flops for r in self.records)


def trace(fn: Callable[[], Any]) -> OpTrace:
    t = OpTrace()
    with t:
        fn()
    return t


@dataclass
class OpGroup:
    name: str
    count: int
    flops: int  # per call
    seconds: float = float("nan")  # per call, median
    example: Any = None


@dataclass
class Replay:
    compute_s: float  # FLOP-counted kernels, summed over all calls
    other_s: float  # every other op
    failed: int  # distinct ops that could not be replayed (their time is missing from other_s)
    groups: list[OpGroup] = field(default_factory=list)  # every replayed op, FLOP-counted or not

    @property
    def compute_flops(self) -> int:
        return sum(g.flops * g.count for g in self.groups)

    @property
    def ops(self) -> int:
        return sum(g.count for g in self.groups)


def group_ops(records: list[OpRecord]) -> dict[tuple, list]:
    groups: dict[tuple, list] = collections.OrderedDict()
    for r in records:
        key = (str(r.func), _key(r.args), _key(r.kwargs))
        if key in groups:
            groups[key][3] += 1
        else:
            groups[key] = [r.func, r.args, r.kwargs, 1, r.flops]
    return groups


def clock(threads: int):
    """The timer for ``threads`` torch threads: this thread's CPU time for one thread (time spent descheduled by
    other processes on a shared machine does not count), wall time otherwise."""
    return time.thread_time if threads == 1 else time.perf_counter


@dataclass
class Rounds:
    """Seconds per call of two functions timed side by side, one entry per round (``clock`` time and wall time)."""

    first: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)
    first_wall: list[float] = field(default_factory=list)
    second_wall: list[float] = field(default_factory=list)

    def ratios(self) -> list[float]:
        """first / second, round by round."""
        return [a / b for a, b in zip(self.first, self.second)]

    def wall_ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.first_wall, self.second_wall)]


def alternate(first: Callable[[], object], second: Callable[[], object], rounds: int, calls: int = 1) -> Rounds:
    """Time ``calls`` calls of each function per round, the order alternating (first second, second first, ...), so
    both see the same load on a shared machine; the timer is ``clock(torch.get_num_threads())``."""
    now = clock(torch.get_num_threads())
    out = Rounds()

    def timed(fn: Callable[[], object], times: list[float], walls: list[float]) -> None:
        t0, w0 = now(), time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((now() - t0) / calls)
        walls.append((time.perf_counter() - w0) / calls)

    for r in range(rounds):
        a, b = (first, out.first, out.first_wall), (second, out.second, out.second_wall)
        for fn, times, walls in (a, b) if r % 2 == 0 else (b, a):
            timed(fn, times, walls)
    return out


def replay(records: list[OpRecord], reps: int = 5, warmup: int = 2) -> Replay:
    """Time every distinct op of ``records`` alone on fresh tensors: median of ``reps`` calls x occurrences (the
    clock of ``clock(torch.get_num_threads())``)."""
    now = clock(torch.get_num_threads())
    compute = other = 0.0
    failed = 0
    out: list[OpGroup] = []
    for func, a, k, count, flops in group_ops(records).values():
        try:
            args, kwargs = _materialise(a), _materialise(k)
            with torch.no_grad():
                for _ in range(warmup):
                    func(*args, **kwargs)
                ts = []
                for _ in range(reps):
                    t0 = now()
                    func(*args, **kwargs)
                    ts.append(now() - t0)
        except Exception:  # e.g. an in-place op on an expanded tensor: leave it out, count it
            failed += 1
            continue
        t = statistics.median(ts)
        if flops > 0:
            compute += t * count
        else:
            other += t * count
        out.append(OpGroup(str(func), count, flops, t, a))
    return Replay(compute, other, failed, out)


def top_ops(rep: Replay, n: int = 10) -> list[tuple[str, int, float, float]]:
    """The ``n`` op names taking the most replayed time: (name, calls, seconds, GFLOP/s or nan)."""
    by_name: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for g in rep.groups:
        row = by_name[g.name]
        row[0] += g.count
        row[1] += g.seconds * g.count
        row[2] += g.flops * g.count
    rows = [(k, int(c), t, f / t / 1e9 if f and t > 0 else float("nan")) for k, (c, t, f) in by_name.items()]
    return sorted(rows, key=lambda r: -r[2])[:n]
