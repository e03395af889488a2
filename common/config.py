"""Typed configs from YAML: the one loader and the one builder behind params.yaml and every
`--set key=value` on a command line.

Each config is a plain dataclass owned by its package (detection.DetectorConfig, a translator's
Config, ...) that checks its own fields in `__post_init__` and raises ParamError naming the field.
`build` turns a YAML mapping into such a dataclass, checking every key and value against the
field's type, and prefixes the key path to any error, so a message reads
`translators.fda.beta: must be in (0, 0.5], got 2.0`.
"""

from __future__ import annotations

import dataclasses
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from common.errors import MissingInputError, UserError


class ParamError(UserError):
    """A bad param (params.yaml, `-S`, `--set`); the message names the key and what is allowed."""


class _Loader(yaml.SafeLoader):
    """SafeLoader + two YAML 1.2 behaviours users (and DVC's `-S`) rely on: `1e-4` is a float (in
    YAML 1.1, the default of PyYAML, it is text), and a key given twice in one mapping is an error
    naming both lines (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise ParamError(f"{self.name}: key {key!r} appears twice in one mapping "
                                 f"(lines {seen[key]} and {line}); keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 core schema floats in exponent form (1e-4, 1.5e3, .5E+3); YAML 1.1 only knows them
# with a dot and a signed exponent (1.0e-4)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error or duplicate key is a ParamError naming `source`."""
    loader = _Loader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        raise ParamError(f"{source} is not valid YAML: {' '.join(str(err).split())}") from None
    finally:
        loader.dispose()


def read_yaml_file(path: Path) -> Any:
    """Parse a YAML file; missing, unreadable, non-UTF-8 and malformed files are one-line errors."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingInputError(f"{path} not found") from None
    except OSError as err:
        raise ParamError(f"{path}: cannot be read ({err.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ParamError(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    return parse_yaml(text, str(path))


def parse_value(text: str, key: str) -> Any:
    """A `--set key=value` value, read exactly as the same text would be in params.yaml."""
    return parse_yaml(text, f"the value of {key}") if text.strip() else ""


def build(cls: type, raw: Any, key: str = "") -> Any:
    """Build dataclass `cls` from a mapping, checking every key and value against its fields;
    errors raised by the dataclass's own `__post_init__` get the key path prefixed."""
    where = key or "params.yaml"
    if not isinstance(raw, dict):
        raise ParamError(f"{where}: expected a mapping, got {raw!r}")
    hints = get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for name, value in raw.items():
        sub = f"{key}.{name}" if key else str(name)
        if name not in allowed:
            raise ParamError(f"{sub}: unknown key; allowed: {', '.join(allowed) or '(none)'}")
        kwargs[name] = coerce(hints[name], value, sub)
    try:
        return cls(**kwargs)
    except ParamError as err:
        raise ParamError(f"{key}.{err}" if key else str(err)) from None


def coerce(tp: Any, value: Any, key: str) -> Any:
    """`value` as type `tp` (dataclass, Literal, union, list, tuple, dict, bool, int, float, str,
    Path, Any), or a ParamError naming `key` and what is allowed."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        # an instance is already built (and checked); YAML itself never produces one
        return value if isinstance(value, tp) else build(tp, value, key)
    if origin is Literal:
        # same type too: YAML's `true` must not pass for a Literal 1
        if not any(a == value and type(a) is type(value) for a in get_args(tp)):
            allowed = ", ".join(str(a) for a in get_args(tp))
            raise ParamError(f"{key}: {value!r} is not allowed; choose one of {allowed}")
        return value
    if origin in (Union, types.UnionType):
        return _coerce_union(get_args(tp), value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ParamError(f"{key}: expected a list, got {value!r}")
        (item,) = get_args(tp)[:1] or (Any,)
        items = [coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamError(f"{key}: expected a mapping, got {value!r}")
        _, item = get_args(tp) or (str, Any)
        return {str(k): coerce(item, v, f"{key}.{k}") for k, v in value.items()}
    return _coerce_scalar(tp, value, key)


def _coerce_union(options: tuple, value: Any, key: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return coerce(option, value, key)
        except ParamError as err:
            errors.append(str(err))
    if len(errors) == 1:
        raise ParamError(errors[0])
    raise ParamError(f"{key}: {value!r} is not allowed")


def _coerce_scalar(tp: Any, value: Any, key: str) -> Any:
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"{key}: expected a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except OverflowError:
            raise ParamError(f"{key}: {value} is too large for a number") from None
    if tp is str:
        if not isinstance(value, str):
            raise ParamError(f"{key}: expected text, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise ParamError(f"{key}: expected a path, got {value!r}")
        return Path(value)
    raise ParamError(f"{key}: unsupported parameter type {tp!r} (a bug in the dataclass)")


# --- small checks for __post_init__ (messages name the field; `build` adds the section)


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
            maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ParamError(f"{name}: must be a whole number {allowed}, got {value!r}")


def check_range(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
                high_open: bool = False) -> None:
    """low <= value <= high, with either end open if asked; the message spells the interval."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        (low < value if low_open else low <= value)
        and (value < high if high_open else value <= high))
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ParamError(f"{name}: must be in {interval}, got {value!r}")
