"""``check_hyperparams``: what a compiled sweep would clamp, found on the host before anything is compiled.

Every factory of the library checks a *concrete* argument and raises ``ValueError`` naming it; a *traced* argument
cannot be checked, so it is clamped instead (a NaN ``peak_value`` becomes 0, and the schedule is 0 everywhere),
which keeps a compiled sweep alive but hides the mistake. ``check_hyperparams`` takes the values a sweep is about
to trace, as numbers, and runs the factory's own checks on each config, without tracing, jitting or evaluating
anything.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import re
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

# The clamps of traced arguments (``_validate.sanitize_*``; docs/guarantees.md), by what the check asks for.
_HUGE = 1e30
_MAX_EXPONENT = 1e4


def _is_exponent(name: str) -> bool:
    return "exponent" in name or name == "power"


def _clamp(name: str, value: float, message: str) -> float | None:
    """What the library's clamp makes of a traced ``value`` that the concrete check refused with ``message``, where
    the rule is known: values (``must be finite``), exponents and lengths (``>= 0``). None otherwise."""
    if ">= 0" in message and _is_exponent(name):  # exponents: NaN -> 1, negative -> 0, huge -> 1e4
        return 1.0 if math.isnan(value) else min(max(value, 0.0), _MAX_EXPONENT)
    if ">= 0" in message:  # lengths and non-negative factors: NaN -> 0, negative -> 0, +inf -> 1e30
        return 0.0 if math.isnan(value) else min(max(value, 0.0), _HUGE)
    if "must be finite" in message:  # values: NaN -> 0, +-inf -> +-1e30
        return 0.0 if math.isnan(value) else min(max(value, -_HUGE), _HUGE)
    return None


def _argument_named(message: str, names: list[str]) -> str | None:
    """The argument a library message is about: the one it starts with, else the first one it mentions."""
    for name in sorted(names, key=len, reverse=True):
        if re.match(rf"{re.escape(name)}\b", message):
            return name
    mentioned = [(m.start(), n) for n in names if (m := re.search(rf"\b{re.escape(n)}\b", message))]
    return min(mentioned)[1] if mentioned else None


def _on_the_host() -> contextlib.AbstractContextManager:
    """A JAX op a factory runs while it is built goes to the CPU (when JAX_PLATFORMS leaves one), not to an
    accelerator."""
    try:
        return jax.default_device(jax.local_devices(backend="cpu")[0])
    except RuntimeError:
        return contextlib.nullcontext()


_NOT_CHECKED = "; traced, it is not checked (how traced values are clamped: README, Guarantees)"


def _problems_of_one_config(factory: Callable, bound: inspect.BoundArguments) -> list[tuple[str | None, Any, str]]:
    """``(argument, value, what is wrong and what a trace would do)`` for each problem of one config.

    The factory is called with the config; when it refuses an argument that the library clamps by a known rule,
    the argument is replaced by its clamped value and the factory called again, to find the next problem. A
    refusal that names a replaced argument ends the search: it is about the replacement, not about the config
    (when it is the replaced argument itself, its clamp is more than the rule, and the message says so)."""
    problems: list[tuple[str | None, Any, str]] = []
    replaced: dict[str, int] = {}  # argument -> index of its problem
    parameters = bound.signature.parameters
    names = [n for n, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for _ in range(len(names) + 1):
        try:
            with _on_the_host():
                factory(*bound.args, **bound.kwargs)
            return problems
        except (TypeError, ValueError) as e:
            message = str(e)
        name = _argument_named(message, names)
        if name in replaced:
            first, value, reason = problems[replaced[name]]
            problems[replaced[name]] = (first, value, reason[: reason.rindex("; traced")] + _NOT_CHECKED)
            return problems
        if any(re.search(rf"\b{re.escape(n)}\b", message) for n in replaced):
            return problems
        if name is None:
            return [*problems, (None, None, message)]
        value = bound.arguments.get(name, parameters[name].default)  # not given: its default
        reason = message[len(name) + 1 :] if message.startswith(f"{name} ") else message
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        clamped = _clamp(name, float(value), message) if is_number else None
        if clamped is not None:
            reason += f"; traced, it would be clamped to {clamped:g}"
        elif is_number:
            reason += _NOT_CHECKED
        problems.append((name, value, reason))
        if clamped is None:
            return problems
        bound.arguments[name] = clamped
        replaced[name] = len(problems) - 1
    return problems


def _per_config(name: str, value: Any) -> np.ndarray | None:
    """The per-config values of an argument given as a 1-D array; None for anything else (passed as it is)."""
    if isinstance(value, jax.core.Tracer):
        raise TypeError(f"check_hyperparams: {name} is traced; give it the concrete values the sweep will trace")
    if not isinstance(value, np.ndarray | jax.Array):
        return None
    array = np.asarray(value)
    if array.ndim > 1:
        raise ValueError(f"check_hyperparams: {name} must be a number or a 1-D array of per-config values, got an "
                         f"array of shape {array.shape}")
    return array if array.ndim == 1 else None


def check_hyperparams(factory: Callable, /, *args: Any, **kwargs: Any) -> list[str]:
    """The problems a compiled sweep would hide: each config's arguments checked as if they were concrete.

    A concrete bad hyperparameter raises ``ValueError`` naming it, but a traced one (under ``jit`` / ``vmap``,
    which is how a sweep trains every config at once) cannot be checked: it is clamped so the output stays finite
    (NaN -> 0, ±inf -> ±1e30, a negative length -> 0; docs/guarantees.md). A NaN ``peak_value`` then trains at a
    learning rate of 0, silently. Call this on the host before compiling: it takes the factory's arguments with
    per-config values as 1-D arrays (as a sweep has them) and runs the factory's own concrete checks on every
    config: nothing is traced, jitted or evaluated, and no accelerator is used. The few JAX operations some factories
    run while they are built (``with_warmup`` evaluates the schedule it is given at count 0; ``radam_warmup``
    converts its constants) run on the host CPU, once per distinct config.

    Args:
      factory: a public schedule or transformation factory of ``optax_warmup`` (any callable works; one that
        checks nothing reports nothing).
      *args: its arguments. A 1-D NumPy or JAX array holds one value per config; numbers, strings, lists (e.g.
        ``boundaries``), schedules and every other value are the same for all configs.
      **kwargs: likewise.

    Returns:
      One message per problem, ``"peak_value[3] = nan: must be finite, got nan; traced, it would be clamped to
      0"``: the argument, the config index (none for an argument that is the same for all configs), the value,
      the factory's own message and what the clamp will do with it. Empty when every config is valid.

    Raises:
      TypeError: the arguments do not fit the factory's signature, or one is traced.
      ValueError: per-config arrays of different lengths, or of more than one dimension.

    Example:
      >>> import numpy as np, optax_warmup as ow
      >>> problems = ow.check_hyperparams(
      ...     ow.warmup_cosine_decay_schedule, 0.0, np.array([1e-3, np.nan, 3e-3]),
      ...     warmup_steps=np.array([100, 100, -5]), decay_steps=1000)
      >>> for problem in problems:
      ...     print(problem)
      peak_value[1] = nan: must be finite, got nan; traced, it would be clamped to 0
      warmup_steps[2] = -5: must be a finite number >= 0, got -5; traced, it would be ...
    """
    try:
        bound = inspect.signature(factory).bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"check_hyperparams: {getattr(factory, '__name__', factory)}: {e}") from None
    arrays = {name: a for name, value in bound.arguments.items() if (a := _per_config(name, value)) is not None}
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"check_hyperparams: per-config arrays of different lengths: {lengths}")
    n = next(iter(lengths.values()), 1)
    cache: dict[tuple, list] = {}
    entries = []  # (config, argument, value, reason)
    for i in range(n):
        config = inspect.BoundArguments(bound.signature, dict(bound.arguments))
        for name, a in arrays.items():
            config.arguments[name] = a[i].item() if isinstance(a[i], np.generic) else a[i]  # object arrays too
        key = tuple(config.arguments[name] for name in arrays)
        if key not in cache:
            cache[key] = _problems_of_one_config(factory, config)
        entries += [(i, *problem) for problem in cache[key]]
    # A problem of every config that no per-config value is part of is reported once, without an index.
    configs_with: dict[tuple, set] = {}
    for i, name, value, reason in entries:
        configs_with.setdefault((name, repr(value), reason), set()).add(i)
    found: dict[str, None] = {}  # ordered, without repeats
    for i, name, value, reason in entries:
        shared = name is not None and name not in arrays and len(configs_with[name, repr(value), reason]) == n
        index = "" if shared or not arrays else f"[{i}]"
        shown = "" if name is None else f" = {value!r}"
        found[f"{name or 'config'}{index}{shown}: {reason}"] = None
    return list(found)
