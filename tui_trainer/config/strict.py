"""Provides strict conversion of TOML tables into typed, frozen dataclasses.

Used by config.py: every key must be a field, every value must fit the field's type
(int, float, str, bool, Literal, unions, tuples, dicts, nested dataclasses), and each
error is one line naming the source, the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

__all__ = ["ConfigError", "build", "hints", "plain", "suggest", "toml_string", "toml_value"]


class ConfigError(ValueError):
    """A preset or an override is invalid; the message is one line, fit for a user (a
    newline or other control character from the input is shown escaped)."""

    def __init__(self, message: str = "") -> None:
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


def toml_string(s: str) -> str:
    """A TOML basic string of any text: characters outside the BMP as themselves (a JSON
    surrogate pair escape is not TOML), control characters escaped."""
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            return "nan" if v != v else ("inf" if v > 0 else "-inf")
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


_HINTS: dict[type, dict[str, Any]] = {}


def hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin is tuple:
        return "an array"
    if origin is dict:
        return "a table"
    return {
        int: "an integer",
        float: "a finite number",
        str: "a string",
        bool: "true or false",
    }.get(tp, getattr(tp, "__name__", str(tp)))


_MISSING = object()


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Return value converted to tp, or _MISSING when it does not fit."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        return value if value in get_args(tp) and type(value) is not bool else _MISSING
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            out = _coerce(arg, value, key)
            if out is not _MISSING:
                return out
        return _MISSING
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _MISSING
        args = get_args(tp)
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            return _MISSING
        out = [_coerce(t, v, key) for t, v in zip(item_types, value, strict=False)]
        return _MISSING if any(o is _MISSING for o in out) else tuple(out)
    if origin is dict:
        return dict(value) if isinstance(value, dict) else _MISSING
    if tp is bool:
        return value if isinstance(value, bool) else _MISSING
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISSING
    if tp is float:  # nan and inf are never a setting: refused at every key
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        return _MISSING
    if tp is str:
        return value if isinstance(value, str) else _MISSING
    return _MISSING


def build(cls: Any, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'top level'}: expected a table")
    names = {f.name for f in dataclasses.fields(cls)}
    for k in raw:
        if k not in names:
            raise ConfigError(
                f"{source}: {prefix}{k}: unknown key; expected one of "
                f"{', '.join(sorted(names))}{suggest(k, names)}"
            )
    kwargs = {}
    for name, tp in hints(cls).items():
        if name not in raw:
            continue
        key = prefix + name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build(tp, raw[name], key + ".", source)
            continue
        value = _coerce(tp, raw[name], key)
        if value is _MISSING:
            raise ConfigError(f"{source}: {key}: expected {_describe(tp)}, got {raw[name]!r}")
        kwargs[name] = value
    return cls(**kwargs)
