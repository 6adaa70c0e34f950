"""Warmups derived from Adam's ``b2``: the untuned warmups of Ma & Yarats (2021) and RAdam's rectification.

Step convention: these follow Adam, whose bias correction counts its first update as ``t = 1``. An Optax count
``c`` (the first update sees ``c = 0``) is step ``t = c + 1``, so the first update is not wasted. This is also the
convention of the paper and of ``pytorch_warmup``. (The library's other warmups, ``warmup_factor`` and
``scale_by_warmup``, follow Optax: factor ``init_value`` at count 0.)

Concrete ``b2`` and ``threshold`` are checked (a bad value raises ``ValueError`` naming it) and the closed forms are
evaluated in float64 at construction; traced ones are clamped (``b2`` into ``[0, 1 - 1e-7]``, NaN to 0).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optax_warmup import _numeric as N
from optax_warmup import _phases
from optax_warmup import _validate as V
from optax_warmup._deprecation import old_warmup_spelling
from optax_warmup._phases import PhaseSchedule, Segment
from optax_warmup._warmup import ramp_then

ArrayLike = jax.typing.ArrayLike

UNTUNED_SHAPES = ("linear", "exponential")

# The largest traced b2 we accept: 1 - b2 stays a normal float32 and every length stays finite.
_MAX_B2 = 1.0 - 1e-7


def _check_b2(b2: Any) -> None:
    v = V.concrete("b2", b2)
    if v is not None and not (0.0 <= v < 1.0):
        raise ValueError(f"b2 must be in [0, 1), got {b2!r}")


def _one_minus_b2(xp: Any, b2: Any) -> Any:
    """``1 - b2`` in the library dtype (float64 arithmetic for a concrete ``b2``), clamped for a traced one."""
    if xp is np:
        return np.float64(1.0) - np.float64(b2)
    b2 = jnp.clip(jnp.nan_to_num(jnp.asarray(b2, V.float_dtype()), nan=0.0), 0.0, _MAX_B2)
    return 1.0 - b2


@old_warmup_spelling("b2", "shape")
def untuned_warmup_steps(b2: ArrayLike, *, warmup_shape: str = "linear") -> float | jax.Array:
    r"""The warmup length that Ma & Yarats (2021) derive from Adam's ``b2``.

    .. math::
      W_{\text{linear}} = \frac{2}{1 - \beta_2}, \qquad \tau_{\text{exponential}} = \frac{1}{1 - \beta_2}

    For ``warmup_shape="exponential"`` the number is the *time constant* ``tau`` of ``1 - exp(-t / tau)``, not a
    ``warmup_steps`` of this library's ``"exponential"`` warmup shape (which uses ``tau = warmup_steps / 2``): to
    get the same curve from ``warmup_factor`` pass ``untuned_warmup_steps(b2, "linear")``.

    Unlike ``pytorch_warmup`` the value is not truncated to an integer (there ``b2 = 0.999`` gives 1999 / 999,
    because ``1 - 0.999`` is slightly above 0.001 in floating point).

    Args:
      b2: Adam's second-moment decay, in ``[0, 1)``; may be traced.
      warmup_shape: ``"linear"`` or ``"exponential"``.

    Returns:
      A Python float when ``b2`` is concrete, else a traced scalar.

    Example:
      >>> import optax_warmup as ow
      >>> steps = ow.untuned_warmup_steps(0.999)
      >>> tau = ow.untuned_warmup_steps(0.999, warmup_shape="exponential")
      >>> round(steps, 6), round(tau, 6)
      (2000.0, 1000.0)

    References:
      Ma & Yarats, `On the Adequacy of Untuned Warmup for Adaptive Optimization
      <https://arxiv.org/abs/1910.04209>`_, AAAI 2021.
    """
    V.check_choice("warmup_shape", warmup_shape, UNTUNED_SHAPES)
    _check_b2(b2)
    return _untuned_steps(b2, warmup_shape)


def _untuned_steps(b2: Any, warmup_shape: str) -> float | jax.Array:
    xp = V.xp_for(b2)
    steps = (2.0 if warmup_shape == "linear" else 1.0) / _one_minus_b2(xp, b2)
    return float(steps) if xp is np else steps.astype(N.float_dtype())


@old_warmup_spelling("b2", "shape")
def untuned_warmup(b2: ArrayLike, *, warmup_shape: str = "linear") -> PhaseSchedule:
    r"""The untuned warmup factor of Ma & Yarats (2021): a schedule ``count -> factor`` in ``(0, 1]``.

    .. math::
      \omega_{\text{linear}}(t) = \min\left(1, \tfrac{1 - \beta_2}{2}\, t\right), \qquad
      \omega_{\text{exponential}}(t) = 1 - e^{-(1 - \beta_2)\, t}, \qquad t = \text{count} + 1

    The linear factor reaches 1 at ``count = 2 / (1 - b2) - 1`` (step ``t = 2 / (1 - b2)``); the exponential
    one is ``1 - e**-1 = 63%`` of the way at ``t = tau`` and 86.5% at ``t = 2 tau``. Both withhold the same total
    learning rate, ``1 / (1 - b2)`` peak-steps. Multiply a learning-rate schedule by it (``warmup_overlay`` does
    the same with the library's count-from-0 convention) or apply it with ``scale_by_untuned_warmup``.

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      b2: Adam's second-moment decay, in ``[0, 1)``; may be traced.
      warmup_shape: ``"linear"`` or ``"exponential"``.

    Example:
      >>> import optax_warmup as ow
      >>> f = ow.untuned_warmup(0.99)
      >>> round(float(f(0)), 6), float(f(99)), float(f(199))
      (0.005, 0.5, 1.0)
    """
    V.check_choice("warmup_shape", warmup_shape, UNTUNED_SHAPES)
    _check_b2(b2)
    length = V.clamp_length(_untuned_steps(b2, "linear"))
    # The factor of warmup_factor(length) at t = count + 1: the same segments, one count earlier.
    return _phases.shift(ramp_then(0.0, 1.0, length, warmup_shape, 2.0, []), -1.0)


def radam_warmup(b2: ArrayLike, threshold: ArrayLike = 5.0) -> PhaseSchedule:
    r"""RAdam's rectification factor ``r_t`` as a warmup schedule ``count -> factor`` in ``[0, 1]``.

    .. math::
      \rho_\infty = \frac{2}{1 - \beta_2} - 1, \qquad
      \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t}, \qquad
      r_t = \begin{cases}
        \sqrt{\dfrac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}
          & \rho_t \ge \text{threshold} \\
        0 & \text{otherwise}
      \end{cases}

    with ``t = count + 1``. ``rho_t`` grows from 1 (at ``t = 1``) towards ``rho_inf``, so the factor is 0 for the
    first few steps (while the variance of Adam's second moment is not yet tractable), then rises to 1. Applied
    to Adam's updates it gives RAdam with ``degenerated_to_sgd=False`` (no update while ``rho_t < threshold``);
    Ma & Yarats use it as the "RAdam warmup". The threshold test is ``>=`` as in the official code and Optax's
    ``scale_by_radam`` (the paper states ``rho_t > 4``). ``pytorch_warmup``'s ``RAdamWarmup`` instead shifts
    ``t`` so that its first factor is the first non-zero one.

    For small ``t (1 - b2)`` the textbook ``rho_t`` cancels badly in float32; it is computed through an exact
    series rewriting instead, so float32 factors agree with float64 ones to about 1e-6.

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      b2: Adam's second-moment decay. Concrete values must give ``rho_inf > threshold`` (``b2 = 0.999`` gives
        ``rho_inf = 1999``); a traced ``b2`` with ``rho_inf <= threshold`` gives factor 0 for ever.
      threshold: the smallest ``rho_t`` for which the factor is non-zero; at least 4 (below 4 the square root
        is of a negative number). A traced threshold is clamped to ``>= 4``.

    Example:
      >>> import optax_warmup as ow
      >>> r = ow.radam_warmup(0.999)
      >>> float(r(4)), round(float(r(5)), 4), round(float(r(999)), 4)
      (0.0, 0.0258, 0.6453)

    References:
      Liu et al., `On the Variance of the Adaptive Learning Rate and Beyond <https://arxiv.org/abs/1908.03265>`_,
      ICLR 2020.
    """
    _check_b2(b2)
    th = V.concrete("threshold", threshold)
    if th is not None and not (np.isfinite(th) and th >= 4.0):
        raise ValueError(f"threshold must be a finite number >= 4, got {threshold!r}")
    bv = V.concrete("b2", b2)
    if bv is not None and th is not None:
        rho_inf = 2.0 / (1.0 - bv) - 1.0
        if not rho_inf > th:
            raise ValueError(
                f"b2={b2!r} gives rho_inf = 2 / (1 - b2) - 1 = {rho_inf:.4g} <= threshold={threshold!r}: the factor "
                f"would be 0 for ever (needs b2 > {1 - 2 / (th + 1):.4g})"
            )
    xp = V.xp_for(b2)
    one_minus = _one_minus_b2(xp, b2)
    log_b2 = -xp.log1p(-one_minus)  # L = -log(b2) > 0
    rho_inf = 2.0 / one_minus - 1.0
    limit = V.xp_for(threshold).maximum(V.clamp_value(threshold), 4.0)
    # At t = count + 1: the segment's origin is -1.
    return _phases.from_segments([Segment(0.0, -1.0, 1.0, rho_inf, limit, _phases.RADAM, log_b2)])
