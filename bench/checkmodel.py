"""``bench check-model NAME``: the model contract, checked in seconds on tiny synthetic data (16 px embedded faces,
24 inliers + 8 outliers, the model's ``smoke`` settings).

Every fit here is called as a cell calls it: the model is built, ``torch.manual_seed(seed)`` is called, then
``fit(images, labels, FitConfig(seed, checkpoint, device), progress)``. Checked, in order (``ITEMS``):

- every profile's settings resolve; ``fit`` returns a FitResult; samples are uint8 N x 3 x H x W;
- the same seed gives the same samples (sampling twice, and refitting from scratch);
- ``fit`` follows ``FitConfig.seed``: two seeds give different samples (sampled with one sample seed). A fit whose
  samples do not depend on the seed passes only when it draws no random numbers at all (watched: torch's random ops,
  numpy's ``default_rng``/``seed``, ``random.seed``); one that draws them from a constant seed fails;
- a save/load round trip gives identical samples; ``fit`` does not read the outlier labels (permuted and inverted
  labels give identical samples; oracles are exempt by declaration); a fit interrupted after its first checkpoint
  and resumed equals an uninterrupted one (when the model checkpoints at all);
- ``fit`` and ``sample`` follow ``FitConfig.device``, on any machine: fit is asked for a stand-in device
  (``"meta"``) that really computes on the CPU (:class:`_StandInDevice`), which records what fit put on the device;
  the model's networks must be there and no operation may mix device tensors with CPU tensors (a GPU would stop).
"""

from __future__ import annotations

import collections
import contextlib
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from bench.config import PROFILE_NAMES
from bench.models import registry
from bench.models.base import Checkpointer, FitConfig, FitResult, GenerativeModel
from bench.progress import Progress, null_progress

SIZE, N_INLIERS, N_OUTLIERS, N_SAMPLES, SEED = 16, 24, 8, 8, 3
OTHER_SEED = SEED + 1  # the second fit of the seed check
STAND_IN = "meta"  # the device string the device check passes in FitConfig.device

# Every item, in the order they run; an item after a failure that stops the run is listed as not checked.
ITEMS = (
    "every profile's settings resolve",
    "fit returns a FitResult",
    "samples are uint8 N x 3 x H x W",
    "same seed -> same samples",
    "fit follows FitConfig.seed (other seed -> other samples)",
    "save/load round trip",
    "fit does not read the outlier labels",
    "resume from a checkpoint equals an uninterrupted run",
    "fit and sample follow FitConfig.device",
)
SEED_ITEM, DEVICE_ITEM = ITEMS[4], ITEMS[8]


@dataclass
class Item:
    name: str
    status: str  # "ok", "FAIL", "skip"
    detail: str = ""


@dataclass
class CheckReport:
    model: str
    origin: str
    items: list[Item] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if i.status == "FAIL"]

    def lines(self) -> list[str]:
        out = [f"check-model {self.model} ({self.origin})"]
        out += [f"  [{i.status:4s}] {i.name}" + (f": {i.detail}" if i.detail else "") for i in self.items]
        passed = sum(i.status == "ok" for i in self.items)
        verdict = "all checks passed" if not self.failed else f"{len(self.failed)} check(s) FAILED"
        out.append(f"{verdict} ({passed} ok, {sum(i.status == 'skip' for i in self.items)} skipped, "
                   f"{self.seconds:.1f} s)")  # fmt: skip
        return out


class _Interrupted(Exception):
    pass


class _Failed(Exception):
    pass


class _Skipped(Exception):
    pass


class _InterruptingCheckpointer(Checkpointer):
    """Saves every time it is asked, and stops the fit right after the first save (a simulated kill)."""

    def __init__(self, path: Path, interrupt: bool):
        super().__init__(path, every_s=0.0)
        self.interrupt, self.saves = interrupt, 0

    def due(self) -> bool:
        return True

    def save(self, state: dict[str, Any]) -> None:
        super().save(state)
        self.saves += 1
        if self.interrupt:
            raise _Interrupted


def tiny_data() -> tuple[torch.Tensor, torch.Tensor]:
    from bench.datasets.synthetic import SyntheticPool

    faces = SyntheticPool("face", SEED, N_INLIERS)
    masked = SyntheticPool("masked_face", SEED, N_OUTLIERS)
    images = [faces.get(i, SIZE) for i in range(N_INLIERS)] + [masked.get(i, SIZE) for i in range(N_OUTLIERS)]
    order = np.random.default_rng(SEED).permutation(len(images))
    x = torch.from_numpy(np.stack(images)[order].transpose(0, 3, 1, 2).copy())
    labels = torch.tensor([False] * N_INLIERS + [True] * N_OUTLIERS)[torch.from_numpy(order)]
    return x, labels


# ------------------------------------------------------------------------------------------- watching randomness


_RANDOM_OPS: dict[Any, bool] = {}


def _is_random_op(func: Any) -> bool:
    """An aten op that draws random numbers: one of its overloads takes a ``generator`` (randn, uniform_, randperm,
    bernoulli_, multinomial, ...)."""
    packet = func.overloadpacket
    hit = _RANDOM_OPS.get(packet)
    if hit is None:
        hit = any(a.name == "generator" for o in packet.overloads() for a in getattr(packet, o)._schema.arguments)
        _RANDOM_OPS[packet] = hit
    return hit


class _RandomWatch(TorchDispatchMode):
    """Counts the random numbers torch draws inside the block, and who seeded what (torch.manual_seed, numpy's
    default_rng / seed, random.seed: the usual ways to fix a seed)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()
        self.seeded: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if _is_random_op(func):
            self.ops[f"torch {func.overloadpacket.__name__}"] += 1
        return func(*args, **(kwargs or {}))

    @contextlib.contextmanager
    def watching(self) -> Iterator[_RandomWatch]:
        patches = [(torch, "manual_seed"), (torch.random, "manual_seed"), (np.random, "default_rng"),
                   (np.random, "seed"), (random, "seed")]  # fmt: skip
        saved = [getattr(mod, name) for mod, name in patches]
        labels = ["torch.manual_seed", "torch.manual_seed", "numpy.random.default_rng", "numpy.random.seed",
                  "random.seed"]  # fmt: skip

        def recording(fn: Callable, label: str) -> Callable:
            def wrapper(*args, **kwargs):
                shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
                self.seeded.append(f"{label}({shown})")
                return fn(*args, **kwargs)

            return wrapper

        for (mod, name), fn, label in zip(patches, saved, labels):
            setattr(mod, name, recording(fn, label))
        try:
            with self:
                yield self
        finally:
            for (mod, name), fn in zip(patches, saved):
                setattr(mod, name, fn)

    def drew(self) -> bool:
        return bool(self.ops) or any(not s.startswith("torch.manual_seed") for s in self.seeded)

    def summary(self) -> str:
        drawn = [f"{name} x{n}" for name, n in self.ops.most_common(3)]
        seeded = list(dict.fromkeys(s for s in self.seeded if not s.startswith(f"torch.manual_seed({OTHER_SEED})")))
        return "; ".join(filter(None, [", ".join(drawn), "seeded by " + ", ".join(seeded[:3]) if seeded else ""]))


# ----------------------------------------------------------------------------------------- the stand-in device


_DEVICE_ATTRIBUTE = torch._C.TensorBase.__dict__["device"]
_CPU = torch.device("cpu")
# Mixing a device tensor with a CPU tensor is fine in these ops on a real GPU (copies, CPU index tensors).
_MIX_ALLOWED = {"copy_", "_to_copy", "copy", "index", "index_put", "index_put_", "_index_put_impl_", "set_",
                "lift_fresh", "lift_fresh_copy", "detach", "alias", "_local_scalar_dense"}  # fmt: skip


def _tensors(*values: Any) -> list[torch.Tensor]:
    """The tensors among an op's arguments or outputs (aten's are flat, but for tensor lists and a kwargs dict)."""
    out = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out += _tensors(*v)
        elif isinstance(v, dict):
            out += _tensors(*v.values())
    return out


def _device_of(value: Any) -> str | None:
    """The kind of device ``value`` names: "dev" (the stand-in), "cpu", or None (not a device, or another one)."""
    if isinstance(value, torch.device) or isinstance(value, str):
        try:
            d = torch.device(value)
        except (RuntimeError, TypeError):
            return None
        return "dev" if d.type == STAND_IN else "cpu" if d.type == "cpu" else None
    return None


class _StandInDevice:
    """A device that is really the CPU, for checking that a model follows ``FitConfig.device`` without a GPU.

    Inside :meth:`active`, every request for the device ``"meta"`` (a factory's ``device=``, ``tensor.to(...)``,
    ``module.to(...)``) is carried out on the CPU, and the storages so made are marked as on the device; the mark
    follows every operation (an op's new outputs are on the device when an input is), ``tensor.device`` reports
    ``meta`` for a marked tensor and ``.cpu()`` / ``.to("cpu")`` copy it off. So a model computes as it would on a
    GPU, with real numbers, and the check sees: how many tensors fit put on the device, which operations mixed
    device tensors with (non-scalar) CPU tensors, where a GPU raises "Expected all tensors to be on the same device",
    and whether the model's networks ended up on the device.
    """

    def __init__(self) -> None:
        # storage address -> on the device (True), on the CPU (False), either (None: made by autograd's engine)
        self.on: dict[int, bool | None] = {}
        self.requests = 0
        self.mixed: collections.Counter[str] = collections.Counter()
        self.gradients = False

    @staticmethod
    def _key(t: torch.Tensor) -> int:
        try:
            return t.untyped_storage().data_ptr() if t.numel() else 0
        except (RuntimeError, NotImplementedError):
            return 0

    def marked(self, t: Any) -> bool:
        if not isinstance(t, torch.Tensor):
            return False
        with torch._C.DisableTorchFunction():
            key = self._key(t)
        return bool(key) and self.on.get(key, False) is True

    def _mark(self, out: Any, on: bool, inputs: Any = ()) -> None:
        """Mark ``out``'s storages; one shared with an input keeps its mark (an alias moves nowhere)."""
        with torch._C.DisableTorchFunction():
            shared = {self._key(t) for t in _tensors(inputs)}
            for t in _tensors(out):
                if (key := self._key(t)) and key not in shared:
                    self.on[key] = on

    @contextlib.contextmanager
    def active(self) -> Iterator[_StandInDevice]:
        with _Requests(self), _Marks(self):
            yield self


class _Requests(TorchFunctionMode):
    """The Python-level half of the stand-in: device arguments, ``tensor.device``, moves on and off the device."""

    def __init__(self, device: _StandInDevice):
        super().__init__()
        self.device = device

    def __torch_function__(self, func, types, args=(), kwargs=None):
        dev = self.device
        kwargs = dict(kwargs or {})
        if getattr(func, "__self__", None) is _DEVICE_ATTRIBUTE:  # tensor.device, as the model sees it
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if dev.marked(args[0]) and not caller.startswith("torch."):  # torch's own checks see the CPU
                return torch.device(STAND_IN)
            return func(*args, **kwargs)
        target = _device_of(kwargs.get("device"))
        if target == "dev":
            kwargs["device"] = _CPU
        name = getattr(func, "__name__", "")
        is_method = getattr(func, "__qualname__", "").startswith("TensorBase.")
        if is_method and name in ("to", "cpu"):
            args = list(args)
            if name == "cpu":
                target, func, args = "cpu", torch.Tensor.to, [args[0], _CPU]
            for i, a in enumerate(args[1:], 1):
                if isinstance(a, torch.Tensor):
                    target = "dev" if dev.marked(a) else "cpu"
                elif (where := _device_of(a)) is not None:
                    target = where
                    if where == "dev":
                        args[i] = _CPU
            if target is not None and (target == "dev") != dev.marked(args[0]):
                kwargs["copy"] = True  # a move between devices copies, as on a GPU
        out = func(*args, **kwargs)
        if target is not None and (is_method or "device" in kwargs):
            dev._mark(out, target == "dev", (args, kwargs))
            dev.requests += target == "dev"
        return out


class _Marks(TorchDispatchMode):
    """The aten-level half: every op's new outputs are on the device when an input is; mixed inputs are counted."""

    def __init__(self, device: _StandInDevice):
        super().__init__()
        self.device = device

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        dev = self.device
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunction():
            tensors = _tensors(args, kwargs)
            keys = [dev._key(t) for t in tensors]
            states = [dev.on.get(k, False) if k else None for k in keys]
            if any(t.requires_grad for t in tensors):
                dev.gradients = True
            if True in states and False in states and func.overloadpacket.__name__ not in _MIX_ALLOWED:
                if any(s is False and t.dim() > 0 for t, s in zip(tensors, states)):
                    dev.mixed[func.overloadpacket.__name__] += 1
        out = func(*args, **kwargs)
        if True in states:
            state: bool | None = True
        elif False in states:
            state = False
        else:  # made from nothing: on the CPU, unless autograd's engine made it (its zeros follow the graph)
            state = None if tensors or torch._C._current_graph_task_id() != -1 else False
        inputs = set(keys)
        with torch._C.DisableTorchFunction():
            for t in _tensors(out):
                if (key := dev._key(t)) and key not in inputs:
                    dev.on[key] = state  # a new storage (in place: unchanged)
        return out


def _networks(model: GenerativeModel) -> dict[str, torch.nn.Module]:
    """The model's nn.Module attributes (also inside a list, tuple or dict attribute), by ``self.`` name."""
    out: dict[str, torch.nn.Module] = {}
    for name, value in vars(model).items():
        if isinstance(value, torch.nn.Module):
            out[f"self.{name}"] = value
        elif isinstance(value, (list, tuple)):
            out.update({f"self.{name}[{i}]": v for i, v in enumerate(value) if isinstance(v, torch.nn.Module)})
        elif isinstance(value, dict):
            out.update({f"self.{name}[{k!r}]": v for k, v in value.items() if isinstance(v, torch.nn.Module)})
    return out


# ------------------------------------------------------------------------------------------------ the checks


def check(name: str, progress: Progress = null_progress) -> CheckReport:
    """Every item of the contract for model ``name``; its files live in a temporary folder removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        return _check(name, progress, Path(tmp))


def _check(name: str, progress: Progress, tmp: Path) -> CheckReport:
    from bench import plugins

    t0 = time.perf_counter()
    spec = registry.get(name)
    report = CheckReport(name, f"{plugins.origin(spec.module)}, {spec.module}")
    items = report.items
    images, labels = tiny_data()

    def attempt(what: str, fn: Callable[[], str | None]) -> bool:
        try:
            detail = fn()
        except _Failed as e:
            items.append(Item(what, "FAIL", str(e)))
            return False
        except _Skipped as e:
            items.append(Item(what, "skip", str(e)))
            return True
        except Exception as e:
            items.append(Item(what, "FAIL", _why(e)))
            return False
        items.append(Item(what, "ok", detail or ""))
        return True

    def profiles() -> str:
        for p in PROFILE_NAMES:
            spec.make_config(p)
        return ", ".join(PROFILE_NAMES)

    attempt("every profile's settings resolve", profiles)
    state: dict[str, Any] = {}

    def fitted(seed_labels: torch.Tensor, checkpoint: Checkpointer | None = None, seed: int = SEED,
               device: str = "cpu") -> GenerativeModel:  # fmt: skip
        """A model fitted as a cell fits it: built, the global RNG seeded with the seed, then fit."""
        model = spec.build("smoke", SIZE)
        torch.manual_seed(seed)
        cfg = FitConfig(seed=seed, checkpoint=checkpoint, device=device)
        result = model.fit(images.clone(), seed_labels.clone(), cfg, progress)
        state.setdefault("result", result)
        return model

    def fit_once() -> str:
        state["model"] = fitted(labels)
        result = state["result"]
        if not isinstance(result, FitResult):
            raise _Failed(f"fit returned {type(result).__name__}; return a bench.plugin.FitResult")
        return f"images_seen={result.images_seen}"

    if not attempt("fit returns a FitResult", fit_once):
        return _finish(report, t0)
    model: GenerativeModel = state["model"]

    def samples_ok() -> str:
        s = model.sample(N_SAMPLES, seed=1)
        if not isinstance(s, torch.Tensor) or s.dtype != torch.uint8 or tuple(s.shape) != (N_SAMPLES, 3, SIZE, SIZE):
            raise _Failed(f"sample(8) gave {getattr(s, 'dtype', type(s))} {tuple(getattr(s, 'shape', ()))}; "
                          f"need uint8 {(N_SAMPLES, 3, SIZE, SIZE)}")  # fmt: skip
        state["samples"] = s
        return f"uint8 {N_SAMPLES} x 3 x {SIZE} x {SIZE}"

    if not attempt("samples are uint8 N x 3 x H x W", samples_ok):
        return _finish(report, t0)
    reference = state["samples"]

    def same(a: torch.Tensor, b: torch.Tensor, what: str, hint: str = "") -> None:
        if not torch.equal(a, b):
            diff = (a.int() - b.int()).abs()
            raise _Failed(f"{what}: {int((diff > 0).sum())} of {diff.numel()} values differ (max {int(diff.max())})"
                          + hint)  # fmt: skip

    def same_seed() -> str:
        same(model.sample(N_SAMPLES, seed=1), reference, "sampling twice with seed 1",
             "; derive sample()'s randomness from its seed argument only")  # fmt: skip
        same(fitted(labels).sample(N_SAMPLES, seed=1), reference, "refitting from scratch with the same seed",
             "; derive every random choice from FitConfig.seed (no unseeded RNG, nothing random in __init__ "
             "unless under a fixed seed)")  # fmt: skip
        return "sampling twice, and refitting from scratch"

    deterministic = attempt("same seed -> same samples", same_seed)
    not_reproducible = "not checked: the same seed does not give the same samples (see above)"

    def seed_followed() -> str:
        other = fitted(labels, seed=OTHER_SEED).sample(N_SAMPLES, seed=1)
        if not torch.equal(other, reference):
            n = int((other != reference).sum())
            return f"fits with seeds {SEED} and {OTHER_SEED}: {n} of {other.numel()} sampled values differ"
        watch = _RandomWatch()  # the same samples: a fit without randomness, or randomness that ignores the seed?
        with watch.watching():  # building and fitting: a network initialised from a constant counts too
            fitted(labels, seed=OTHER_SEED)
        if watch.drew():
            raise _Failed(
                f"fits with seeds {SEED} and {OTHER_SEED} give identical samples, yet the model draws random numbers "
                f"({watch.summary()}): seed them from cfg.seed (torch.manual_seed(cfg.seed) or "
                f"torch.Generator().manual_seed(cfg.seed)), never from a constant"
            )
        return (f"fits with seeds {SEED} and {OTHER_SEED} give identical samples, and fit draws no random numbers: "
                f"nothing to seed")  # fmt: skip

    if deterministic:
        attempt(SEED_ITEM, seed_followed)
    else:
        items.append(Item(SEED_ITEM, "skip", not_reproducible))

    def round_trip() -> str:
        model.save(tmp / "model.pt")
        same(GenerativeModel.load(tmp / "model.pt").sample(N_SAMPLES, seed=1), reference, "loaded model")
        return "save -> GenerativeModel.load -> identical samples"

    attempt("save/load round trip", round_trip)

    def labels_unused() -> str:
        permuted = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(7))]
        flipped = ~labels
        for what, fake in (("permuted", permuted), ("inverted", flipped)):
            same(fitted(fake).sample(N_SAMPLES, seed=1), reference, f"fit with {what} labels")
        return "permuted and inverted labels give identical samples"

    if spec.oracle:
        items.append(Item("fit does not read the outlier labels", "skip", "an oracle: reads them by design"))
    elif not deterministic:
        items.append(Item("fit does not read the outlier labels", "skip", not_reproducible))
    else:
        attempt("fit does not read the outlier labels", labels_unused)

    def resume() -> str:
        ckpt_path = tmp / "checkpoint.pt"
        first = _InterruptingCheckpointer(ckpt_path, interrupt=True)
        try:
            fitted(labels, first)
        except _Interrupted:
            pass
        if first.saves == 0:
            raise _Skipped("the model never saves a checkpoint (FitConfig.checkpoint unused)")
        resumed = fitted(labels, _InterruptingCheckpointer(ckpt_path, interrupt=False))
        same(resumed.sample(N_SAMPLES, seed=1), reference, "resumed after the first checkpoint")
        return "interrupted after the first checkpoint, resumed: identical samples"

    if deterministic:
        attempt("resume from a checkpoint equals an uninterrupted run", resume)
    else:
        items.append(Item("resume from a checkpoint equals an uninterrupted run", "skip", not_reproducible))

    attempt(DEVICE_ITEM, lambda: _device_followed(fitted, labels))
    return _finish(report, t0)


def _device_followed(fitted: Callable[..., GenerativeModel], labels: torch.Tensor) -> str:
    """Fit and sample with ``FitConfig.device`` set to the stand-in device (see :class:`_StandInDevice`)."""
    dev = _StandInDevice()
    phase = "fit"
    try:
        with dev.active():
            model = fitted(labels, device=STAND_IN)
            fit_requests, fit_mixed, phase = dev.requests, dict(dev.mixed), "sample"
            samples = model.sample(N_SAMPLES, seed=1)
            on_device = dev.marked(samples)
    except Exception as e:  # the model does something the stand-in cannot (e.g. torch.Generator(device=...))
        raise _Skipped(f"{phase} stopped with device={STAND_IN!r}, which stands in for a GPU here: {_why(e)}; "
                       f"check on a GPU with a smoke run (--set run.device=cuda)") from None  # fmt: skip
    nets = _networks(model)
    where = f"with FitConfig.device={STAND_IN!r} (a stand-in for a GPU)"
    fix = "put networks and data on cfg.device: net.to(cfg.device), x.to(cfg.device)"
    if fit_requests == 0 and (nets or dev.gradients):
        trains = "networks" if nets else "by gradient"
        raise _Failed(f"{where}, fit put no tensor on the device although it trains {trains}: it ignores "
                      f"cfg.device; {fix}")  # fmt: skip
    if dev.mixed:
        phases = "fit" if dev.mixed == fit_mixed else "sample" if not fit_mixed else "fit and sample"
        ops = ", ".join(f"{op} x{n}" for op, n in list(dev.mixed.items())[:3])  # in the order they first ran
        if phases == "sample":
            fix = "in sample, make new tensors on the model's device (torch.randn(...).to(device)) and return .cpu()"
        raise _Failed(f"{where}, {phases} mixes device tensors with CPU tensors ({ops}), where a GPU stops with "
                      f"'Expected all tensors to be on the same device': {fix}")  # fmt: skip
    off = {}
    for name, net in nets.items():
        tensors = [t for t in (*net.parameters(), *net.buffers()) if t.numel()]
        left = sum(not dev.marked(t) for t in tensors)
        if left:
            off[name] = f"{left} of {len(tensors)}"
    if off:
        listed = ", ".join(f"{w} ({n} parameters/buffers)" for w, n in off.items())
        raise _Failed(f"{where}, fit left networks on the CPU: {listed}; call .to(cfg.device) on them")
    if on_device:
        raise _Failed(f"{where}, sample returned images on the device; return CPU tensors (.cpu())")
    if fit_requests == 0:
        raise _Skipped("fit puts nothing on cfg.device, and holds no network and takes no gradient step: "
                       "nothing needs a GPU")  # fmt: skip
    return (f"with a stand-in device: fit put {fit_requests} tensors on it"
            + (f", {len(nets)} network(s) there" if nets else "") + ", no CPU tensor mixed in")  # fmt: skip


def _why(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return f"{type(e).__name__}: {e}{where}".replace("\n", " ")


def _finish(report: CheckReport, t0: float) -> CheckReport:
    seen = {i.name for i in report.items}
    report.items += [
        Item(name, "skip", "not checked: needs the failed item above") for name in ITEMS if name not in seen
    ]
    report.items.sort(key=lambda i: ITEMS.index(i.name) if i.name in ITEMS else len(ITEMS))
    report.seconds = time.perf_counter() - t0
    return report
