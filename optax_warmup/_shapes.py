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
``"exponential_to_end"``     ``end + (start - end) * expm1(1 - p) / expm1(1)`` exponential decay that reaches ``end``
============================ =============================================== ===================================

``"exponential_to_end"`` is the exponential decay of the power scheduler's last phase as its authors' training
code computes it (IBM dolomite-engine, ``lr_decay_style="exponential"`` with a final factor of 0): an
``exp(-p)`` curve rescaled so that it leaves ``start`` and lands on ``end`` exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from optax_warmup._numeric import add, float_dtype, is_const, mul, sub

ShapeFn = Callable[..., Any]

# Arguments that are Python numbers are folded (``_numeric.add`` / ``mul`` / ``sub``) rather than emitted into the
# compiled program: a schedule with concrete hyperparameters compiles to about as few operations as the
# hand-written Optax formula.


def safe_pow(x: Any, k: Any) -> Any:
    """``x**k`` for ``x >= 0`` whose gradient is finite at ``x = 0`` (``0**0 = 1``)."""
    if is_const(k) and k in (1.0, 2.0):
        return x if k == 1.0 else x * x  # the common exponents, without a pow in the program
    positive = x > 0
    x_safe = jnp.where(positive, x, 1.0)
    return jnp.where(positive, x_safe**k, jnp.where(k == 0, 1.0, 0.0))


def _affine_is_exact(base: Any, other: Any) -> bool:
    """Whether ``base + (other - base) * 1`` rounds to ``other`` exactly (for concrete endpoints)."""
    if not (is_const(base) and is_const(other)):
        return False
    dtype = float_dtype()
    return bool(dtype.type(base) + (dtype.type(other) - dtype.type(base)) == dtype.type(other))


def lerp(start: Any, end: Any, g: Any) -> Any:
    """From ``start`` at ``g = 0`` to ``end`` at ``g = 1``, both bit for bit.

    ``start + (end - start) g`` (two operations once the constants fold) where that is exact at ``g = 1``, else
    ``start (1 - g) + end g``, which always is.
    """
    if _affine_is_exact(start, end):
        return add(start, mul(sub(end, start), g))
    return add(mul(start, sub(1.0, g)), mul(end, g))


def _toward_end(start: Any, end: Any, remaining: Any) -> Any:
    """``end`` plus the ``remaining`` fraction of the way back to ``start``; exact at both ends."""
    if _affine_is_exact(end, start):
        return add(end, mul(sub(start, end), remaining))
    return add(mul(end, sub(1.0, remaining)), mul(start, remaining))


def linear(p: Any, start: Any, end: Any, k: Any) -> Any:
    del k
    return lerp(start, end, p)


def cosine(p: Any, start: Any, end: Any, k: Any) -> Any:
    return cosine_at(jnp.pi * p, start, end, k)


def cosine_at(angle: Any, start: Any, end: Any, k: Any) -> Any:
    """The ``"cosine"`` shape at ``angle = pi p`` (the engine may fold ``pi`` into the progress it computes)."""
    # cos(pi) rounds to exactly -1 in float32 and float64, so `remaining` is exactly 0 at p = 1.
    return _toward_end(start, end, safe_pow(0.5 * (1.0 + jnp.cos(angle)), k))


def polynomial(p: Any, start: Any, end: Any, k: Any) -> Any:
    return lerp(start, end, safe_pow(p, k))


def polynomial_decay(p: Any, start: Any, end: Any, k: Any) -> Any:
    return _toward_end(start, end, safe_pow(1.0 - p, k))


def one_minus_sqrt(p: Any, start: Any, end: Any, k: Any) -> Any:
    del k
    return lerp(start, end, safe_pow(p, 0.5))


def square(p: Any, start: Any, end: Any, k: Any) -> Any:
    del k
    return lerp(start, end, p * p)


def exponential_to_end(p: Any, start: Any, end: Any, k: Any) -> Any:
    """``end + (start - end) expm1(1 - p) / expm1(1)``: 1 at ``p = 0`` and 0 at ``p = 1`` exactly."""
    del k
    remaining = jnp.minimum(jnp.expm1(1.0 - p) * float(1.0 / np.expm1(1.0)), 1.0)
    return _toward_end(start, end, jnp.where(p <= 0.0, 1.0, remaining))


def geometric(p: Any, start: Any, end: Any, k: Any) -> Any:
    """Log-space interpolation. Non-positive endpoints are clamped to the smallest normal float."""
    del k
    tiny = float(np.finfo(float_dtype()).tiny)
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
    "exponential_to_end": exponential_to_end,
}

# Warmup shapes accepted by every `warmup_*` schedule. "exponential" is not a phase shape: it is the saturating
# overlay 1 - exp(-t / tau) of Ma & Yarats, handled in `_warmup.py`.
WARMUP_SHAPES: tuple[str, ...] = ("linear", "cosine", "polynomial", "geometric", "exponential")

# Decay shapes of the warmup-stable-decay schedule, mapped to phase shapes.
WSD_DECAY_SHAPES: dict[str, str] = {
    "linear": "linear",
    "cosine": "cosine",
    "1-sqrt": "1-sqrt",
    "square": "square",
    "exponential": "geometric",
}
