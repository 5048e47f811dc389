"""Judging YAML values against Python type hints and constructor signatures.

Used by :mod:`gan_zoo.schemas`: ``matches`` says whether a config value fits a hint,
``describe`` words a hint (and its bounds) for an error message, and ``signature_hints`` reads
what a ``_target_`` accepts. Hints YAML cannot express (tensors, modules, callables) are not
judged.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

from gan_zoo.errors import ConfigValueError, check


def matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a type hint; hints YAML cannot express are not judged."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    if hint is type(None) or hint is None:
        return value is None
    if origin in (Union, types.UnionType):
        return any(matches(value, arm) for arm in args)
    if origin is Literal:
        return value in args and type(value) in {type(a) for a in args}
    if hint in (bool, int, float, str):
        return _scalar_matches(value, hint)
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        return isinstance(value, (list, tuple)) and _items_match(value, args)
    if origin is dict or hint is dict or dataclass_in(hint) is not None:
        return isinstance(value, Mapping)
    return True


def _scalar_matches(value: Any, hint: type) -> bool:
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _items_match(value: Sequence[Any], args: tuple[Any, ...]) -> bool:
    if not args:
        return True
    if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
        return all(matches(v, args[0]) for v in value)
    return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args))


def describe(hint: Any, meta: Mapping[str, Any] | None = None) -> str:
    """What a value of ``hint`` (within ``meta``'s bounds) looks like, for an error message."""
    meta = meta or {}
    if meta.get("valid"):
        return meta["valid"]
    arms = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    is_union = typing.get_origin(hint) in (Union, types.UnionType)
    text = " or ".join(_describe_type(a) for a in arms) if is_union else _describe_type(hint)
    bounds = {k: v for k, v in (meta.get("bounds") or {}).items() if v is not None}
    symbols = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    text += " and".join(f" {symbols[k]} {v}" for k, v in bounds.items())
    also = [repr(a) for a in meta.get("also", ())] + (["null"] if allows_none(hint) else [])
    return text + (f", or {' or '.join(also)}" if also else "")


def _describe_type(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if hint is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe_type(a) for a in args)
    if origin in (list, tuple, Sequence):
        return f"a list of ({_describe_type(args[0])})" if args else "a list"
    return "a mapping" if origin is dict or dataclass_in(hint) else getattr(hint, "__name__", "?")


def allows_none(hint: Any) -> bool:
    return hint is Any or (type(None) in typing.get_args(hint))


def dict_in(hint: Any) -> Any:
    """The ``dict[str, X]`` in ``hint`` (``dict[...]`` or ``dict[...] | None``), if any."""
    for arm in (hint, *typing.get_args(hint)):
        if typing.get_origin(arm) is dict:
            return arm
    return None


def dataclass_in(hint: Any) -> type | None:
    """The dataclass in ``hint`` (``X`` or ``X | None``), if any."""
    for arm in (hint, *typing.get_args(hint)):
        if isinstance(arm, type) and dataclasses.is_dataclass(arm):
            return arm
    return None


def locate(path: Any) -> Any:
    """The object a dotted ``path`` names (as Hydra's ``_target_``), or None; never calls it."""
    if not isinstance(path, str) or not path:
        return None
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            obj = getattr(obj, name, None)
        return obj
    return None


def signature_hints(node: Mapping[str, Any], prefix: str) -> dict[str, Any] | None:
    """``{argument: type hint}`` of the node's ``_target_``; None if it takes ``**kwargs``."""
    target = node["_target_"]
    obj = locate(target)
    if obj is None:
        raise ConfigValueError(f"{prefix}._target_", target, "an importable class or function")
    params: dict[str, Any] = {}
    if isinstance(obj, type):  # a class: its __init__, then its bases' while it passes **kwargs
        functions = [vars(c)["__init__"] for c in obj.__mro__ if "__init__" in vars(c)]
    else:
        functions = [obj]
    for function in functions:
        try:
            hints = typing.get_type_hints(function)
        except Exception:  # unresolvable annotations (forward references): judge names only
            hints = {}
        parameters = inspect.signature(function).parameters.values()
        for p in parameters:
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self":
                params.setdefault(p.name, hints.get(p.name, Any))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return params
    return None


def check_by_signature(signature: dict[str, Any] | None, name: str, value: Any, key: str) -> None:
    if signature is None:
        return
    if name not in signature:
        close = difflib.get_close_matches(name, signature, n=1)
        known = f"did you mean {close[0]!r}?" if close else ", ".join(sorted(signature))
        raise ConfigValueError(key, value, f"an argument of the _target_ ({known})")
    ok = value is None or matches(value, signature[name])
    check(ok, key, value, describe(signature[name]))
