"""Optax's schedules without a warmup, as drop-ins whose every number may be traced.

Same names, argument names, order, defaults and values (to float32 rounding) as ``optax.schedules``. Deliberate
differences, all on inputs Optax treats as degenerate:

* ``transition_steps == 0`` in ``linear_schedule`` / ``polynomial_schedule`` gives ``end_value`` from
  ``transition_begin`` on (Optax: ``init_value`` forever).
* A negative count gives the value at count 0 (Optax: ``cosine_decay_schedule`` mirrors the cosine,
  ``piecewise_interpolate_schedule`` and the one-cycle schedules return 0).
* Concrete negative step arguments, a non-positive ``transition_steps`` or ``decay_rate`` in
  ``exponential_decay`` and non-finite values raise ``ValueError`` (Optax logs and degrades, or returns NaN).
* Outputs are strong float32 arrays (float64 under x64) of the count's shape, also for ``constant_schedule``.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from optax_warmup import _phases, _shapes
from optax_warmup import _validate as V
from optax_warmup._phases import Phase, PhaseSchedule

ArrayLike = jax.typing.ArrayLike


def constant_schedule(value: ArrayLike) -> PhaseSchedule:
    """A constant schedule: ``v(t) = value``.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.constant_schedule(0.1)(7))
      0.1...
    """
    V.check_finite("value", value)
    return _phases.phase_schedule([Phase(0.0, value, value)])


def polynomial_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    power: ArrayLike,
    transition_steps: ArrayLike,
    transition_begin: ArrayLike = 0,
) -> PhaseSchedule:
    r"""Polynomial transition from ``init_value`` to ``end_value``.

    .. math::
      v(t) = (I - E) \left(1 - \frac{\min(\max(t - B, 0), T)}{T}\right)^{k} + E

    Args:
      init_value: value before and at ``transition_begin``.
      end_value: value from ``transition_begin + transition_steps`` on.
      power: the exponent ``k``.
      transition_steps: length ``T`` of the transition; 0 jumps to ``end_value`` at ``transition_begin``.
      transition_begin: count ``B`` where the transition starts.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.polynomial_schedule(1.0, 0.0, 2, 10)(5))
      0.25
    """
    V.check_finite("init_value", init_value)
    V.check_finite("end_value", end_value)
    V.check_nonnegative("power", power)
    V.check_nonnegative("transition_steps", transition_steps)
    V.check_nonnegative("transition_begin", transition_begin)
    return _phases.phase_schedule(
        [
            Phase(transition_begin, init_value, init_value),
            Phase(transition_steps, init_value, end_value, "polynomial_decay", power),
        ]
    )


def linear_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    transition_steps: ArrayLike,
    transition_begin: ArrayLike = 0,
) -> PhaseSchedule:
    r"""Linear transition from ``init_value`` to ``end_value``.

    .. math::
      v(t) = I + (E - I) \frac{\min(\max(t - B, 0), T)}{T}

    ``transition_steps == 0`` gives ``end_value`` from ``transition_begin`` on (Optax gives ``init_value``).

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.linear_schedule(0.0, 1.0, 10)(3))
      0.3...
    """
    V.check_finite("init_value", init_value)
    V.check_finite("end_value", end_value)
    V.check_nonnegative("transition_steps", transition_steps)
    V.check_nonnegative("transition_begin", transition_begin)
    return _phases.phase_schedule(
        [Phase(transition_begin, init_value, init_value), Phase(transition_steps, init_value, end_value)]
    )


def cosine_decay_schedule(
    init_value: ArrayLike,
    decay_steps: ArrayLike,
    alpha: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> PhaseSchedule:
    r"""Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``.

    .. math::
      v(t) = I \left((1 - \alpha) \left(\tfrac{1 + \cos(\pi \min(t, T) / T)}{2}\right)^{k} + \alpha\right)

    Args:
      init_value: value at count 0.
      decay_steps: length ``T`` (> 0 when concrete; a traced 0 gives ``alpha * init_value`` at once).
      alpha: the final value as a fraction of ``init_value``.
      exponent: the power ``k`` of the cosine factor.

    Example:
      >>> import optax_warmup as ow
      >>> round(float(ow.cosine_decay_schedule(1.0, 100)(50)), 4)
      0.5
    """
    V.check_finite("init_value", init_value)
    V.check_positive("decay_steps", decay_steps)
    V.check_finite("alpha", alpha)
    V.check_nonnegative("exponent", exponent)
    xp = V.xp_for(init_value, alpha)
    end = V.sanitize_value(xp, alpha) * V.sanitize_value(xp, init_value)
    return _phases.phase_schedule([Phase(decay_steps, init_value, end, "cosine", exponent)])


def exponential_decay(
    init_value: ArrayLike,
    transition_steps: ArrayLike,
    decay_rate: ArrayLike,
    transition_begin: ArrayLike = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
):
    r"""Exponential decay (or growth, for ``decay_rate > 1``) after ``transition_begin``.

    .. math::
      v(t) = I \, r^{(t - B) / T} \quad (t > B), \qquad v(t) = I \quad (t \le B)

    with the exponent floored when ``staircase``, and ``v`` bounded below (``r < 1``) or above (``r > 1``) by
    ``end_value`` when given.

    Args:
      init_value: value up to ``transition_begin``.
      transition_steps: steps ``T`` per factor of ``decay_rate`` (> 0).
      decay_rate: the factor ``r`` (> 0).
      transition_begin: count ``B`` where the decay starts.
      staircase: decay in whole steps of ``transition_steps``.
      end_value: the bound, or ``None``.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.exponential_decay(1.0, 10, 0.5)(20))
      0.25
    """
    V.check_finite("init_value", init_value)
    V.check_positive("transition_steps", transition_steps)
    V.check_positive("decay_rate", decay_rate)
    V.check_nonnegative("transition_begin", transition_begin)
    if not isinstance(staircase, bool | np.bool_):
        raise TypeError(f"staircase must be a bool, got {type(staircase).__name__} {staircase!r}")
    if end_value is not None:
        V.check_finite("end_value", end_value)

    xp = V.xp_for(init_value, transition_steps, decay_rate, transition_begin, end_value)
    dtype = V.float_dtype()
    init = _phases._item(V.sanitize_value(xp, [init_value]))
    steps = V.sanitize_length(xp, transition_steps)
    steps_ok = steps > 0
    steps = xp.where(steps_ok, steps, 1.0)
    rate = xp.maximum(V.sanitize_value(xp, decay_rate), np.finfo(dtype).tiny)
    log_rate = xp.where(steps_ok, xp.log(rate), 0.0)  # a traced non-positive T: constant init_value
    begin = _phases._item(V.sanitize_length(xp, [transition_begin]))
    end = None if end_value is None else V.sanitize_value(xp, end_value)
    if xp is np:
        log_rate, steps = float(log_rate), float(steps)

    def schedule(count):
        elapsed = _shapes._sub(V.as_count(count, clamp=False), begin)  # negative counts: elapsed <= 0, init
        p = elapsed / steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(elapsed <= 0, init, _shapes._mul(init, jnp.exp(p * log_rate)))
        if end is not None:
            if xp is np:  # Optax's rule: a floor for decay, a ceiling for growth
                value = jnp.maximum(value, float(end)) if rate < 1 else jnp.minimum(value, float(end))
            else:
                value = jnp.where(rate < 1, jnp.maximum(value, end), jnp.minimum(value, end))
        if xp is jnp or float(rate) > 1:
            value = V.sanitize_value(jnp, value)  # growth can overflow to inf
        return jnp.asarray(value, dtype)

    return schedule


def _boundaries_and_scales(boundaries_and_scales, boundaries, scales):
    """The dict form (Optax's, Python-number keys) or the array form (``boundaries=``, ``scales=``, traceable)."""
    if boundaries_and_scales is not None:
        if boundaries is not None or scales is not None:
            raise ValueError("give boundaries_and_scales or boundaries= and scales=, not both")
        if not isinstance(boundaries_and_scales, Mapping):
            raise TypeError(
                f"boundaries_and_scales must be a dict {{boundary: scale}}, got {type(boundaries_and_scales).__name__}"
            )
        items = sorted(boundaries_and_scales.items())
        boundaries = [b for b, _ in items]
        scales = [s for _, s in items]
    if boundaries is None and scales is None:
        return [], []
    if boundaries is None or scales is None:
        raise ValueError("boundaries= and scales= must be given together")
    boundaries, scales = list(boundaries), list(scales)
    if len(boundaries) != len(scales):
        raise ValueError(f"boundaries and scales must have the same length, got {len(boundaries)} and {len(scales)}")
    for i, (b, s) in enumerate(zip(boundaries, scales, strict=True)):
        V.check_nonnegative(f"boundaries[{i}]", b)
        V.check_nonnegative(f"scales[{i}]", s)
    return boundaries, scales


def piecewise_constant_schedule(
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
    *,
    boundaries=None,
    scales=None,
):
    r"""A piecewise constant schedule: ``init_value`` times every scale whose boundary has been reached.

    .. math::
      v(t) = I \prod_{i : b_i \le t} s_i

    Args:
      init_value: value before the first boundary.
      boundaries_and_scales: Optax's form ``{boundary: scale}`` (boundaries are dict keys, so Python numbers).
      boundaries: array form, beside ``scales`` (both may be traced arrays or sequences of traced scalars).
      scales: the non-negative factors.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.piecewise_constant_schedule(1.0, {10: 0.1, 20: 0.5})
      >>> [round(float(s(t)), 4) for t in (0, 10, 25)]
      [1.0, 0.1, 0.05]
    """
    V.check_finite("init_value", init_value)
    bounds, factors = _boundaries_and_scales(boundaries_and_scales, boundaries, scales)
    if not bounds:
        return constant_schedule(init_value)
    xp = V.xp_for(*bounds, *factors)
    b = V.sanitize_length(xp, _phases._stack(xp, bounds))
    s = V.sanitize_value(xp, _phases._stack(xp, factors))

    init = _phases._item(V.sanitize_value(V.xp_for(init_value), [init_value]))

    def schedule(count):
        c = V.as_count(count)
        active = jnp.asarray(b) <= c[..., None]
        return jnp.asarray(_shapes._mul(init, jnp.prod(jnp.where(active, jnp.asarray(s), 1.0), axis=-1)),
                           V.float_dtype())

    return schedule


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
    *,
    boundaries=None,
    scales=None,
) -> PhaseSchedule:
    r"""Interpolates (linearly or along a half cosine) between the values of ``piecewise_constant_schedule``.

    With ``b_0 = 0`` and ``v_i = I \prod_{j \le i} s_j``, on ``[b_i, b_{i+1})`` the value goes from ``v_i`` to
    ``v_{i+1}``; after the last boundary it holds the last value.

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``.
      init_value: value at count 0.
      boundaries_and_scales: Optax's dict form; or ``boundaries=`` and ``scales=`` (traceable).

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.piecewise_interpolate_schedule("linear", 1.0, {10: 0.5})
      >>> float(s(5))
      0.75
    """
    V.check_choice("interpolate_type", interpolate_type, ("linear", "cosine"))
    V.check_finite("init_value", init_value)
    bounds, factors = _boundaries_and_scales(boundaries_and_scales, boundaries, scales)
    if not bounds:
        return constant_schedule(init_value)
    xp = V.xp_for(init_value, *bounds, *factors)
    b = V.sanitize_length(xp, _phases._stack(xp, [0.0, *bounds]))
    values = V.sanitize_value(xp, init_value) * xp.cumprod(V.sanitize_value(xp, _phases._stack(xp, [1.0, *factors])))
    phases = [Phase(b[i + 1] - b[i], values[i], values[i + 1], interpolate_type) for i in range(len(bounds))]
    return _phases.phase_schedule(phases)


def _onecycle_bound(pct, transition_steps):
    """``int(pct * T)`` as in Optax, traceable (floor of a non-negative number)."""
    xp = V.xp_for(pct, transition_steps)
    if xp is np:
        return float(np.floor(np.float64(pct) * np.float64(transition_steps)))
    # float32 rounds 0.56 * 900 to 503.99997: nudge by 1e-6 relative so the floor matches Python's int().
    return jnp.floor(V.sanitize_length(jnp, pct) * V.sanitize_length(jnp, transition_steps) * (1.0 + 1e-6))


def _check_onecycle(transition_steps, peak_value, pct_start, div_factor, final_div_factor, pct_final=1.0):
    V.check_positive("transition_steps", transition_steps)
    V.check_finite("peak_value", peak_value)
    V.check_nonnegative("pct_start", pct_start)
    V.check_at_least("pct_final", pct_final, "pct_start", pct_start)
    if V.concrete("pct_final", pct_final) is not None and float(pct_final) > 1.0:
        raise ValueError(f"pct_final must be <= 1, got {pct_final!r}")
    V.check_positive("div_factor", div_factor)
    V.check_positive("final_div_factor", final_div_factor)


def linear_onecycle_schedule(
    transition_steps: ArrayLike,
    peak_value: ArrayLike,
    pct_start: ArrayLike = 0.3,
    pct_final: ArrayLike = 0.85,
    div_factor: ArrayLike = 25.0,
    final_div_factor: ArrayLike = 1e4,
) -> PhaseSchedule:
    r"""One-cycle schedule with linear pieces (Smith & Topin), as Optax's.

    From ``P / d`` up to ``P`` until ``int(pct_start T)``, down to ``P / d`` until ``int(pct_final T)``, then
    down to ``P / (d f)`` at ``T`` (``d = div_factor``, ``f = final_div_factor``; Optax's docstring says
    ``P / f`` but its values, and ours, end at ``P / (d f)``).

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.linear_onecycle_schedule(100, 1.0)
      >>> float(s(30))
      1.0
    """
    _check_onecycle(transition_steps, peak_value, pct_start, div_factor, final_div_factor, pct_final)
    b1 = _onecycle_bound(pct_start, transition_steps)
    b2 = _onecycle_bound(pct_final, transition_steps)
    xp = V.xp_for(peak_value, div_factor, final_div_factor, b1, b2, transition_steps)
    peak = V.sanitize_value(xp, peak_value)
    low = peak / V.sanitize_value(xp, div_factor)
    final = low / V.sanitize_value(xp, final_div_factor)
    return _phases.phase_schedule(
        [
            Phase(b1, low, peak),
            Phase(b2 - b1, peak, low),
            Phase(V.sanitize_length(xp, transition_steps) - b2, low, final),
        ]
    )


def cosine_onecycle_schedule(
    transition_steps: ArrayLike,
    peak_value: ArrayLike,
    pct_start: ArrayLike = 0.3,
    div_factor: ArrayLike = 25.0,
    final_div_factor: ArrayLike = 1e4,
) -> PhaseSchedule:
    r"""One-cycle schedule with half-cosine pieces, as Optax's.

    From ``P / d`` up to ``P`` until ``int(pct_start T)``, then down to ``P / (d f)`` at ``T``.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.cosine_onecycle_schedule(100, 1.0)
      >>> float(s(30))
      1.0
    """
    _check_onecycle(transition_steps, peak_value, pct_start, div_factor, final_div_factor)
    b1 = _onecycle_bound(pct_start, transition_steps)
    xp = V.xp_for(peak_value, div_factor, final_div_factor, b1, transition_steps)
    peak = V.sanitize_value(xp, peak_value)
    low = peak / V.sanitize_value(xp, div_factor)
    final = low / V.sanitize_value(xp, final_div_factor)
    return _phases.phase_schedule(
        [Phase(b1, low, peak, "cosine"), Phase(V.sanitize_length(xp, transition_steps) - b1, peak, final, "cosine")]
    )
