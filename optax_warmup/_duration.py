"""Durations: the one rule that turns a length given in steps, a fraction, a percentage, epochs, examples or
tokens into a number of steps. ``optax_warmup.config``, the command line and the sweep engine all call it.

A duration is one of:

* a whole number: steps (``500``; ``1e4`` written as a float with no fractional part is 10,000 steps);
* a number in ``(0, 1)`` with a fractional part, or a string ``"5%"`` (``0%`` to ``100%``): a fraction of the
  total;
* a dict with one key: ``{"steps": n}``, ``{"fraction": f}`` (``f <= 1``), ``{"epochs": e}`` (times
  ``steps_per_epoch``), ``{"examples": n}`` (divided by ``batch_size``) or ``{"tokens": n}`` (divided by
  ``batch_size * seq_len``).

Everything that is not already whole steps rounds **up** (a partial batch is a step; 10% of 25 steps is 3), as
Hugging Face rounds ``warmup_ratio``. The product is rounded to 9 decimals first, so ``0.1 * 300`` (which is
``30.000000000000004`` in floating point) is 30 steps, not 31. A traced number is steps (or, in a dict, the unit
it names) and rounds up with ``jnp.ceil``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from optax_warmup import _validate as V

UNITS = ("steps", "fraction", "epochs", "examples", "tokens")


def _err(name: str, message: str) -> ValueError:
    return ValueError(f"{name}: {message}")


def round_up(x: Any) -> Any:
    """``ceil`` of a concrete number after rounding it to 9 decimals (an int), or ``jnp.ceil`` of a traced one."""
    return jnp.ceil(x) if V.is_traced(x) else math.ceil(round(float(x), 9))


def _number(name: str, value: Any, *, positive: bool = False) -> Any:
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) or isinstance(value, jax.Array)):
        raise _err(name, f"must be a number, got {value!r}")
    if V.is_traced(value):
        return value
    v = float(value)
    if not math.isfinite(v):
        raise _err(name, f"must be finite, got {value!r}")
    if positive and v <= 0:
        raise _err(name, f"must be > 0, got {value!r}")
    if v < 0:
        raise _err(name, f"must be >= 0, got {value!r}")
    return value


def parse_duration(text: str) -> int | float | str:
    """A duration typed on a command line -> the value ``duration_steps`` takes.

    ``"10%"`` stays a percentage string, ``"50"`` and ``"1e2"`` become ints (steps), ``"0.1"`` a float
    (a fraction). Raises ``ValueError`` for text that is not a number or a percentage.

    Example:
      >>> from optax_warmup._duration import parse_duration
      >>> [parse_duration(t) for t in ("0", "0.1", "25%", "50", "1e2")]
      [0, 0.1, '25%', 50, 100]
    """
    token = text.strip()
    try:
        if token.endswith("%"):
            float(token[:-1])
            return token
        value = float(token)
    except ValueError:
        raise ValueError(f"a duration is a number of steps, a fraction or a percentage, got {text!r}") from None
    return int(value) if math.isfinite(value) and value == int(value) else value


def unit_of(spec: Any) -> str:
    """The unit a duration is given in (``"steps"``, ``"fraction"``, ...), without converting it."""
    if isinstance(spec, str):
        return "fraction"
    if isinstance(spec, Mapping) and len(spec) == 1 and next(iter(spec)) in UNITS:
        return next(iter(spec))
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        v = float(spec)
        if math.isfinite(v) and 0 < v < 1 and v != int(v):
            return "fraction"
    return "steps"


def duration_steps(
    spec: Any,
    total: Any = None,
    *,
    name: str = "duration",
    units: Mapping[str, Any] | None = None,
    units_name: str = "units",
) -> Any:
    """A duration (see the module docstring) -> steps: a Python int when concrete, else a traced array.

    Args:
      spec: the duration.
      total: the length fractions and percentages refer to, in steps; ``None`` refuses them.
      name: how error messages name the duration, e.g. ``"config['warmup']['length']"`` or ``"--warmups"``.
      units: the sizes of the other units: ``steps_per_epoch`` (for epochs), ``batch_size`` (examples, tokens)
        and ``seq_len`` (tokens).
      units_name: how error messages name ``units``, e.g. ``"config"``.

    Raises:
      ValueError: ``"{name}: ..."`` for a negative, non-finite or non-whole number of steps, a fraction above 1,
        a fraction without a total, or an unknown unit; ``"{units_name}['batch_size']: ..."`` for a unit whose
        size is missing or not positive.

    Example:
      >>> from optax_warmup._duration import duration_steps
      >>> [duration_steps(d, 25) for d in (5, 0.1, "10%", {"fraction": 0.5}, 1e2)]
      [5, 3, 3, 13, 100]
      >>> duration_steps({"tokens": 1e6}, units={"batch_size": 8, "seq_len": 1000})
      125
    """
    if isinstance(spec, str):
        text = spec.strip()
        try:
            fraction = float(text[:-1]) / 100.0 if text.endswith("%") else None
        except ValueError:
            fraction = None
        if fraction is None:
            raise _err(name, f"a string duration must be a percentage like '5%', got {spec!r}")
        unit, value = "fraction", _number(name, fraction)
    elif isinstance(spec, Mapping):
        if len(spec) != 1 or next(iter(spec)) not in UNITS:
            raise _err(name, f"a duration dict has exactly one key among {list(UNITS)}, got {dict(spec)!r}")
        unit, value = next(iter(spec.items()))
        value = _number(f"{name}['{unit}']", value)
    else:
        unit, value = unit_of(spec), _number(name, spec)
    if unit == "steps":
        if V.is_traced(value):
            return value
        if float(value) != int(value):
            raise _err(name, f"must be a whole number of steps (or a fraction below 1), got {spec!r}")
        return int(value)
    if unit == "fraction":
        if total is None:
            raise _err(name, "a fraction needs a total length, and cannot describe the total itself")
        if not V.is_traced(value) and float(value) > 1:
            raise _err(name, f"a fraction must be <= 1 (100%), got {spec!r}")
        return round_up(value * total)
    size = lambda key: _unit_size(name, unit, key, (units or {}).get(key), units_name)  # noqa: E731
    if unit == "epochs":
        return round_up(value * size("steps_per_epoch"))
    if unit == "examples":
        return round_up(value / size("batch_size"))
    return round_up(value / (size("batch_size") * size("seq_len")))


def _unit_size(name: str, unit: str, key: str, size: Any, units_name: str) -> Any:
    if size is None:
        raise _err(f"{units_name}['{key}']", f"is required to convert {unit} at {name} into steps")
    return _number(f"{units_name}['{key}']", size, positive=True)
