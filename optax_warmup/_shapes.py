"""Shapes: how a phase moves from its start value to its end value as progress ``p`` goes from 0 to 1.

Each shape is a function ``(p, start, end, k) -> value`` with ``p`` in ``[0, 1]`` and ``k`` a shape parameter
(an exponent where the shape has one, ignored elsewhere). With ``k > 0`` every shape gives exactly ``start`` at
``p = 0`` and ``end`` at ``p = 1`` (an exponent of 0 makes a polynomial shape a step: ``0**0 = 1``). The same
shapes serve warmups (``start < end``) and decays (``start > end``).

============================ =============================================== ===================================
name                         value                                           typical use
============================ =============================================== ===================================
``"linear"``                 ``start + (end - start) * p``                   linear warmup / decay
``"cosine"``                 ``end + (start - end) * ((1 + cos(pi p))/2)**k`` half-cosine ramp, cosine decay
``"polynomial"``             ``start + (end - start) * p**k``                 polynomial warmup ``(t/W)**k``
``"polynomial_decay"``       ``end + (start - end) * (1 - p)**k``             Optax / HF polynomial decay
``"1-sqrt"``                 ``end + (start - end) * (1 - sqrt(p))``          1-sqrt cooldown (Hägele et al.)
``"square"``                 ``end + (start - end) * (1 - p**2)``             square cooldown
``"geometric"``              ``start * (end / start)**p``                     exponential interpolation (> 0)
============================ =============================================== ===================================
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

ShapeFn = Callable[..., jnp.ndarray]

# Arguments that are Python numbers are folded here rather than emitted into the compiled program: a schedule
# with concrete hyperparameters compiles to about as few operations as the hand-written Optax formula.


def _const(x) -> bool:
    return isinstance(x, int | float | np.integer | np.floating)


def _sub(a, b):
    if _const(b) and b == 0:
        return a
    return a - b


def _add(a, b):
    if _const(a) and a == 0:
        return b
    if _const(b) and b == 0:
        return a
    return a + b


def _mul(a, b):
    if (_const(a) and a == 0) or (_const(b) and b == 0):
        # Keep the other factor's shape: 0 * (an array of counts) is an array of zeros, not the number 0.
        other = b if _const(a) else a
        return 0.0 if _const(other) else jnp.zeros_like(other)
    if _const(a) and a == 1:
        return b
    if _const(b) and b == 1:
        return a
    return a * b


def safe_pow(x, k):
    """``x**k`` for ``x >= 0`` whose gradient is finite at ``x = 0`` (``0**0 = 1``)."""
    if _const(k) and k in (1.0, 2.0):
        return x if k == 1.0 else x * x  # the common exponents, without a pow in the program
    positive = x > 0
    x_safe = jnp.where(positive, x, 1.0)
    return jnp.where(positive, x_safe**k, jnp.where(k == 0, 1.0, 0.0))


def _affine_is_exact(base, other) -> bool:
    """Whether ``base + (other - base) * 1`` rounds to ``other`` exactly (for concrete endpoints)."""
    if not (_const(base) and _const(other)):
        return False
    dtype = np.dtype(jnp.result_type(float))
    return dtype.type(base) + (dtype.type(other) - dtype.type(base)) == dtype.type(other)


def _lerp(start, end, g):
    """From ``start`` at ``g = 0`` to ``end`` at ``g = 1``, both bit for bit.

    ``start + (end - start) g`` (two operations once the constants fold) where that is exact at ``g = 1``, else
    ``start (1 - g) + end g``, which always is.
    """
    if _affine_is_exact(start, end):
        return _add(start, _mul(_sub(end, start), g))
    return _add(_mul(start, _sub(1.0, g)), _mul(end, g))


def _toward_end(start, end, remaining):
    """``end`` plus the ``remaining`` fraction of the way back to ``start``; exact at both ends."""
    if _affine_is_exact(end, start):
        return _add(end, _mul(_sub(start, end), remaining))
    return _add(_mul(end, _sub(1.0, remaining)), _mul(start, remaining))


def linear(p, start, end, k):
    del k
    return _lerp(start, end, p)


def cosine(p, start, end, k):
    # cos(pi) rounds to exactly -1 in float32 and float64, so `remaining` is exactly 0 at p = 1.
    return _toward_end(start, end, safe_pow(0.5 * (1.0 + jnp.cos(jnp.pi * p)), k))


def polynomial(p, start, end, k):
    return _lerp(start, end, safe_pow(p, k))


def polynomial_decay(p, start, end, k):
    return _toward_end(start, end, safe_pow(1.0 - p, k))


def one_minus_sqrt(p, start, end, k):
    del k
    return _lerp(start, end, safe_pow(p, 0.5))


def square(p, start, end, k):
    del k
    return _lerp(start, end, p * p)


def geometric(p, start, end, k):
    """Log-space interpolation. Non-positive endpoints are clamped to the smallest normal float."""
    del k
    tiny = float(np.finfo(np.dtype(jnp.result_type(float))).tiny)
    start, end = jnp.maximum(start, tiny), jnp.maximum(end, tiny)
    value = jnp.exp(jnp.log(start) + (jnp.log(end) - jnp.log(start)) * p)
    return jnp.where(p >= 1.0, end, jnp.where(p <= 0.0, start, value))


SHAPES: dict[str, ShapeFn] = {
    "linear": linear,
    "cosine": cosine,
    "polynomial": polynomial,
    "polynomial_decay": polynomial_decay,
    "1-sqrt": one_minus_sqrt,
    "square": square,
    "geometric": geometric,
}

# Warmup shapes accepted by every `warmup_*` schedule. "exponential" is not a phase shape: it is the saturating
# overlay 1 - exp(-t / tau) of Ma & Yarats, handled in `_warmup.py`.
WARMUP_SHAPES = ("linear", "cosine", "polynomial", "geometric", "exponential")

# Decay shapes of the warmup-stable-decay schedule, mapped to phase shapes.
WSD_DECAY_SHAPES = {
    "linear": "linear",
    "cosine": "cosine",
    "1-sqrt": "1-sqrt",
    "square": "square",
    "exponential": "geometric",
}
