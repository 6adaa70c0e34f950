"""Numeric helpers shared inside the package: dtypes, constant folding, field access, scaling a pytree.

Nothing here checks arguments (that is ``_validate``'s job) and nothing here is public API. The arithmetic
helpers fold Python numbers instead of emitting them into the compiled program: ``mul(x, 1.0)`` is ``x`` and
``add(0, x)`` is ``x``, so a schedule with concrete hyperparameters compiles to about as few operations as the
hand-written Optax formula.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# --- dtypes -------------------------------------------------------------------------------------------------------


def float_dtype() -> np.dtype:
    """The library's output dtype: float32, or float64 when ``jax_enable_x64`` is on."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def compute_dtype(dtype: Any) -> np.dtype:
    """The dtype a factor is applied in: float32 at least, so bf16 / float16 updates are not scaled in bf16."""
    return np.dtype(jnp.promote_types(dtype, jnp.float32))


def widen(tree: Any) -> Any:
    """Every leaf cast to ``compute_dtype`` (for norms accumulated in float32 at least)."""
    return jax.tree.map(lambda x: jnp.asarray(x).astype(compute_dtype(jnp.asarray(x).dtype)), tree)


def scale_tree(updates: Any, factor: jax.Array) -> Any:
    """``updates * factor``, each leaf multiplied in ``compute_dtype`` and cast back to its own dtype."""

    def scale(u: jax.Array) -> jax.Array:
        dtype = compute_dtype(u.dtype)
        return (u.astype(dtype) * factor.astype(dtype)).astype(u.dtype)

    return jax.tree.map(scale, updates)


# --- constant folding ----------------------------------------------------------------------------------------------


def is_const(x: Any) -> bool:
    """Whether ``x`` is a Python or NumPy scalar (folded at trace time), not an array or a tracer."""
    return isinstance(x, int | float | np.integer | np.floating)


def sub(a: Any, b: Any) -> Any:
    """``a - b``, with ``b == 0`` folded."""
    if is_const(b) and b == 0:
        return a
    return a - b


def add(a: Any, b: Any) -> Any:
    """``a + b``, with a zero on either side folded."""
    if is_const(a) and a == 0:
        return b
    if is_const(b) and b == 0:
        return a
    return a + b


def mul(a: Any, b: Any) -> Any:
    """``a * b``, with a factor 0 or 1 on either side folded."""
    if (is_const(a) and a == 0) or (is_const(b) and b == 0):
        # Keep the other factor's shape: 0 * (an array of counts) is an array of zeros, not the number 0.
        other = b if is_const(a) else a
        return 0.0 if is_const(other) else jnp.zeros_like(other)
    if is_const(a) and a == 1:
        return b
    if is_const(b) and b == 1:
        return a
    return a * b


# --- arrays of hyperparameters -------------------------------------------------------------------------------------


def item(a: Any) -> Any:
    """Element 0 of a field: a Python number when the field is a NumPy array (so it folds), else a tracer."""
    return a[0].item() if isinstance(a, np.ndarray) else a[0]


def stack(xp: Any, xs: Any) -> Any:
    """Scalars into a vector of the library dtype: NumPy (float64 arithmetic first) or JAX."""
    dtype = float_dtype()
    if xp is np:
        return np.asarray([np.asarray(x, dtype=np.float64) for x in xs], dtype=dtype)
    return jnp.stack([jnp.asarray(x, dtype=dtype) for x in xs])


# --- reports ------------------------------------------------------------------------------------------------------


@contextmanager
def quiet_nan() -> Iterator[None]:
    """NumPy statistics over all-NaN slices (diverged sweep configs) are expected: their mean is NaN, no warning."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
