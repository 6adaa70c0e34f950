"""Small helpers shared by the peer modules: float conversion, guarded arithmetic, argument checks.

Every peer schedule follows the library rule (see ``optax_warmup._validate``): a concrete bad argument raises
``ValueError`` naming it; a traced argument is never inspected, and the arithmetic is guarded (``where``
around denominators, logs and powers) so that no traced input makes the output NaN.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

import jax
import jax.numpy as jnp
import numpy as np

from optax_warmup import _validate as V
from optax_warmup._phases import PhaseSchedule, from_function
from optax_warmup._shapes import safe_pow

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]
P = ParamSpec("P")

__all__ = [
    "Schedule",
    "as_count",
    "engine_schedule",
    "check_in_range",
    "concrete_value",
    "finite",
    "floor_div",
    "require",
    "safe_div",
    "safe_pow",
    "structural_list",
]

as_count = V.as_count


def engine_schedule(build: Callable[P, Schedule]) -> Callable[P, PhaseSchedule]:
    """A peer's ``<peer>_schedule`` returning the engine's object: its closed form as one function segment.

    The peer formula is kept as it is (it sees the count unchanged); as a ``PhaseSchedule`` it joins other
    schedules of the library (``join_schedules``, ``with_warmup``) like every other schedule.
    """

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> PhaseSchedule:
        return from_function(build(*args, **kwargs))

    wrapper.__signature__ = inspect.signature(build).replace(return_annotation="PhaseSchedule")  # type: ignore[attr-defined]
    return wrapper


def finite(x) -> jax.Array:
    """A hyperparameter as a float array of the library dtype, NaN/inf clamped (see ``sanitize_value``)."""
    return V.sanitize_value(jnp, x)


def safe_div(num, den):
    """``num / den`` with a zero denominator replaced by 1 (callers select another branch there)."""
    den = jnp.asarray(den)
    return num / jnp.where(den == 0, 1.0, den)


def floor_div(a, b):
    """``floor(a / b)`` for ``b > 0`` that is exact whenever ``a`` and ``b`` are integers.

    XLA may evaluate ``a / b`` as ``a * (1 / b)``, which can put an exact multiple a hair below or above the
    integer; one correction step in each direction settles it, so cycle and step boundaries land where the
    peers (which count in Python integers) put them.
    """
    q = jnp.floor(a / b)
    q = jnp.where(q * b > a, q - 1.0, q)
    return jnp.where((q + 1.0) * b <= a, q + 1.0, q)


def concrete_value(name: str, x: Any) -> float | None:
    """The value of ``x`` as a Python float when it is concrete, ``None`` when traced (type is checked)."""
    return V.concrete(name, x)


def require(name: str, value: Any, what: str) -> None:
    if value is None:
        raise ValueError(f"{what} requires `{name}`, please provide that argument")


def check_in_range(
    name: str, x: Any, low: float | None, high: float | None, *, low_open=False, high_open=False
):
    """Concrete ``x`` must lie in the interval; the bracket style follows ``low_open`` / ``high_open``."""
    v = V.concrete(name, x)
    if v is None:
        return
    bad = not np.isfinite(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise ValueError(f"{name} must be in {interval}, got {x!r}")


def structural_list(name: str, values: Any) -> Sequence[Any] | np.ndarray | jax.Array:
    """A list of milestones or boundaries: a Python sequence, or a 1-D array (which may be traced)."""
    if isinstance(values, str) or values is None:
        raise TypeError(f"{name} must be a list of numbers, got {values!r}")
    if isinstance(values, np.ndarray | jax.Array):
        if values.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
        return values
    values = list(values)
    for i, v in enumerate(values):
        V.check_finite(f"{name}[{i}]", v)
    return values
