"""Warmup-first schedules: Optax's ``warmup_*`` drop-ins and ours (WSD, rsqrt, restarts, ...).

Every ``warmup_*`` schedule takes ``warmup_shape=`` (default ``"linear"``, which gives Optax's values) and
``warmup_exponent=`` (the power of the ``"polynomial"`` shape); see ``optax_warmup._warmup`` for the shapes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax

from optax_warmup import _decay, _phases, _shapes, _warmup
from optax_warmup import _validate as V
from optax_warmup._phases import POWER, Phase, PhaseSchedule, Segment

ArrayLike = jax.typing.ArrayLike


def _check_total(decay_steps: Any, warmup_steps: Any) -> None:
    V.check_positive("decay_steps", decay_steps)
    V.check_at_least("decay_steps", decay_steps, "warmup_steps", warmup_steps, strict=True)


def _after_warmup(decay_steps: Any, w: Any) -> Any:
    """``decay_steps - W`` (clamped), the decay phase of a schedule whose ``decay_steps`` includes the warmup."""
    return V.clamp_length(V.clamp_length(decay_steps) - w)


class _Warmup:
    """The warmup arguments of a ``warmup_*`` schedule, checked and clamped once."""

    def __init__(self, init_value: Any, peak_value: Any, warmup_steps: Any, warmup_shape: str, warmup_exponent: Any):
        _warmup.check_warmup_args(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent)
        self.init, self.peak = V.clamp_value(init_value), V.clamp_value(peak_value)
        self.steps, self.shape = V.clamp_length(warmup_steps), warmup_shape
        self.exponent = V.clamp_exponent(warmup_exponent)

    def then(self, rest: list[Phase]) -> PhaseSchedule:
        """The ramp to the peak, then the phases ``rest``."""
        return _warmup.ramp_then(self.init, self.peak, self.steps, self.shape, self.exponent, rest)

    def before(self, tail: PhaseSchedule) -> PhaseSchedule:
        """The ramp to the peak, then ``tail`` on the count after the warmup."""
        return _warmup.warmup_in_front(tail, self.peak, self.init, self.steps, self.shape, self.exponent)


def warmup_constant_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""Warmup from ``init_value`` to ``peak_value``, then constant. Optax's, plus shapes.

    .. math::
      v(t) = I + (P - I) \min(t / W, 1)

    ``warmup_steps == 0`` gives the peak from count 0 (Optax gives ``init_value`` forever).

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      init_value: value at count 0.
      peak_value: value at the end of the warmup.
      warmup_steps: warmup length ``W`` (0: start at the peak).
      warmup_shape: shape of the warmup (``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"``,
        ``"exponential"``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.warmup_constant_schedule(0.0, 1.0, 10)(5))
      0.5
    """
    return _Warmup(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent).then([])


def warmup_cosine_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    decay_steps: ArrayLike,
    end_value: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""Warmup, then cosine decay to ``end_value``. Optax's, with traceable ``peak_value`` and steps.

    .. math::
      v(t) = \begin{cases}
        I + (P - I)\, t / W & t < W \\
        E + (P - E) \left(\tfrac{1 + \cos(\pi (t - W) / (D - W))}{2}\right)^{k} & W \le t < D \\
        E & t \ge D
      \end{cases}

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      init_value: value at count 0.
      peak_value: value at the end of the warmup.
      warmup_steps: warmup length ``W`` (0: start at the peak).
      decay_steps: total length ``D``, warmup included (> ``W``).
      end_value: final value.
      exponent: the power ``k`` of the cosine factor.
      warmup_shape: shape of the warmup (``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"``,
        ``"exponential"``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110)
      >>> [round(float(s(t)), 4) for t in (5, 10, 60, 200)]
      [0.5, 1.0, 0.5, 0.0]
    """
    warmup = _Warmup(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent)
    _check_total(decay_steps, warmup_steps)
    V.check_finite("end_value", end_value)
    V.check_nonnegative("exponent", exponent)
    length = _after_warmup(decay_steps, warmup.steps)
    return warmup.then([Phase(length, warmup.peak, V.clamp_value(end_value), "cosine", V.clamp_exponent(exponent))])


def warmup_linear_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    decay_steps: ArrayLike,
    end_value: ArrayLike = 0.0,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""Warmup, then linear decay to ``end_value`` at ``decay_steps`` (warmup included), as HF's ``linear``.

    .. math::
      v(t) = P + (E - P) \frac{t - W}{D - W} \quad (W \le t < D)

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      init_value: value at count 0.
      peak_value: value at the end of the warmup.
      warmup_steps: warmup length ``W`` (0: start at the peak).
      decay_steps: total length ``D``, warmup included (> ``W``).
      end_value: final value.
      warmup_shape: shape of the warmup (``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"``,
        ``"exponential"``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.warmup_linear_decay_schedule(0.0, 1.0, 10, 110)(60))
      0.5
    """
    return warmup_polynomial_decay_schedule(
        init_value, peak_value, warmup_steps, decay_steps, end_value, 1.0,
        warmup_shape=warmup_shape, warmup_exponent=warmup_exponent,
    )


def warmup_polynomial_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    decay_steps: ArrayLike,
    end_value: ArrayLike = 0.0,
    power: ArrayLike = 1.0,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""Warmup, then polynomial decay ``E + (P - E)(1 - (t - W)/(D - W))**power``, as HF's ``polynomial``.

    .. math::
      v(t) = \begin{cases}
        \mathrm{warmup}(t) & t < W \\
        E + (P - E) \left(1 - \frac{t - W}{D - W}\right)^{k} & W \le t < D \\
        E & t \ge D
      \end{cases}

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      init_value: value at count 0.
      peak_value: value at the end of the warmup.
      warmup_steps: warmup length ``W`` (0: start at the peak).
      decay_steps: total length ``D``, warmup included (> ``W``).
      end_value: final value.
      power: the power ``k`` of the decay.
      warmup_shape: shape of the warmup (``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"``,
        ``"exponential"``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.warmup_polynomial_decay_schedule(0.0, 1.0, 10, 110, power=2.0)(60))
      0.25
    """
    warmup = _Warmup(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent)
    _check_total(decay_steps, warmup_steps)
    V.check_finite("end_value", end_value)
    V.check_nonnegative("power", power)
    length = _after_warmup(decay_steps, warmup.steps)
    end = V.clamp_value(end_value)
    return warmup.then([Phase(length, warmup.peak, end, "polynomial_decay", V.clamp_exponent(power))])


def warmup_exponential_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    transition_steps: ArrayLike,
    decay_rate: ArrayLike,
    transition_begin: ArrayLike = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""Warmup, then ``exponential_decay(peak_value, ...)`` on the count after the warmup. Optax's.

    .. math::
      v(t) = \begin{cases}
        \mathrm{warmup}(t) & t < W \\
        P\, r^{\max(t - W - B, 0) / T} \ \text{(exponent floored if staircase; bounded by } E \text{)} & t \ge W
      \end{cases}

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      init_value: value at count 0.
      peak_value: value at the end of the warmup.
      warmup_steps: warmup length ``W`` (0: start at the peak).
      transition_steps: steps ``T`` per factor of ``decay_rate`` (> 0).
      decay_rate: the factor ``r`` (> 0).
      transition_begin: counts ``B`` after the warmup before the decay starts.
      staircase: decay in whole steps of ``transition_steps``.
      end_value: the bound ``E`` of the decay, or ``None``.
      warmup_shape: shape of the warmup (``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"``,
        ``"exponential"``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.warmup_exponential_decay_schedule(0.0, 1.0, 10, 10, 0.5)(30))
      0.25
    """
    warmup = _Warmup(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent)
    _decay.check_exponential_decay(transition_steps, decay_rate, transition_begin, staircase, end_value)
    tail = _decay.exponential_piece(warmup.peak, transition_steps, decay_rate, transition_begin, staircase, end_value)
    return warmup.before(tail)


def warmup_rsqrt_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    timescale: ArrayLike | None = None,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""Warmup, then inverse-square-root decay (as HF's ``inverse_sqrt``, T5, big_vision).

    .. math::
      v(t) = P \sqrt{\frac{\tau}{t - W + \tau}} \quad (t \ge W)

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      timescale: ``tau``; defaults to ``max(warmup_steps, 1)``, so the value at ``t = 4W`` is half the peak.
      init_value: value at count 0.
      peak_value: value at the end of the warmup.
      warmup_steps: warmup length ``W`` (0: start at the peak).
      warmup_shape: shape of the warmup (``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"``,
        ``"exponential"``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.warmup_rsqrt_schedule(0.0, 1.0, 100)(400))
      0.5
    """
    warmup = _Warmup(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent)
    if timescale is not None:
        V.check_positive("timescale", timescale)
    tau = warmup.steps if timescale is None else V.clamp_length(timescale)
    tau = V.xp_for(tau).where(tau > 0, tau, 1.0)
    # P sqrt(tau / (t + tau)) = P (1 + t / tau)**-0.5, t the count after the warmup.
    tail = _phases.from_segments([Segment(0.0, 0.0, tau, warmup.peak, V._MAX_VALUE, POWER, 0.5)])
    return warmup.before(tail)


def noam_schedule(d_model: ArrayLike, warmup_steps: ArrayLike, scale: ArrayLike = 1.0) -> PhaseSchedule:
    r"""The schedule of "Attention Is All You Need" (Vaswani et al., 2017), a.k.a. Noam.

    .. math::
      v(k) = s \cdot d^{-1/2} \min\left(n^{-1/2},\; n W^{-3/2}\right), \qquad n = k + 1

    The paper counts steps from 1, so Optax count ``k`` (the first update has ``k = 0``) is step ``n = k + 1``.
    The peak, ``s / sqrt(d W)``, is at ``n = W``. ``warmup_steps == 0`` gives the pure ``s / sqrt(d n)`` decay.

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      d_model: the model width ``d``.
      warmup_steps: ``W``: the peak is at step ``n = W``; 0 gives the pure decay.
      scale: the factor ``s``.

    Example:
      >>> import optax_warmup as ow
      >>> round(float(ow.noam_schedule(512, 4000)(3999)), 7)
      0.0006988
    """
    V.check_positive("d_model", d_model)
    V.check_nonnegative("warmup_steps", warmup_steps)
    V.check_nonnegative("scale", scale)
    w, d = V.clamp_length(warmup_steps), V.clamp_length(d_model)
    xp = V.xp_for(w, d, scale)
    d = xp.maximum(d, 1e-12)
    tau = xp.maximum(w, 1.0)  # W < 1 has no ramp: min(n**-0.5, n W**-1.5) = n**-0.5 for every n >= 1
    # scale is >= 0 (clamped like a length when traced); the values are clamped like every value.
    peak = V.sanitize_value(xp, V.clamp_length(scale) / xp.sqrt(d * tau))
    first = V.sanitize_value(xp, peak / tau)
    # n W**-1.5 is linear in n = count + 1: from first (n = 1) to the peak (n = W); then peak (n / W)**-0.5,
    # which is peak (1 + (count - (W - 1)) / W)**-0.5.
    return _phases.from_segments([
        Segment(0.0, 0.0, tau - 1.0, first, peak, "linear"),
        Segment(tau - 1.0, tau - 1.0, tau, peak, V._MAX_VALUE, POWER, 0.5),
    ])


def warmup_stable_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    stable_steps: ArrayLike,
    decay_steps: ArrayLike,
    end_value: ArrayLike = 0.0,
    decay_shape: str = "linear",
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""Warmup-stable-decay (WSD, trapezoid): warmup, hold the peak, then a cooldown. Three separate lengths.

    .. math::
      v(t) = \begin{cases}
        \mathrm{warmup}(t) & t < W \\
        P & W \le t < W + S \\
        E + (P - E)\, g\big((t - W - S) / D\big) & W + S \le t < W + S + D \\
        E & \text{after}
      \end{cases}

    Decay shapes ``g`` (fraction of the way still to go): ``"linear"`` ``1 - p``; ``"cosine"``
    ``(1 + cos(pi p)) / 2``; ``"1-sqrt"`` ``1 - sqrt(p)`` (Hägele et al., 2024); ``"square"`` ``1 - p**2``;
    ``"exponential"`` the geometric ``P (E / P)**p`` (needs ``E > 0``).

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      init_value: value at count 0.
      peak_value: value at the end of the warmup.
      warmup_steps: warmup length ``W`` (0: start at the peak).
      stable_steps: steps ``S`` at the peak after the warmup.
      decay_steps: length ``D`` of the decay, after the stable phase (not the total).
      end_value: final value.
      decay_shape: ``g``: ``"linear"``, ``"cosine"``, ``"1-sqrt"``, ``"square"`` or ``"exponential"``.
      warmup_shape: shape of the warmup (``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"``,
        ``"exponential"``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.warmup_stable_decay_schedule(0.0, 1.0, 10, 80, 10, decay_shape="1-sqrt")
      >>> round(float(s(95)), 4)
      0.2929
    """
    warmup = _Warmup(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent)
    V.check_nonnegative("stable_steps", stable_steps)
    V.check_nonnegative("decay_steps", decay_steps)
    V.check_finite("end_value", end_value)
    V.check_choice("decay_shape", decay_shape, tuple(_shapes.WSD_DECAY_SHAPES))
    if decay_shape == "exponential":
        for name, value in (("end_value", end_value), ("peak_value", peak_value)):
            v = V.concrete(name, value)
            if v is not None and v <= 0:
                raise ValueError(f"decay_shape='exponential' needs {name} > 0, got {value!r}")
    end = V.clamp_value(end_value)
    return warmup.then([
        Phase(V.clamp_length(stable_steps), warmup.peak, warmup.peak),
        Phase(V.clamp_length(decay_steps), warmup.peak, end, _shapes.WSD_DECAY_SHAPES[decay_shape]),
    ])


def warmup_cosine_restarts_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    cycle_steps: ArrayLike,
    cycle_mult: ArrayLike = 1.0,
    peak_decay: ArrayLike = 1.0,
    end_value: ArrayLike = 0.0,
    num_cycles: ArrayLike | None = None,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""SGDR-style cosine cycles (Loshchilov & Hutter, 2017) where every cycle warms up again.

    Cycle ``i`` lasts ``L_i = cycle_steps * cycle_mult**i`` steps (warmup included) and peaks at
    ``P_i = peak_value * peak_decay**i``: it ramps from ``init_value`` to ``P_i`` over ``min(W, L_i)`` steps, then
    follows a half cosine down to ``end_value`` at its end. After ``num_cycles`` cycles (``None``: forever) the
    value stays at ``end_value``. Everything, ``num_cycles`` included, may be traced: the cycle of a count is
    found in closed form (``log`` for ``cycle_mult > 1``), not by a loop.

    .. math::
      v(t) = \begin{cases}
        \mathrm{warmup}_{I \to P_i}(u) & u < \min(W, L_i) \\
        E + (P_i - E) \tfrac{1 + \cos(\pi (u - W) / (L_i - W))}{2} & W \le u < L_i
      \end{cases} \qquad u = t - \sum_{j < i} L_j, \; L_i = T m^i, \; P_i = P \gamma^i

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      cycle_steps: length of the first cycle (> 0).
      cycle_mult: growth factor of the cycle length (>= 1), timm's ``cycle_mul``.
      peak_decay: factor applied to the peak at each restart, timm's ``cycle_decay``.
      num_cycles: number of cycles, or ``None`` for no limit.
      init_value: value at count 0.
      peak_value: value at the end of the warmup.
      warmup_steps: warmup length ``W`` (0: start at the peak).
      end_value: value at the end of every cycle, and after the last.
      warmup_shape: shape of the warmup (``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"``,
        ``"exponential"``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.warmup_cosine_restarts_schedule(0.0, 1.0, 10, 100, peak_decay=0.5)
      >>> float(s(10)), float(s(105)), float(s(110))
      (1.0, 0.25, 0.5)
    """
    warmup = _Warmup(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent)
    V.check_positive("cycle_steps", cycle_steps)
    V.check_finite("cycle_mult", cycle_mult)
    V.check_at_least("cycle_mult", cycle_mult, "1", 1.0)
    V.check_nonnegative("peak_decay", peak_decay)
    V.check_finite("end_value", end_value)
    if num_cycles is not None:
        V.check_positive("num_cycles", num_cycles)
    first = V.xp_for(cycle_steps).maximum(V.clamp_length(cycle_steps), 1e-6)
    mult = V.xp_for(cycle_mult).maximum(V.clamp_value(cycle_mult), 1.0)
    # peak_decay > 1 grows the peak without bound: the peak is clamped (0 * inf would be NaN).
    decay = V.xp_for(peak_decay).maximum(V.clamp_value(peak_decay), 0.0)
    limit = V._MAX_LENGTH if num_cycles is None else V.clamp_length(num_cycles)
    # One segment whose kind finds the cycle of a count in closed form; the cycle parameters are extra columns,
    # so a join of restarts schedules is still one gather and one evaluation.
    extra = (warmup.peak, warmup.steps, mult, decay, limit)
    k = _warmup.ramp_param(warmup.shape, warmup.exponent)
    end = V.clamp_value(end_value)
    kind = f"{_phases.RESTARTS}:{warmup.shape}"
    return _phases.from_segments([Segment(0.0, 0.0, first, warmup.init, end, kind, k, None, extra)])


def sgdr_schedule(cosine_kwargs: Iterable[dict]) -> PhaseSchedule:
    r"""Optax's ``sgdr_schedule``: ``warmup_cosine_decay_schedule`` cycles, one per dict, joined end to end.

    Each dict holds the arguments of ``warmup_cosine_decay_schedule``; cycle ``i`` starts where the
    ``decay_steps`` of the cycles before it add up to. Unlike Optax's nested joins, the cycles are merged into
    one phase list, so the compiled program does not grow with the number of cycles.

    .. math::
      v(t) = S_i(t - c_i) \quad (c_i \le t < c_{i+1}), \qquad c_i = \sum_{j < i} D_j

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      cosine_kwargs: one dict of ``warmup_cosine_decay_schedule`` arguments per cycle (``init_value``, ``peak_value``,
        ``warmup_steps``, ``decay_steps``, ``end_value``, ...).

    Example:
      >>> import optax_warmup as ow
      >>> kw = dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100)
      >>> s = ow.sgdr_schedule([kw, kw])
      >>> float(s(105)), float(s(110))
      (0.5, 1.0)
    """
    cosine_kwargs = list(cosine_kwargs)
    if not cosine_kwargs:
        raise ValueError("cosine_kwargs must hold at least one dict of warmup_cosine_decay_schedule arguments")
    pieces: list[PhaseSchedule] = []
    boundaries: list[Any] = []
    for i, kwargs in enumerate(cosine_kwargs):
        if not isinstance(kwargs, dict) or "decay_steps" not in kwargs:
            raise ValueError(f"cosine_kwargs[{i}] must be a dict with decay_steps, got {kwargs!r}")
        pieces.append(warmup_cosine_decay_schedule(**kwargs))  # checks this cycle's arguments
        prev = boundaries[-1] if boundaries else 0.0
        boundaries.append(prev + V.clamp_length(kwargs["decay_steps"]))
    return _phases.join(pieces, boundaries[:-1])
