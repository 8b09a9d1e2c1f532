import os
import stat

import pytest

from bench import atomic


def test_write_is_complete_or_absent_and_readable(tmp_path):
    path = tmp_path / "sub" / "f.json"
    atomic.write_json(path, {"a": 1})
    assert path.read_text().strip().startswith("{")
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode & stat.S_IRUSR and mode & stat.S_IRGRP == (0o644 & ~_umask()) & stat.S_IRGRP
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text().strip() == '{\n  "a": 1\n}'  # the old file is intact
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]  # no temp file left


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m
