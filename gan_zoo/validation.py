"""Every rule about an input lives in one place: the signature of what consumes it.

- gan_zoo's constructors and entry points declare each argument's type and bounds in their
  signature (``n_critic: PositiveInt``) and are wrapped by :func:`validated`, pydantic's
  ``validate_call``. A bad value raises :class:`~gan_zoo.errors.ConfigValueError` naming the
  argument, the value and what is valid, for Python users and the CLIs alike; ``train.py`` adds the
  config key's prefix (``model.n_critic=0 is invalid: expected an integer >= 1``).
- Third-party targets of a config (Lightning's ``Trainer`` and callbacks, loggers, torch
  optimizers) keep their own range checks. :func:`check_arguments` only checks the names and
  types of their arguments against their signature before they are called, so a misspelt key or a
  string for an integer fails in one line instead of deep inside them.
- Rules that compare several values (a batch no larger than the dataset) are checked where those
  values meet, with the same error type.
"""

from __future__ import annotations

import collections.abc
import difflib
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, TypeVar, Union

import annotated_types as at
from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import (
    ConfigDict,
    PydanticSchemaGenerationError,
    Strict,
    TypeAdapter,
    ValidationError,
)
from pydantic import validate_call as _validate_call

from gan_zoo.errors import ConfigValueError

F = TypeVar("F", bound=Callable[..., Any])

# Strict: YAML's `true` is not the integer 1, the string "0.5" not a number, 2.0 not an int.
PositiveInt = Annotated[int, Strict(), at.Ge(1)]
NonNegativeInt = Annotated[int, Strict(), at.Ge(0)]
PositiveFloat = Annotated[float, Strict(), at.Gt(0)]
NonNegativeFloat = Annotated[float, Strict(), at.Ge(0)]
Fraction = Annotated[float, Strict(), at.Ge(0), at.Le(1)]
Seed = Annotated[int, Strict(), at.Ge(0), at.Le(2**32 - 1)]
StrictBool = Annotated[bool, Strict()]

_CONFIG = ConfigDict(arbitrary_types_allowed=True, strict=True)


class Expect(str):
    """``Annotated`` metadata: what an error message says a valid value is, instead of the type.

    >>> describe(Annotated[int | None, Expect("a module; pick one with augment=NAME")])
    'a module; pick one with augment=NAME'
    """


def validated(function: F) -> F:
    """``function`` (or ``__init__``) with every argument checked against its annotation.

    A violation raises one :class:`ConfigValueError` for the first bad argument: its name, the
    value given and :func:`describe` of the annotation. An unknown keyword names the valid ones.

    >>> @validated
    ... def f(n: PositiveInt = 1) -> int:
    ...     return n
    >>> f(n=0)
    Traceback (most recent call last):
    ...
    gan_zoo.errors.ConfigValueError: n=0 is invalid: expected an integer >= 1
    """
    checked = _validate_call(config=_CONFIG)(function)
    signature = inspect.signature(function, eval_str=True)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # hydra.utils.instantiate without _convert_ hands lists and dicts over as OmegaConf nodes.
        args = tuple(_plain(a) for a in args)
        kwargs = {k: _plain(v) for k, v in kwargs.items()}
        try:
            return checked(*args, **kwargs)
        except ValidationError as err:
            raise _one_line(err, signature, function, args, kwargs) from None

    return wrapper  # type: ignore[return-value]


def _plain(value: Any) -> Any:
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _one_line(
    err: ValidationError,
    signature: inspect.Signature,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> ConfigValueError:
    errors = err.errors(include_url=False)
    # A misspelt keyword also leaves its argument missing: name the misspelling.
    unknown = [e for e in errors if e["type"] == "unexpected_keyword_argument"]
    first = (unknown or errors)[0]
    params = signature.parameters
    where = first["loc"][0] if first["loc"] else "arguments"
    # A positional argument is located by its index.
    name = list(params)[where] if isinstance(where, int) and where < len(params) else str(where)
    if first["type"] == "unexpected_keyword_argument" or name not in params:
        if "self" in params and args:  # a constructor: every __init__ up the class chain counts
            owner, known = type(args[0]).__name__, _class_parameters(type(args[0]))
        else:
            owner, known = _owner(function), dict(params)
        valid = f"an argument of {owner} ({known_names(name, known)})"
        return ConfigValueError(name, first.get("input"), valid)
    try:
        value = signature.bind_partial(*args, **kwargs).arguments.get(name, first.get("input"))
    except TypeError:
        value = first.get("input")
    if first["type"] == "missing_argument":
        return ConfigValueError(name, None, f"a value: {_owner(function)} requires it")
    return ConfigValueError(name, value, describe(params[name].annotation))


def _class_parameters(cls: type) -> dict[str, Any]:
    """Keyword parameters of ``cls.__init__`` and of its bases' while each passes ``**kwargs``."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters
        found.update(
            {
                k: p
                for k, p in parameters.items()
                if p.kind is p.POSITIONAL_OR_KEYWORD or p.kind is p.KEYWORD_ONLY
            }
        )
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    return found


def _owner(function: Callable[..., Any]) -> str:
    qualname = getattr(function, "__qualname__", str(function))
    return qualname.removesuffix(".__init__")


def known_names(name: str, params: Mapping[str, Any]) -> str:
    """The closest known name to a misspelt ``name`` ("did you mean ...?"), else them all."""
    names = [p for p in params if p not in ("self", "args", "kwargs")]
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(names)


def describe(annotation: Any) -> str:
    """What a value of ``annotation`` looks like, in words, for an error message.

    >>> describe(PositiveInt | None)
    'an integer >= 1, or null'
    >>> describe(Literal["batch", "none"])
    "one of 'batch', 'none'"
    """
    arms = union_arms(annotation)
    nullable = any(a is type(None) for a in arms)
    words = " or ".join(_describe_one(a) for a in arms if a is not type(None))
    return f"{words}, or null" if nullable else words


def union_arms(annotation: Any) -> list[Any]:
    """The arms of a (nested) union annotation, flattened; ``[annotation]`` if not a union."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [arm for a in typing.get_args(annotation) for arm in union_arms(a)]
    return [annotation]


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_PLURAL = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
_BOUND_WORDS = {at.Ge: (">=", "ge"), at.Gt: (">", "gt"), at.Le: ("<=", "le"), at.Lt: ("<", "lt")}


def _describe_one(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        base, *metadata = args
        words = [m for m in metadata if isinstance(m, Expect)]
        if words:
            return str(words[0])
        if any(isinstance(m, at.MinLen) for m in metadata):
            least = next(m.min_length for m in metadata if isinstance(m, at.MinLen))
            return f"{_describe_one(base)} with at least {least} item(s)"
        bounds = [
            f"{symbol} {getattr(m, attr)}"
            for m in metadata
            for kind, (symbol, attr) in _BOUND_WORDS.items()
            if isinstance(m, kind)
        ]
        return " and ".join([_describe_one(base), *bounds]).replace(" and ", " ", 1)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if annotation in _TYPE_WORDS:
        return _TYPE_WORDS[annotation]
    if origin in (list, tuple) or annotation in (list, tuple):
        return f"a list of {_PLURAL.get(args[0], 'items')}" if args else "a list"
    if origin in (dict, Mapping) or annotation is dict:
        return "a mapping"
    if origin is collections.abc.Callable or annotation is Callable:
        return "a callable"
    return f"a {getattr(annotation, '__name__', str(annotation))}"


# ------------------------------------------------------------------------ third-party targets
def check_arguments(target: Callable[..., Any], arguments: Mapping[str, Any], prefix: str) -> None:
    """Refuse arguments that ``target``'s signature does not take, or whose type it does not.

    For constructors gan_zoo does not own. Types are judged by the annotation (strictly, so YAML
    ``"abc"`` is no integer); annotations pydantic cannot judge are skipped. Values in range are the
    target's own business.
    """
    params = _parameters(target)
    if params is None:
        return
    hints = _hints(target)
    for name, value in arguments.items():
        if name.startswith("_") and name.endswith("_"):  # Hydra's _target_, _partial_, ...
            continue
        key = f"{prefix}.{name}"
        if name not in params:
            raise ConfigValueError(
                key, value, f"an argument of {_owner(target)} ({known_names(name, params)})"
            )
        annotation = hints.get(name, params[name].annotation)
        if annotation is inspect.Parameter.empty or value is None:
            continue
        if not _fits(annotation, value):
            raise ConfigValueError(key, value, describe(annotation))


def _parameters(target: Callable[..., Any]) -> dict[str, inspect.Parameter] | None:
    """Named parameters of ``target`` (a class: its ``__init__``); None if it takes ``**kwargs``."""
    function = target.__init__ if isinstance(target, type) else target  # type: ignore[misc]
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return None
    return {name: p for name, p in parameters.items() if name != "self"}


def _hints(target: Callable[..., Any]) -> dict[str, Any]:
    function = target.__init__ if isinstance(target, type) else target  # type: ignore[misc]
    try:
        return typing.get_type_hints(function)
    except Exception:  # unresolvable forward references: judge names only
        return {}


@functools.lru_cache(maxsize=256)
def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    try:
        return TypeAdapter(annotation, config=_CONFIG)
    except (PydanticSchemaGenerationError, TypeError, NameError):
        return None


def _fits(annotation: Any, value: Any) -> bool:
    try:
        adapter = _adapter(annotation)
    except TypeError:  # unhashable annotation
        return True
    if adapter is None:
        return True
    try:
        adapter.validate_python(value)
    except ValidationError as err:
        # Only type mismatches count: a schema that cannot judge this value is not a verdict.
        return not any(e["type"].endswith(("_type", "literal_error")) for e in err.errors())
    except Exception:
        return True
    return True
