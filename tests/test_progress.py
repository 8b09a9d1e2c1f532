"""Progress reporting: no silent phase in logs or on a terminal, and a rejected input still leaves one line."""

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.progress import LineProgress, StatusLine, TqdmProgress, note

REPO = Path(__file__).resolve().parents[1]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_line_progress_heartbeat_speaks_for_a_phase_until_it_ends():
    stream = io.StringIO()
    lines = LineProgress(every_s=0.2, stream=stream)
    note(lines, "sampling 10 images")
    time.sleep(0.8)
    assert "... sampling 10 images (" in stream.getvalue()  # the heartbeat named the running phase
    note(lines, "done", phase=None)
    time.sleep(0.3)  # a heartbeat already in flight may land
    settled = stream.getvalue()
    time.sleep(0.6)
    assert stream.getvalue() == settled  # an ended phase gets no more heartbeats


def test_worker_lines_count_from_the_runs_start_like_the_drivers(monkeypatch):
    """One clock: a worker process started by the run prints its cell's lines on the driver's clock, not from [00:00]
    (the driver marks the run's start in the environment its loky / Dask workers inherit)."""
    import json

    from bench import progress

    monkeypatch.setenv(progress.RUN_CLOCK_ENV, "0")  # recorded, so the mark for_terminal sets is undone afterwards
    monkeypatch.delenv(progress.RUN_CLOCK_ENV)
    monkeypatch.setattr(progress, "PROCESS_T0", time.monotonic() - 125)  # the run started 2 min 5 s ago
    driver = progress.for_terminal(jobs=2)  # counted lines: what `bench run --jobs 2` uses off a terminal
    assert isinstance(driver, LineProgress)
    stream = io.StringIO()
    driver.stream = stream
    note(driver, "cell facemask/gan/r30/s0", phase=None)
    worker = ("import io, json; from bench.progress import LineProgress, note; s = io.StringIO(); "
              "p = LineProgress('facemask/gan/r30/s0: ', stream=s); note(p, 'fit', phase=None); "
              "print(json.dumps(s.getvalue()))")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # what a worker started now inherits
    line = json.loads(subprocess.run([sys.executable, "-c", worker], env=env, capture_output=True, text=True,
                                     check=True, timeout=120).stdout)  # fmt: skip
    driver_clock, worker_clock = stream.getvalue()[:7], line[:7]
    assert driver_clock in ("[02:05]", "[02:06]")
    assert worker_clock >= driver_clock and worker_clock < "[04:00]"  # the same origin (the subprocess took seconds)
    fresh = LineProgress(stream=io.StringIO())  # in the driver too, a LineProgress made later keeps the run's clock
    note(fresh, "x", phase=None)
    assert fresh.stream.getvalue()[:7] >= driver_clock


def test_without_a_run_mark_lines_count_from_their_start(monkeypatch):
    from bench import progress

    monkeypatch.setenv(progress.RUN_CLOCK_ENV, "0")
    monkeypatch.delenv(progress.RUN_CLOCK_ENV)
    stream = io.StringIO()
    note(LineProgress(stream=stream), "scoring", phase=None)  # bench score: its own clock, from now
    assert stream.getvalue().startswith("[00:00] scoring")
    monkeypatch.setenv(progress.RUN_CLOCK_ENV, "not a time")
    assert abs(progress.run_clock_t0() - time.monotonic()) < 1


def test_status_line_is_silent_off_a_terminal():
    stream = io.StringIO()
    status = StatusLine(stream)
    with status.shown("planning"):
        pass
    assert stream.getvalue() == ""


def test_status_line_is_erased_when_its_block_ends_even_by_an_error():
    stream = FakeTerminal()
    status = StatusLine(stream)
    with pytest.raises(RuntimeError):
        with status.shown("planning the cells"):
            assert "planning the cells (0 s)" in stream.getvalue()
            raise RuntimeError("bad input")
    assert stream.getvalue().endswith("\r\x1b[K")  # erased: the error line that follows stands alone
    status.stop()
    assert stream.getvalue().count("\r\x1b[K") == 2  # one draw, one erase: stopping twice writes nothing more


def test_tqdm_notes_open_an_elapsed_bar_that_a_counted_bar_or_the_next_note_closes():
    reporter = TqdmProgress()
    note(reporter, "sampling 10 images")
    phase = reporter._phase_bar
    assert phase is not None and "sampling 10 images" in phase.desc
    with reporter(total=2, desc="vqvae prior") as bar:
        assert reporter._phase_bar is None and phase.disable  # closed: the counted bar speaks now
        bar.update(2)
    note(reporter, "writing the report")
    assert reporter._phase_bar is not None
    note(reporter, "report written", phase=None)
    assert reporter._phase_bar is None
    note(reporter, "detector table")
    reporter.close()  # what `bench run` does when it ends, also with an error
    assert reporter._phase_bar is None


def _screen(raw: str) -> list[str]:
    """The non-empty lines a terminal shows for ``raw``: within a line, a carriage return (with or without
    erase-to-end) restarts the line."""
    shown = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        visible = line.rsplit("\r", 1)[-1].replace("\x1b[K", "")
        if visible.strip():
            shown.append(visible)
    return shown


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_bench_on_a_terminal_shows_start_up_status_then_leaves_only_the_error_line(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    launcher = "import sys; sys.argv[0] = 'bench'; from bench.launch import entry; entry()"
    proc = subprocess.Popen([sys.executable, "-c", launcher, "run", "--profile", "smoke", "--ratios", "140",
                             "--out", str(tmp_path / "out")],
                            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=tmp_path)  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 2
    raw = b"".join(chunks).decode("utf-8", "replace")
    assert "starting: importing torch" in raw  # the status line was up while nothing else could be printed
    screen = _screen(raw)
    assert len(screen) == 1 and screen[0].startswith("error: ") and "140" in screen[0], screen
    assert not (tmp_path / "out").exists()
