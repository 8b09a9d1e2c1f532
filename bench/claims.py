"""Claims: one process at a time computes a cell, even when several ``bench run`` share one ``--out``.

Before a worker (a loky or Dask worker, or the driver itself with one job) starts a cell, it takes the cell's claim:
a file ``claim.json`` in the cell folder, made visible in one atomic step (a hard link of a complete file, or
``O_CREAT | O_EXCL`` where the filesystem has no hard links), holding the bench run it works for (a token, the
driver's host and pid), its own host and pid and the time. The file is removed when the cell ends (finished or
failed). While the cell runs, a heartbeat refreshes the file's modification time.

A claim found in place blocks another run unless it is *stale*:

- it belongs to the same bench run (that run's scheduler only sends a cell again when the worker that had it died);
- its holder ran on this host and that pid is gone;
- its heartbeat stopped: the file was not touched for ``STALE_S`` seconds (a holder on another host that died, or a
  hung one). Hosts sharing ``--out`` need clocks in step (NTP) for this rule.

A stale claim is taken over (renamed away and checked to be the one judged stale, then claimed anew); a live one
makes the caller return :class:`Busy`, and the driver waits for that cell's ``done.json`` instead of computing it.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.store import ResultsStore

CLAIM_NAME = ResultsStore.claim_file(Path(".")).name  # the store owns the name (ResultsStore.claim_file)
HEARTBEAT_S = 30.0
STALE_S = 300.0


def path(folder: str | Path) -> Path:
    return ResultsStore.claim_file(Path(folder))


@dataclass(frozen=True)
class Owner:
    """The bench run (driver process) on whose behalf its workers claim cells."""

    token: str
    host: str
    pid: int

    @classmethod
    def this_run(cls) -> Owner:
        return cls(uuid.uuid4().hex, socket.gethostname(), os.getpid())


@dataclass(frozen=True)
class Busy:
    """A cell another bench run is computing: who holds its claim."""

    folder: str
    holder: dict[str, Any]

    def line(self) -> str:
        h = self.holder
        driver = h.get("driver") or {}
        since = h.get("since", "?")
        by = f"pid {h.get('pid', '?')} on {h.get('host', '?')}"
        run = f"for the bench run pid {driver.get('pid', '?')} on {driver.get('host', '?')}" if driver else ""
        return f"claimed by {by} {run} since {since}".replace("  ", " ")


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, TypeError):
        return True  # exists but not ours, or unreadable: assume alive and let the heartbeat rule decide
    return True


def _read(target: Path) -> tuple[dict[str, Any] | None, os.stat_result | None]:
    """(content or None when unreadable, stat or None when absent)."""
    try:
        st = target.stat()
    except FileNotFoundError:
        return None, None
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, st
    return (data if isinstance(data, dict) else None), st


def _blocks(info: dict[str, Any] | None, st: os.stat_result, owner: Owner | None, stale_s: float) -> bool:
    """Whether a claim found in place keeps ``owner`` from computing the cell."""
    if time.time() - st.st_mtime >= stale_s:
        return False  # no heartbeat for too long
    if info is None:
        return True  # unreadable but fresh: treat as held
    if owner is not None and info.get("run") == owner.token:
        return False  # our own run's earlier attempt: its worker died and the scheduler sent the cell again
    if info.get("host") == socket.gethostname() and not _pid_alive(info.get("pid")):
        return False
    return True


def holder(folder: str | Path, owner: Owner | None = None, stale_s: float = STALE_S) -> Busy | None:
    """The live claim on the cell at ``folder`` that keeps ``owner`` from it, or None."""
    info, st = _read(path(folder))
    if st is None or not _blocks(info, st, owner, stale_s):
        return None
    return Busy(str(folder), info or {"host": "?", "pid": "?"})


class Claim:
    """A claim this process holds: ``release()`` (or leaving the ``with`` block) removes it; a heartbeat thread keeps
    it fresh meanwhile."""

    def __init__(self, target: Path, nonce: str, heartbeat_s: float = HEARTBEAT_S):
        self.path, self.nonce, self.heartbeat_s = target, nonce, heartbeat_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Claim:
        if self.heartbeat_s > 0:
            self._thread = threading.Thread(target=self._beat, daemon=True, name="bench-claim")
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            info, st = _read(self.path)
            if st is None or info is None or info.get("nonce") != self.nonce:
                return  # released or taken over
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        self._stop.set()
        info, _ = _read(self.path)
        if info is not None and info.get("nonce") == self.nonce:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def _publish(target: Path, content: dict[str, Any]) -> bool:
    """Make ``target`` hold ``content`` if no file is there, in one step; False if one is."""
    tmp = target.with_name(f"{target.name}.{content['nonce']}.tmp")
    tmp.write_text(json.dumps(content), encoding="utf-8")
    try:
        try:
            os.link(tmp, target)  # atomic and refused when target exists, NFS included
            return True
        except FileExistsError:
            return False
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
        try:  # a filesystem without hard links
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(content))
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale(target: Path, judged: dict[str, Any] | None, st: os.stat_result, nonce: str) -> None:
    """Move the stale claim away, unless what is there now is another claim than the one judged stale (then put
    that one back)."""
    aside = target.with_name(f"{target.name}.{nonce}.stale")
    try:
        os.rename(target, aside)
    except FileNotFoundError:
        return  # someone else moved it
    info, now = _read(aside)
    same = (
        now is not None
        and now.st_ino == st.st_ino
        and (judged is None or (info or {}).get("nonce") == judged.get("nonce"))
    )
    if not same:
        try:
            os.link(aside, target)  # a fresh claim taken meanwhile: restore it (refused if yet another exists)
        except OSError:
            pass
    aside.unlink(missing_ok=True)


def take(folder: str | Path, owner: Owner | None, stale_s: float = STALE_S,
         heartbeat_s: float = HEARTBEAT_S) -> Claim | Busy:  # fmt: skip
    """Claim the cell at ``folder`` for ``owner``'s run: a :class:`Claim` (use it as a context manager), or
    :class:`Busy` when another run holds a live claim."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = path(folder)
    owner = owner or Owner.this_run()
    for _ in range(20):
        nonce = uuid.uuid4().hex
        content = {"nonce": nonce, "run": owner.token, "driver": {"host": owner.host, "pid": owner.pid},
                   "host": socket.gethostname(), "pid": os.getpid(),
                   "since": time.strftime("%Y-%m-%d %H:%M:%S"), "time": time.time()}  # fmt: skip
        if _publish(target, content):
            return Claim(target, nonce, heartbeat_s)
        info, st = _read(target)
        if st is None:
            continue  # released meanwhile
        if _blocks(info, st, owner, stale_s):
            return Busy(str(folder), info or {"host": "?", "pid": "?"})
        _remove_stale(target, info, st, nonce)
    found = holder(folder, None, stale_s)
    return found or Busy(str(folder), {"host": "?", "pid": "?"})


__all__ = ["CLAIM_NAME", "Owner", "Busy", "Claim", "take", "holder", "path"]
