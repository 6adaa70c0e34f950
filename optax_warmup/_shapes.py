"""Shapes: how a phase moves from its start value to its end value as progress ``p`` goes from 0 to 1.

Each shape is a function ``(p, start, end, k) -> value`` with ``p`` in ``[0, 1]`` and ``k`` a shape parameter
(an exponent where the shape has one, ignored elsewhere). Every shape gives exactly ``start`` at ``p = 0`` and
``end`` at ``p = 1``. The same shapes serve warmups (``start < end``) and decays (``start > end``).

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

ShapeFn = Callable[..., jnp.ndarray]


def safe_pow(x, k):
    """``x**k`` for ``x >= 0`` whose gradient is finite at ``x = 0`` (``0**0 = 1``)."""
    positive = x > 0
    x_safe = jnp.where(positive, x, 1.0)
    return jnp.where(positive, x_safe**k, jnp.where(k == 0, 1.0, 0.0))


def _lerp(start, end, g):
    # Exact at both ends: g == 1 gives `end` bit for bit (start + (end - start) need not).
    return jnp.where(g >= 1.0, end, start + (end - start) * g)


def linear(p, start, end, k):
    del k
    return _lerp(start, end, p)


def cosine(p, start, end, k):
    remaining = safe_pow(0.5 * (1.0 + jnp.cos(jnp.pi * p)), k)
    return jnp.where(p >= 1.0, end, end + (start - end) * remaining)


def polynomial(p, start, end, k):
    return _lerp(start, end, safe_pow(p, k))


def polynomial_decay(p, start, end, k):
    return jnp.where(p >= 1.0, end, end + (start - end) * safe_pow(1.0 - p, k))


def one_minus_sqrt(p, start, end, k):
    del k
    return _lerp(start, end, safe_pow(p, 0.5))


def square(p, start, end, k):
    del k
    return _lerp(start, end, p * p)


def geometric(p, start, end, k):
    """Log-space interpolation. Non-positive endpoints are clamped to the smallest normal float."""
    del k
    tiny = jnp.finfo(jnp.result_type(start)).tiny
    log_start = jnp.log(jnp.maximum(start, tiny))
    log_end = jnp.log(jnp.maximum(end, tiny))
    value = jnp.exp(log_start + (log_end - log_start) * p)
    return jnp.where(p >= 1.0, jnp.maximum(end, tiny), jnp.where(p <= 0.0, jnp.maximum(start, tiny), value))


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
