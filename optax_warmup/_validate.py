"""One place for argument checks and their error messages.

Rule of the library: a *concrete* hyperparameter (a Python number, a NumPy value or a concrete JAX array) is
checked eagerly and a bad value raises ``ValueError`` (``TypeError`` for a wrong type) naming the argument and the
value. A *traced* hyperparameter cannot be inspected, so the schedule clamps it instead (see ``sanitize_*``): the
output stays finite whatever a sweep feeds in.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optax_warmup._numeric import float_dtype

# Traced lengths are clamped to [0, _MAX_LENGTH]; traced values to [-_MAX_VALUE, _MAX_VALUE]. Both are far beyond
# anything meaningful yet leave room for the arithmetic of the shapes (differences, products) to stay finite.
_MAX_LENGTH = 1e30
_MAX_VALUE = 1e30
_MAX_EXPONENT = 1e4


def is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def any_traced(*xs: Any) -> bool:
    return any(is_traced(x) for x in xs)


def xp_for(*xs: Any):
    """NumPy when every argument is concrete (so constants fold at construction time), else ``jax.numpy``."""
    return jnp if any_traced(*xs) else np


def _check_type(name: str, x: Any) -> None:
    if isinstance(x, bool | np.bool_):
        raise TypeError(f"{name} must be a number, got the bool {x!r}")
    if isinstance(x, numbers.Complex) and not isinstance(x, numbers.Real):
        # Also NumPy complex scalars (np.complex64 is not a Python complex): float() would drop the imaginary part.
        raise TypeError(f"{name} must be real, got {x!r}")
    if isinstance(x, numbers.Number):
        return
    if isinstance(x, np.ndarray | np.generic | jax.Array):
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == jnp.bfloat16):
            raise TypeError(f"{name} must be a number, got an array of dtype {x.dtype}")
        if np.issubdtype(x.dtype, np.complexfloating):
            raise TypeError(f"{name} must be real, got an array of dtype {x.dtype}")
        if x.ndim != 0:
            raise ValueError(f"{name} must be a scalar, got an array of shape {x.shape}")
        return
    raise TypeError(f"{name} must be a number or a scalar JAX array, got {type(x).__name__} {x!r}")


def concrete(name: str, x: Any) -> float | None:
    """Checks the type and shape of ``x``; returns its value as a float when concrete, else ``None``."""
    _check_type(name, x)
    if is_traced(x):
        return None
    if isinstance(x, complex):
        raise TypeError(f"{name} must be real, got {x!r}")
    return float(np.asarray(x, dtype=np.float64))


def check_finite(name: str, x: Any) -> None:
    v = concrete(name, x)
    if v is not None and not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {x!r}")


def check_nonnegative(name: str, x: Any) -> None:
    v = concrete(name, x)
    if v is not None and not (np.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {x!r}")


def check_positive(name: str, x: Any) -> None:
    v = concrete(name, x)
    if v is not None and not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")


def check_at_least(name: str, x: Any, other_name: str, other: Any, *, strict: bool = False) -> None:
    """``x >= other`` (``x > other`` when ``strict``) when both are concrete."""
    a, b = concrete(name, x), concrete(other_name, other)  # type and shape errors name the right argument
    if a is None or b is None:
        return
    if (a <= b) if strict else (a < b):
        rel = ">" if strict else ">="
        raise ValueError(f"{name} must be {rel} {other_name} ({other!r}), got {x!r}")


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {sorted(choices)}, got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_int(name: str, value: Any, *, minimum: int = 0) -> int:
    """A structural integer (a loop bound, a window length): must be a concrete Python/NumPy integer."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a Python int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


# --- clamping of values that may be traced ---------------------------------------------------------------------


def sanitize_length(xp, x):
    """NaN -> 0, negative -> 0, +inf -> a huge finite length."""
    x = xp.asarray(x, dtype=float_dtype())
    return xp.clip(xp.nan_to_num(x, nan=0.0, posinf=_MAX_LENGTH), 0.0, _MAX_LENGTH)


def sanitize_value(xp, x):
    """NaN -> 0, +-inf and anything beyond +-1e30 -> +-1e30."""
    x = xp.asarray(x, dtype=float_dtype())
    return xp.clip(xp.nan_to_num(x, nan=0.0, posinf=_MAX_VALUE, neginf=-_MAX_VALUE), -_MAX_VALUE, _MAX_VALUE)


def sanitize_exponent(xp, x):
    """NaN -> 1, negative -> 0, huge -> 1e4."""
    x = xp.asarray(x, dtype=float_dtype())
    return xp.clip(xp.nan_to_num(x, nan=1.0, posinf=_MAX_EXPONENT), 0.0, _MAX_EXPONENT)


def clamp_length(x: Any) -> Any:
    """One length argument clamped (``sanitize_length``): a NumPy scalar when concrete, else a traced one."""
    return sanitize_length(xp_for(x), x)


def clamp_value(x: Any) -> Any:
    """One value argument clamped (``sanitize_value``): a NumPy scalar when concrete, else a traced one."""
    return sanitize_value(xp_for(x), x)


def clamp_exponent(x: Any) -> Any:
    """One exponent argument clamped (``sanitize_exponent``): a NumPy scalar when concrete, else a traced one."""
    return sanitize_exponent(xp_for(x), x)


def as_count(count, clamp: bool = True) -> jax.Array:
    """A step count as a float array of the library dtype, negative counts clamped to 0 (when ``clamp``).

    Python ints go through ``float`` first so counts beyond 2**31 do not overflow int32.
    """
    if isinstance(count, bool) or count is None:
        raise TypeError(f"count must be a number or an array of numbers, got {count!r}")
    if isinstance(count, int):
        count = float(count)
    c = jnp.asarray(count)
    if not (jnp.issubdtype(c.dtype, jnp.integer) or jnp.issubdtype(c.dtype, jnp.floating)):
        raise TypeError(f"count must be real numbers, got an array of dtype {c.dtype}")
    c = c.astype(float_dtype())
    return jnp.maximum(c, 0.0) if clamp else c
