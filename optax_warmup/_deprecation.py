"""The old spelling of renamed arguments, accepted for one release with a ``DeprecationWarning``.

0.1 chose a warmup shape with ``shape=`` / ``exponent=`` in ``warmup_schedule``, ``warmup_factor``,
``scale_by_warmup``, ``batch_size_warmup``, ``adaptive_warmup`` and the untuned warmups, and with a positional
``warmup_shape`` in ``with_warmup`` / ``warmup_overlay``; everywhere else it was ``warmup_shape=`` /
``warmup_exponent=``, keyword-only. Now it is that everywhere. Calls in the old form still work (the warning says
what to write instead); they stop working in the next release.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R")

RENAMED = {"shape": "warmup_shape", "exponent": "warmup_exponent"}


def old_warmup_spelling(*old_order: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Accepts ``shape=`` / ``exponent=`` and the old positional layout ``old_order`` (old parameter names).

    A call is read in the old layout when it passes more positional arguments than the new signature takes, or a
    string where the old layout had the shape.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        params = inspect.signature(fn).parameters.values()
        positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            old_layout = len(args) > len(positional) or any(
                name == "shape" and i < len(args) and isinstance(args[i], str) for i, name in enumerate(old_order)
            )
            if old_layout:
                named = dict(zip(old_order, args, strict=False))
                twice = sorted(set(named) & set(kwargs))
                if twice:
                    raise TypeError(f"{fn.__name__}() got multiple values for {twice}")
                kwargs = {**named, **kwargs}
                args = ()
                _warn(fn.__name__, "a warmup shape given by position")
            for old, new in RENAMED.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{fn.__name__}() got both {old}= (deprecated) and {new}=")
                    kwargs[new] = kwargs.pop(old)
                    if not old_layout:
                        _warn(fn.__name__, f"{old}=")
            return fn(*args, **kwargs)

        return cast(Callable[P, R], wrapper)

    return decorate


def _warn(name: str, what: str) -> None:
    warnings.warn(
        f"{name}: the old spelling ({what}) is deprecated; write warmup_shape= / warmup_exponent= (keyword-only). "
        "The old spelling will stop working in the next release.",
        DeprecationWarning,
        stacklevel=3,
    )
