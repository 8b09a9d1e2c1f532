"""Progress reporting: a factory ``progress(total, desc)`` returning a context-managed bar.

Models call ``with progress(total=epochs, desc="rvqvae train") as bar: bar.update(1); bar.set_postfix(...)``.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Bar(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> Any: ...
    def __enter__(self) -> "Bar": ...
    def __exit__(self, *exc: Any) -> Any: ...


class Progress(Protocol):
    def __call__(self, total: int, desc: str) -> Bar: ...


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> "_NullBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def null_progress(total: int, desc: str) -> Bar:
    return _NullBar()


def tqdm_progress(position: int = 1, enabled: bool | None = None) -> Progress:
    """tqdm bars on stderr (nested under the grid bar at ``position``); disabled when stderr is no terminal."""
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled

    def make(total: int, desc: str) -> Bar:
        return tqdm(total=total, desc=desc, position=position, leave=False, disable=not show, dynamic_ncols=True)

    return make
