"""Typed settings: one set of rules for every dataclass a user can override (profile fields, model configs,
dataset settings, corruption and detector parameters).

A value given on the command line or in TOML must have the type of the field's default (an int is accepted for a
float field), must be finite, and the dataclass's own ``__post_init__`` checks ranges. Every failure is a one-line
``BenchError`` naming the setting and an example of a good value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from bench.errors import BenchError


def coerce(key: str, current: Any, value: Any) -> Any:
    """``value`` converted to the type of ``current`` (the field's default), or a BenchError naming ``key``."""
    if isinstance(value, float) and not math.isfinite(value):
        raise BenchError(f"bad value for '{key}': {value!r} is not a finite number")
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(current, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(current, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(current, str):
        if isinstance(value, str):
            return value
    elif isinstance(current, dict):
        if isinstance(value, dict):
            return value
    elif isinstance(current, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return type(current)(value)
    else:
        return value
    raise BenchError(f"bad value for '{key}': {value!r} is not {_KIND.get(type(current), 'a ' + type(current).__name__)} "
                     f"(e.g. --set {key}={_example(current)})")  # fmt: skip


_KIND = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table", list: "a list"}


def _example(current: Any) -> str:
    return f'"{current}"' if isinstance(current, str) else repr(current)


def field_defaults(cls: type) -> dict[str, Any]:
    """Default value of every field of dataclass ``cls`` (fields without a default are left out)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return out


def build(cls: type, values: dict[str, Any], where: str, reference: dict[str, Any] | None = None) -> Any:
    """``cls(**values)`` with every value type-checked against ``reference`` (default: the field defaults).

    ``where`` is the settings prefix used in messages, e.g. ``models.rvqvae``.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise BenchError(f"unknown setting {where}.{unknown[0]}: {where} has {', '.join(names)}")
    reference = field_defaults(cls) if reference is None else reference
    typed = {k: coerce(f"{where}.{k}", reference.get(k), v) for k, v in values.items()}
    try:
        return cls(**typed)
    except (ValueError, TypeError) as e:  # a config's own range check, or a missing required field
        message = str(e)
        for head in ("bad setting ", "unknown setting "):  # a nested table's own message: put our prefix in front
            if message.startswith(head):
                raise BenchError(f"{head}{where}.{message[len(head) :]}") from None
        field = message.split(" ", 1)[0]
        if field in names:  # "epochs must be positive, got -1" -> "bad setting models.vqvae.epochs=-1: must be ..."
            value = typed.get(field, getattr(e, "value", None))
            rest = message.split(" ", 1)[1].split(", got ")[0]
            raise BenchError(
                f"bad setting {where}.{field}={_example(value) if field in typed else '(default)'}: {field} {rest}"
            ) from None
        raise BenchError(f"bad setting for {where}: {message}") from None


def require(condition: bool, message: str) -> None:
    """Raise ValueError(message) unless ``condition`` (for dataclass ``__post_init__`` range checks)."""
    if not condition:
        raise ValueError(message)


def require_positive(obj: Any, names: Iterable[str]) -> None:
    """Each named field of ``obj`` must be > 0 (``__post_init__`` helper)."""
    for n in names:
        value = getattr(obj, n)
        require(value > 0, f"{n} must be positive, got {value!r}")


def require_non_negative(obj: Any, names: Iterable[str]) -> None:
    for n in names:
        value = getattr(obj, n)
        require(value >= 0, f"{n} must be >= 0, got {value!r}")


def require_fraction(obj: Any, names: Iterable[str], *, closed: bool = True) -> None:
    """Each named field in [0, 1] (``closed``) or (0, 1)."""
    for n in names:
        v = getattr(obj, n)
        ok = 0.0 <= v <= 1.0 if closed else 0.0 < v < 1.0
        require(ok, f"{n} must be in {'[0, 1]' if closed else '(0, 1)'}, got {v!r}")


def require_choice(obj: Any, name: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    value = getattr(obj, name)
    require(value in choices, f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
