"""Progress reporting: a factory ``progress(total, desc)`` returning a context-managed bar, plus ``note(msg)``.

Models call ``with progress(total=epochs, desc="rvqvae train") as bar: bar.update(1); bar.set_postfix(...)``.
Three kinds: tqdm bars on a terminal, counted lines (``LineProgress``: a line when a phase starts, at most every
``every_s`` seconds while it runs, and when it ends; for pipes, logs and parallel workers) and silence. On a
terminal, ``status_line`` speaks for start-up (importing torch, planning) and is erased when output begins.

One clock: every line's ``[mm:ss]`` counts from the run's start, the driver's lines and its worker processes' alike.
The driver marks the start (``start_run_clock``, called by ``for_terminal``) in an environment variable that the
worker processes it starts afterwards inherit; a ``LineProgress`` made in a worker reads it (``run_clock_t0``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol, TextIO


class Bar(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> Any: ...
    def __enter__(self) -> Bar: ...
    def __exit__(self, *exc: Any) -> Any: ...


class Progress(Protocol):
    def __call__(self, total: int, desc: str) -> Bar: ...


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _NullBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class NullProgress:
    """Says nothing."""

    def __call__(self, total: int, desc: str) -> _NullBar:
        return _NullBar()

    def note(self, message: str, phase: Any = None) -> None:
        pass


null_progress = NullProgress()


def note(progress: Any, message: str, phase: Any = "start") -> None:
    """One line through ``progress`` if it can print lines (plug-in progress objects may not). By default the line
    starts a phase that the heartbeat keeps reporting until the next line; ``phase=None`` for a line that ends one."""
    fn = getattr(progress, "note", None)
    if fn is not None:
        fn(message, phase=phase)


PROCESS_T0 = time.monotonic()  # about when the process started: the `bench` launcher imports this module first
RUN_CLOCK_ENV = "BENCH_RUN_CLOCK_T0"  # the run's start (seconds since the epoch), inherited by its worker processes
_MAX_RUN_S = 30 * 86400  # a mark older than this (or in the future) is not this run's


def start_run_clock(t0: float | None = None) -> float:
    """Make ``t0`` (a ``time.monotonic()`` value; default: the process start) the origin of every line's clock in this
    run: in this process, and in the worker processes (loky, a local Dask cluster) it starts afterwards, which
    inherit the environment variable. Returns ``t0``."""
    t0 = PROCESS_T0 if t0 is None else t0
    os.environ[RUN_CLOCK_ENV] = repr(time.time() - (time.monotonic() - t0))
    return t0


def run_clock_t0() -> float:
    """The ``time.monotonic()`` value the run's clock counts from: the driver's mark when this process inherited one
    (a worker), else now."""
    try:
        elapsed = time.time() - float(os.environ[RUN_CLOCK_ENV])
    except (KeyError, ValueError):
        return time.monotonic()
    return time.monotonic() - elapsed if 0 <= elapsed < _MAX_RUN_S else time.monotonic()


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


class _LineBar:
    def __init__(self, owner: LineProgress, total: int, desc: str):
        self.owner, self.total, self.desc = owner, max(0, int(total)), desc
        self.n, self.postfix = 0, ""
        self.t0 = self.last = time.monotonic()

    def status(self, final: bool = False) -> str:
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        rest = f" {self.postfix}" if self.postfix else ""
        took = f" done in {time.monotonic() - self.t0:.1f} s" if final else f" {time.monotonic() - self.t0:.0f} s"
        return f"{self.desc} {self.n}/{self.total}{pct}{rest}{took}"

    def _print(self, final: bool = False) -> None:
        self.owner.note(self.status(final), phase=None if final else self)
        self.last = time.monotonic()

    def __enter__(self) -> _LineBar:
        self._print()
        return self

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.owner.every_s and self.n < self.total:
            self._print()

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = " ".join(f"{k}={v}" for k, v in items.items())

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self._print(final=True)
        self.owner._phase = None


class LineProgress:
    """Counted lines on ``stream``: ``[mm:ss] prefix desc n/total (pct) ...`` when a phase starts, every ``every_s``
    seconds while it runs (a heartbeat thread speaks for phases that update rarely, e.g. a long epoch or sampling),
    and when it ends."""

    def __init__(self, prefix: str = "", every_s: float = 5.0, stream: TextIO | None = None):
        self.prefix, self.every_s, self.stream = prefix, every_s, stream
        self.t0 = run_clock_t0()  # a worker's lines count from the run's start, like the driver's
        self._phase: Any = None  # the running bar, or a (message, start) of a phase announced by note()
        self._last_line = time.monotonic()
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None

    def __call__(self, total: int, desc: str) -> _LineBar:
        return _LineBar(self, total, desc)

    def note(self, message: str, phase: Any = "start") -> None:
        """One line; it also names the current phase for the heartbeat (``phase=None``: a phase ended)."""
        stream = self.stream or sys.stderr
        head = f"[{_clock(time.monotonic() - self.t0)}] {self.prefix}"
        with self._lock:
            print(f"{head}{message}", file=stream, flush=True)
            self._last_line = time.monotonic()
            self._phase = (message, time.monotonic()) if phase == "start" else phase
        self._start_ticker()

    def end_phase(self) -> None:
        """No phase is running any more (e.g. the cell failed): the heartbeat stops speaking for it."""
        with self._lock:
            self._phase = None

    def _start_ticker(self) -> None:
        if self._ticker is None and self.every_s > 0:
            self._ticker = threading.Thread(target=self._tick, daemon=True, name="bench-progress")
            self._ticker.start()

    def _tick(self) -> None:
        while True:
            time.sleep(self.every_s / 2)
            phase = self._phase
            if phase is None or time.monotonic() - self._last_line < self.every_s:
                continue
            if isinstance(phase, _LineBar):
                message = phase.status()
            else:
                message = f"... {phase[0]} ({time.monotonic() - phase[1]:.0f} s)"
            stream = self.stream or sys.stderr
            with self._lock:
                if self._phase is phase:
                    print(f"[{_clock(time.monotonic() - self.t0)}] {self.prefix}{message}", file=stream, flush=True)
                    self._last_line = time.monotonic()

    def child(self, prefix: str, every_s: float | None = None) -> LineProgress:
        """Lines of one cell, with its own prefix and the same clock."""
        out = LineProgress(prefix, self.every_s if every_s is None else every_s, self.stream)
        out.t0 = self.t0
        return out


class TqdmProgress:
    """tqdm bars on stderr (nested under a grid bar at ``position``); notes are written above the bars. A refresher
    thread redraws the open bars every second, so a bar whose steps are long (an epoch) still shows time passing."""

    def __init__(self, position: int = 1):
        self.position = position
        self.t0 = time.monotonic()
        self._bars: list[Any] = []
        self._phase_bar: Any = None  # the elapsed-time bar of the phase the last note started
        self._refresher: threading.Thread | None = None

    def __call__(self, total: int, desc: str) -> Bar:
        from tqdm.auto import tqdm

        owner = self

        class _Bar(tqdm):  # type: ignore[misc, valid-type]
            def __enter__(self) -> _Bar:
                owner._bars.append(self)
                owner._start_refresher()
                return super().__enter__()

            def __exit__(self, *exc: Any) -> Any:
                if self in owner._bars:
                    owner._bars.remove(self)
                return super().__exit__(*exc)

        self._end_phase()  # a counted bar takes over from the phase a note announced
        return _Bar(total=total, desc=desc, position=self.position, leave=False, dynamic_ncols=True)

    def _start_refresher(self) -> None:
        if self._refresher is None:
            self._refresher = threading.Thread(target=self._refresh, daemon=True, name="bench-bars")
            self._refresher.start()

    def _refresh(self) -> None:
        while True:
            time.sleep(1.0)
            for bar in list(self._bars):
                try:
                    bar.refresh()
                except Exception:  # a bar closed between the list copy and the refresh
                    pass

    def note(self, message: str, phase: Any = "start") -> None:
        """A line above the bars. A line that starts a phase (``phase="start"``, the default) also opens a bar that
        shows the phase's elapsed seconds until the next line or bar, so a phase without steps (sampling, scoring,
        writing the report) still shows time passing, as ``LineProgress``'s heartbeat does in logs."""
        from tqdm.auto import tqdm

        self._end_phase()
        tqdm.write(f"[{_clock(time.monotonic() - self.t0)}] {message}", file=sys.stderr)
        if phase == "start":
            self._phase_bar = tqdm(total=None, desc=f"... {message}", bar_format="{desc} ({elapsed})",
                                   position=self.position, leave=False, dynamic_ncols=True)  # fmt: skip
            self._bars.append(self._phase_bar)
            self._start_refresher()

    def _end_phase(self) -> None:
        bar, self._phase_bar = self._phase_bar, None
        if bar is not None:
            if bar in self._bars:
                self._bars.remove(bar)
            bar.close()

    def child(self, prefix: str, every_s: float | None = None) -> TqdmProgress:
        return self

    def close(self) -> None:
        """Close the phase bar (a run that ends with an error must not leave it above the error line)."""
        self._end_phase()


class StatusLine:
    """One transient line on a terminal, ``[mm:ss] message (N s)``, redrawn every second by a thread and erased by
    ``stop()``. It speaks for the start-up phases that print nothing else (importing torch, planning the cells)
    without leaving a line behind, so a rejected input still leaves exactly its one error line. Silent when the
    stream is not a terminal (pipes, logs, tests)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.t0 = PROCESS_T0
        self._message: str | None = None
        self._since = self.t0
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None

    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def start(self, message: str) -> None:
        try:
            if not self._out().isatty():
                return
        except (AttributeError, ValueError):  # a replaced or closed stream
            return
        with self._lock:
            self._message, self._since = message, time.monotonic()
            self._draw()
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, daemon=True, name="bench-status")
            self._ticker.start()

    def stop(self) -> None:
        with self._lock:
            if self._message is not None:
                self._message = None
                self._out().write("\r\x1b[K")  # carriage return, erase to the end of the line
                self._out().flush()

    @contextlib.contextmanager
    def shown(self, message: str) -> Iterator[None]:
        """The line while the block runs, erased when it ends (also by an error, before its message is printed)."""
        self.start(message)
        try:
            yield
        finally:
            self.stop()

    def _draw(self) -> None:
        waited = time.monotonic() - self._since
        text = f"[{_clock(time.monotonic() - self.t0)}] {self._message} ({waited:.0f} s)"
        width = _terminal_columns() or 80  # one screen row: a wrapped line could not be erased by a carriage return
        self._out().write("\r\x1b[K" + text[: width - 1])
        self._out().flush()

    def _tick(self) -> None:
        while True:
            time.sleep(1.0)
            with self._lock:
                if self._message is not None:
                    self._draw()


status_line = StatusLine()  # the process's start-up status (the `bench` launcher starts it, `bench run` stops it)


def _terminal_columns() -> int:
    import os

    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 0


def for_terminal(jobs: int = 1) -> LineProgress | TqdmProgress:
    """Bars on an interactive terminal with one job, counted lines otherwise (pipes, logs, parallel workers, and a
    terminal that reports no width, where tqdm would draw nothing)."""
    out = TqdmProgress() if sys.stderr.isatty() and jobs <= 1 and _terminal_columns() >= 40 else LineProgress()
    out.t0 = start_run_clock(PROCESS_T0)  # from the start, as the start-up status line did; workers inherit it
    return out


def tqdm_progress(position: int = 1, enabled: bool | None = None) -> Progress:
    """Kept for scripts: tqdm bars when stderr is a terminal (or ``enabled``), silence otherwise."""
    show = sys.stderr.isatty() if enabled is None else enabled
    return TqdmProgress(position) if show else null_progress
