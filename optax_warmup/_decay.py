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

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optax_warmup import _numeric as N
from optax_warmup import _phases
from optax_warmup import _validate as V
from optax_warmup._phases import CONST, Phase, PhaseSchedule, Segment

ArrayLike = jax.typing.ArrayLike


def constant_schedule(value: ArrayLike) -> PhaseSchedule:
    r"""A constant schedule: ``v(t) = value``.

    .. math::
      v(t) = c \qquad (c = \mathrm{value})

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      value: the value at every count.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.constant_schedule(0.1)(7))
      0.1...
    """
    V.check_finite("value", value)
    v = V.clamp_value(value)
    return _phases.from_phases([Phase(0.0, v, v)])


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

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

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
    init = V.clamp_value(init_value)
    return _phases.from_phases(
        [
            Phase(V.clamp_length(transition_begin), init, init),
            Phase(V.clamp_length(transition_steps), init, V.clamp_value(end_value), "polynomial_decay",
                  V.clamp_exponent(power)),
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

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      init_value: value ``I`` up to ``transition_begin``.
      end_value: value ``E`` from ``transition_begin + transition_steps`` on.
      transition_steps: length ``T`` of the transition; 0 jumps to ``end_value`` at ``transition_begin``.
      transition_begin: count ``B`` where the transition starts.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.linear_schedule(0.0, 1.0, 10)(3))
      0.3...
    """
    V.check_finite("init_value", init_value)
    V.check_finite("end_value", end_value)
    V.check_nonnegative("transition_steps", transition_steps)
    V.check_nonnegative("transition_begin", transition_begin)
    init = V.clamp_value(init_value)
    return _phases.from_phases(
        [
            Phase(V.clamp_length(transition_begin), init, init),
            Phase(V.clamp_length(transition_steps), init, V.clamp_value(end_value)),
        ]
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

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

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
    init = V.clamp_value(init_value)
    end = V.clamp_value(V.clamp_value(alpha) * init)
    return _phases.from_phases([Phase(V.clamp_length(decay_steps), init, end, "cosine", V.clamp_exponent(exponent))])


def check_exponential_decay(
    transition_steps: Any, decay_rate: Any, transition_begin: Any, staircase: Any, end_value: Any
) -> None:
    """The checks of ``exponential_decay``'s arguments after ``init_value`` (shared with the warmup version)."""
    V.check_positive("transition_steps", transition_steps)
    V.check_positive("decay_rate", decay_rate)
    V.check_nonnegative("transition_begin", transition_begin)
    if not isinstance(staircase, bool | np.bool_):
        raise TypeError(f"staircase must be a bool, got {type(staircase).__name__} {staircase!r}")
    if end_value is not None:
        V.check_finite("end_value", end_value)


def exponential_piece(init_value: Any, transition_steps: Any, decay_rate: Any, transition_begin: Any,
                      staircase: bool, end_value: Any) -> PhaseSchedule:
    """``exponential_decay`` from checked arguments: ``init_value`` until the begin, then the ``"exp"`` tail."""
    init, steps, begin = V.clamp_value(init_value), V.clamp_length(transition_steps), V.clamp_length(transition_begin)
    xp = V.xp_for(init, steps, begin, decay_rate, end_value)
    steps_ok = steps > 0
    rate = xp.maximum(V.clamp_value(decay_rate), np.finfo(N.float_dtype()).tiny)
    log_rate = xp.where(steps_ok, xp.log(rate), 0.0)  # a traced non-positive T: constant init_value
    if end_value is not None:
        bound = V.clamp_value(end_value)
    else:
        bound = xp.where(log_rate < 0, -V._MAX_VALUE, V._MAX_VALUE)  # no bound (values stay within +-1e30)
    kind = _phases.EXP_STAIRS if staircase else _phases.EXP
    tail = Segment(begin, begin, xp.where(steps_ok, steps, 1.0), init, bound, kind, log_rate)
    if not V.is_traced(begin) and float(begin) == 0.0:
        return _phases.from_segments([tail])
    # The bound applies before the begin too (Optax's rule): max(init, end) for a decay, min for growth.
    held = xp.where(log_rate < 0, xp.maximum(init, bound), xp.minimum(init, bound))
    return _phases.from_segments([Segment(0.0, 0.0, 1.0, held, held, CONST), tail])


def exponential_decay(
    init_value: ArrayLike,
    transition_steps: ArrayLike,
    decay_rate: ArrayLike,
    transition_begin: ArrayLike = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
) -> PhaseSchedule:
    r"""Exponential decay (or growth, for ``decay_rate > 1``) after ``transition_begin``.

    .. math::
      v(t) = I \, r^{(t - B) / T} \quad (t > B), \qquad v(t) = I \quad (t \le B)

    with the exponent floored when ``staircase``, and ``v`` bounded below (``r < 1``) or above (``r > 1``) by
    ``end_value`` when given.

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

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
    check_exponential_decay(transition_steps, decay_rate, transition_begin, staircase, end_value)
    return exponential_piece(init_value, transition_steps, decay_rate, transition_begin, staircase, end_value)


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
    boundaries: Sequence[ArrayLike] | jax.Array | None = None,
    scales: Sequence[ArrayLike] | jax.Array | None = None,
) -> PhaseSchedule:
    r"""A piecewise constant schedule: ``init_value`` times every scale whose boundary has been reached.

    .. math::
      v(t) = I \prod_{i : b_i \le t} s_i

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

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
    init = V.clamp_value(init_value)
    if not bounds:
        return _phases.from_phases([Phase(0.0, init, init)])
    b, s = _sorted_steps(bounds, factors)
    xp = V.xp_for(b, s, init)
    # The value after boundary i is I * s_1 * ... * s_i, clamped like every value (huge scales, or 0 * inf).
    values = V.sanitize_value(xp, init * xp.cumprod(xp.asarray(s, N.float_dtype())))
    segments = [Segment(0.0, 0.0, 1.0, init, init, CONST)]
    segments += [Segment(b[i], b[i], 1.0, values[i], values[i], CONST) for i in range(len(bounds))]
    return _phases.from_segments(segments)


def _sorted_steps(bounds: Sequence[Any], factors: Sequence[Any]) -> tuple[Any, Any]:
    """Boundaries (clamped) and scales (clamped to >= 0), sorted by boundary: equal boundaries apply together."""
    xp = V.xp_for(*bounds, *factors)
    b = V.sanitize_length(xp, N.stack(xp, bounds))
    # Traced scales are clamped as concrete ones are checked (>= 0), and the product as every value (+-1e30).
    s = xp.maximum(V.sanitize_value(xp, N.stack(xp, factors)), 0.0)
    if xp is np:
        order = np.argsort(b, kind="stable")
        return b[order], s[order]
    b, s = jax.lax.sort((b, s), num_keys=1, is_stable=True)
    return b, s


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
    *,
    boundaries: Sequence[ArrayLike] | jax.Array | None = None,
    scales: Sequence[ArrayLike] | jax.Array | None = None,
) -> PhaseSchedule:
    r"""Interpolates (linearly or along a half cosine) between the values of ``piecewise_constant_schedule``.

    With ``b_0 = 0`` and ``v_i = I \prod_{j \le i} s_j``, on ``[b_i, b_{i+1})`` the value goes from ``v_i`` to
    ``v_{i+1}``; after the last boundary it holds the last value.

    .. math::
      v(t) = v_i + (v_{i+1} - v_i)\, g\!\left(\frac{t - b_i}{b_{i+1} - b_i}\right)
        \quad (b_i \le t < b_{i+1}), \qquad v_i = I \prod_{j \le i} s_j,
        \quad g(p) = p \ \text{or} \ \tfrac{1 - \cos \pi p}{2}

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``.
      init_value: value at count 0.
      boundaries_and_scales: Optax's dict form; or ``boundaries=`` and ``scales=`` (traceable).
      boundaries: the counts ``b_i``, sorted (traceable); with ``scales``, instead of the dict.
      scales: the factors ``s_i``, one per boundary (traceable).

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
    b = V.sanitize_length(xp, N.stack(xp, [0.0, *bounds]))
    scales = xp.maximum(V.sanitize_value(xp, N.stack(xp, [1.0, *factors])), 0.0)
    values = V.sanitize_value(xp, V.clamp_value(init_value) * xp.cumprod(scales))
    phases = [Phase(V.sanitize_length(xp, b[i + 1] - b[i]), values[i], values[i + 1], interpolate_type)
              for i in range(len(bounds))]
    return _phases.from_phases(phases)


def _onecycle_bound(pct, transition_steps):
    """``int(pct * T)`` as in Optax, traceable (floor of a non-negative number)."""
    xp = V.xp_for(pct, transition_steps)
    if xp is np:
        return float(np.floor(np.float64(pct) * np.float64(transition_steps)))
    # float32 rounds 0.56 * 900 to 503.99997: nudge up so the floor matches Python's int(). By 2**-23 relative,
    # which covers the float32 rounding of pct and of the product (2**-24 each) but no more: a nudge of 1e-6 moved
    # true products within 1e-6 * pct * T of the next integer up a step (0.4 steps at T = 1e6).
    product = V.sanitize_length(jnp, pct) * V.sanitize_length(jnp, transition_steps) * (1.0 + 2.0**-23)
    return V.sanitize_length(jnp, jnp.floor(product))


def _onecycle_levels(xp: Any, peak_value: Any, div_factor: Any, final_div_factor: Any) -> tuple[Any, Any, Any]:
    """The peak, ``P / d`` and ``P / (d f)``, each clamped on its own (a traced divisor may be 0; ``P / (d f)`` is
    worked out from the unclamped ``P / d``, so a ``P / d`` past the clamp does not pull the end value down)."""
    peak = V.sanitize_value(xp, peak_value)
    unclamped_low = peak / V.sanitize_value(xp, div_factor)
    low = V.sanitize_value(xp, unclamped_low)
    return peak, low, V.sanitize_value(xp, unclamped_low / V.sanitize_value(xp, final_div_factor))


def _check_onecycle(transition_steps, peak_value, pct_start, div_factor, final_div_factor, pct_final=1.0):
    V.check_positive("transition_steps", transition_steps)
    V.check_finite("peak_value", peak_value)
    V.check_nonnegative("pct_start", pct_start)
    V.check_nonnegative("pct_final", pct_final)
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

    .. math::
      v(t) = \begin{cases}
        \tfrac{P}{d} + \left(P - \tfrac{P}{d}\right) \tfrac{t}{T_1} & t < T_1 \\
        P + \left(\tfrac{P}{d} - P\right) \tfrac{t - T_1}{T_2 - T_1} & T_1 \le t < T_2 \\
        \tfrac{P}{d} + \left(\tfrac{P}{d f} - \tfrac{P}{d}\right) \tfrac{t - T_2}{T - T_2} & T_2 \le t < T \\
        \tfrac{P}{d f} & t \ge T
      \end{cases} \qquad T_1 = \lfloor p_s T \rfloor, \; T_2 = \lfloor p_f T \rfloor

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      transition_steps: length ``T`` of the cycle; the value holds at its end afterwards.
      peak_value: the peak ``P``, reached at ``T_1 = int(pct_start T)``.
      pct_start: fraction ``p_s`` of the cycle spent going up.
      pct_final: fraction ``p_f``: back at ``P / d`` at ``T_2 = int(pct_final T)``.
      div_factor: ``d``: the cycle starts at ``P / d``.
      final_div_factor: ``f``: the cycle ends at ``P / (d f)``.

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
    peak, low, final = _onecycle_levels(xp, peak_value, div_factor, final_div_factor)
    return _phases.from_phases(
        [
            Phase(b1, low, peak),
            Phase(V.sanitize_length(xp, b2 - b1), peak, low),
            Phase(V.sanitize_length(xp, V.sanitize_length(xp, transition_steps) - b2), low, final),
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

    .. math::
      v(t) = \begin{cases}
        \tfrac{P}{d} + \left(P - \tfrac{P}{d}\right) \tfrac{1 - \cos(\pi t / T_1)}{2} & t < T_1 \\
        \tfrac{P}{d f} + \left(P - \tfrac{P}{d f}\right) \tfrac{1 + \cos(\pi (t - T_1) / (T - T_1))}{2}
          & T_1 \le t < T \\
        \tfrac{P}{d f} & t \ge T
      \end{cases} \qquad T_1 = \lfloor p_s T \rfloor

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      transition_steps: length ``T`` of the cycle; the value holds at its end afterwards.
      peak_value: the peak ``P``, reached at ``T_1 = int(pct_start T)``.
      pct_start: fraction ``p_s`` of the cycle spent going up.
      div_factor: ``d``: the cycle starts at ``P / d``.
      final_div_factor: ``f``: the cycle ends at ``P / (d f)``.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.cosine_onecycle_schedule(100, 1.0)
      >>> float(s(30))
      1.0
    """
    _check_onecycle(transition_steps, peak_value, pct_start, div_factor, final_div_factor)
    b1 = _onecycle_bound(pct_start, transition_steps)
    xp = V.xp_for(peak_value, div_factor, final_div_factor, b1, transition_steps)
    peak, low, final = _onecycle_levels(xp, peak_value, div_factor, final_div_factor)
    return _phases.from_phases(
        [
            Phase(b1, low, peak, "cosine"),
            Phase(V.sanitize_length(xp, V.sanitize_length(xp, transition_steps) - b1), peak, final, "cosine"),
        ]
    )
