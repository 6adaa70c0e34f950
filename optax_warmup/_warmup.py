"""Warmup shapes and the ways to put a warmup in front of (or over) a schedule.

Warmup shapes (``warmup_shape=`` wherever a warmup is chosen), with ``I`` the init value, ``P`` the peak, ``W`` the
warmup length and ``p = t / W``:

* ``"linear"``: ``I + (P - I) p`` (Optax's warmup; the default).
* ``"cosine"``: ``I + (P - I) (1 - cos(pi p)) / 2``, a half-cosine ramp.
* ``"polynomial"``: ``I + (P - I) p**k`` with ``k = warmup_exponent`` (default 2).
* ``"geometric"``: ``I (P / I)**p``, an exponential increase; needs ``I > 0`` and ``P > 0``.
* ``"exponential"``: the saturating ``1 - exp(-t / tau)`` of Ma & Yarats (2021), applied as a factor over the
  whole schedule: ``v(t) = I + (S(t) - I) (1 - exp(-t / tau))`` where ``S`` is the same schedule without a ramp
  (it holds the peak during the first ``W`` steps). ``tau = W / 2``: Ma & Yarats pair a linear warmup over
  ``2 / (1 - b2)`` steps with ``tau = 1 / (1 - b2)``, and with ``tau = W / 2`` both warmups withhold the same
  total learning rate (the area between the ramp and the peak is ``W / 2`` peak-steps for both). It is the only
  shape that does not reach the peak at ``W``: it is ``1 - e**-2 = 86.5%`` of the way there at ``W``, 98.2% at
  ``2 W``, 99.75% at ``3 W``.

Every other shape reaches the peak exactly at count ``W``. ``W = 0`` means no warmup: the peak from count 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from optax_warmup import _numeric as N
from optax_warmup import _phases, _shapes
from optax_warmup import _validate as V
from optax_warmup._deprecation import old_warmup_spelling
from optax_warmup._phases import Phase, PhaseSchedule

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]
ArrayLike = jax.typing.ArrayLike


def check_warmup_args(
    init_value: Any, peak_value: Any, warmup_steps: Any, warmup_shape: Any, warmup_exponent: Any,
    names: tuple[str, ...] = ("init_value", "peak_value", "warmup_steps", "warmup_shape", "warmup_exponent"),
) -> None:
    """Checks the warmup arguments; ``names`` are the caller's names for them, used in the messages."""
    init_name, peak_name, steps_name, shape_name, exponent_name = names
    V.check_finite(init_name, init_value)
    V.check_finite(peak_name, peak_value)
    V.check_nonnegative(steps_name, warmup_steps)
    V.check_choice(shape_name, warmup_shape, _shapes.WARMUP_SHAPES)
    V.check_nonnegative(exponent_name, warmup_exponent)
    if warmup_shape == "geometric":
        iv = V.concrete(init_name, init_value)
        pv = V.concrete(peak_name, peak_value)
        if (iv is not None and iv <= 0) or (pv is not None and pv <= 0):
            raise ValueError(
                f"{shape_name}='geometric' needs {init_name} > 0 and {peak_name} > 0, got {init_name}={init_value!r}, "
                f"{peak_name}={peak_value!r}"
            )


def ramp_param(warmup_shape: str, warmup_exponent: Any) -> Any:
    """The phase parameter of a warmup shape: the exponent for ``"polynomial"``, 1 (plain half cosine) else."""
    return warmup_exponent if warmup_shape == "polynomial" else 1.0


# --- builders (arguments already checked and clamped) ---------------------------------------------------------------


def exponential_overlay(schedule: PhaseSchedule, init: Any, w: Any) -> PhaseSchedule:
    """The ``"exponential"`` warmup over a schedule: ``I + (S(t) - I) (1 - exp(-2 t / W))``; nothing when W is 0."""
    if N.is_const(w) or not V.is_traced(w):
        if float(w) == 0.0:
            return schedule
    return _phases.overlay(schedule, init, _phases.SATURATE, 0.0, w / 2.0, 0.0, 1.0)


def ramp_then(init: Any, peak: Any, w: Any, warmup_shape: str, warmup_exponent: Any,
              rest: Sequence[Phase]) -> PhaseSchedule:
    """A warmup from ``init`` to ``peak`` over ``w`` steps followed by the phases ``rest`` (all clamped)."""
    if warmup_shape != "exponential":
        ramp = Phase(w, init, peak, warmup_shape, ramp_param(warmup_shape, warmup_exponent))
        return _phases.from_phases([ramp, *rest])
    return exponential_overlay(_phases.from_phases([Phase(w, peak, peak), *rest]), init, w)


def warmup_in_front(schedule: PhaseSchedule, target: Any, init: Any, w: Any, warmup_shape: str,
                    warmup_exponent: Any) -> PhaseSchedule:
    """A ramp from ``init`` to ``target`` over ``w`` steps, then ``schedule`` shifted by ``w`` (all clamped)."""
    if warmup_shape != "exponential":
        ramp = _phases.from_phases([Phase(w, init, target, warmup_shape, ramp_param(warmup_shape, warmup_exponent))])
        return _phases.join([ramp, schedule], [w])
    hold = _phases.from_phases([Phase(w, target, target)])
    return exponential_overlay(_phases.join([hold, schedule], [w]), init, w)


def factor_layer(schedule: PhaseSchedule, w: Any, init_factor: Any, warmup_shape: str,
                 warmup_exponent: Any) -> PhaseSchedule:
    """``schedule`` times the warmup factor from ``init_factor`` to 1 over ``w`` steps (all clamped)."""
    if not V.is_traced(w) and float(w) == 0.0:
        return schedule
    if warmup_shape == "exponential":
        return _phases.overlay(schedule, 0.0, _phases.SATURATE, 0.0, w / 2.0, init_factor, 1.0)
    return _phases.overlay(schedule, 0.0, warmup_shape, 0.0, w, init_factor, 1.0,
                           ramp_param(warmup_shape, warmup_exponent))


def as_phase_schedule(schedule: Callable) -> PhaseSchedule:
    """Ours as it is; any other ``count -> value`` function as a one-segment schedule of the engine."""
    return schedule if isinstance(schedule, PhaseSchedule) else _phases.from_function(schedule)


# --- public -----------------------------------------------------------------------------------------------------


@old_warmup_spelling("init_value", "peak_value", "warmup_steps", "shape", "exponent")
def warmup_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""A warmup that ramps from ``init_value`` to ``peak_value`` over ``warmup_steps``, then holds the peak.

    .. math::
      v(t) = \begin{cases} I + (P - I)\, f(t / W) & t < W \\ P & t \ge W \end{cases}

    with ``f`` the warmup shape (see the module docstring of ``optax_warmup._warmup``; ``"exponential"`` is the
    saturating ``I + (P - I)(1 - e^{-2t/W})``, which never quite reaches the peak).

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      init_value: value at count 0.
      peak_value: value held from ``warmup_steps`` on.
      warmup_steps: length of the ramp; 0 means the peak from count 0.
      warmup_shape: ``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"`` or ``"exponential"``.
      warmup_exponent: the power ``k`` of the ``"polynomial"`` shape ``(t / W)**k``.

    Returns:
      A schedule ``count -> value``. Every numeric argument may be a traced array.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.warmup_schedule(0.0, 1.0, 100, warmup_shape="cosine")
      >>> float(s(50)), float(s(100)), float(s(1000))
      (0.5, 1.0, 1.0)
    """
    check_warmup_args(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent)
    return ramp_then(V.clamp_value(init_value), V.clamp_value(peak_value), V.clamp_length(warmup_steps),
                     warmup_shape, V.clamp_exponent(warmup_exponent), [])


@old_warmup_spelling("warmup_steps", "shape", "init_factor", "exponent")
def warmup_factor(
    warmup_steps: ArrayLike,
    init_factor: ArrayLike = 0.0,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""The unit warmup ``count -> factor``: ``warmup_schedule(init_factor, 1.0, warmup_steps, ...)``.

    Multiply any rate by it; it is what ``scale_by_warmup`` and ``warmup_overlay`` apply.

    .. math::
      f(t) = f_0 + (1 - f_0)\, \rho\big(\min(t / W, 1)\big), \qquad \rho(p) = p \ \text{(linear)}

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      warmup_steps: warmup length ``W``.
      init_factor: the factor ``f_0`` at count 0.
      warmup_shape: shape of the warmup (``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"``,
        ``"exponential"``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.warmup_factor(4)(1))
      0.25
    """
    check_warmup_args(init_factor, 1.0, warmup_steps, warmup_shape, warmup_exponent,
                      names=("init_factor", "1.0", "warmup_steps", "warmup_shape", "warmup_exponent"))
    return ramp_then(V.clamp_value(init_factor), 1.0, V.clamp_length(warmup_steps), warmup_shape,
                     V.clamp_exponent(warmup_exponent), [])


@old_warmup_spelling("schedule", "warmup_steps", "init_value", "warmup_shape")
def with_warmup(
    schedule: Schedule,
    warmup_steps: ArrayLike,
    init_value: ArrayLike = 0.0,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""Puts a warmup in front of any schedule, shifting the schedule by ``warmup_steps``.

    .. math::
      v(t) = \begin{cases} \mathrm{ramp}(I \to S(0))(t) & t < W \\ S(t - W) & t \ge W \end{cases}

    The ramp ends at ``schedule(0)``, so the result is continuous. For the multiplicative form that does not
    shift the schedule, see ``warmup_overlay``. A schedule of this library merges with the ramp into one phase
    list; any other callable (an Optax schedule) becomes one segment of it, evaluated only once the ramp is over
    when the count is a scalar.

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      schedule: any schedule ``count -> value`` (ours or Optax's).
      warmup_steps: length of the ramp (may be traced).
      init_value: value at count 0.
      warmup_shape: a warmup shape (see ``warmup_schedule``).
      warmup_exponent: the power of the ``"polynomial"`` shape.

    Example:
      >>> import optax, optax_warmup as ow
      >>> s = ow.with_warmup(optax.exponential_decay(1.0, 10, 0.5), warmup_steps=5)
      >>> float(s(0)), float(s(5)), float(s(15))
      (0.0, 1.0, 0.5)
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be callable (count -> value), got {type(schedule).__name__}")
    check_warmup_args(init_value, 1.0, warmup_steps, warmup_shape, warmup_exponent)
    target: Any = schedule(0) if isinstance(schedule, PhaseSchedule) else schedule(jnp.zeros((), N.float_dtype()))
    if not V.is_traced(target):
        target = float(jnp.asarray(target))
        if warmup_shape == "geometric" and not target > 0:
            raise ValueError(f"warmup_shape='geometric' needs schedule(0) > 0 (the end of the ramp), got {target!r}")
    return warmup_in_front(as_phase_schedule(schedule), V.clamp_value(target), V.clamp_value(init_value),
                           V.clamp_length(warmup_steps), warmup_shape, V.clamp_exponent(warmup_exponent))


@old_warmup_spelling("schedule", "warmup_steps", "init_factor", "warmup_shape")
def warmup_overlay(
    schedule: Schedule,
    warmup_steps: ArrayLike,
    init_factor: ArrayLike = 0.0,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""Multiplies any schedule by a warmup factor, without shifting it: ``v(t) = f(t) S(t)``.

    ``f`` ramps from ``init_factor`` to 1 over ``warmup_steps`` (``warmup_factor``). This is how Ma & Yarats and
    ``pytorch_warmup`` apply a warmup: the main schedule keeps its own clock.

    .. math::
      v(t) = f(t)\, S(t), \qquad f(t) = f_0 + (1 - f_0)\, \rho\big(\min(t / W, 1)\big)

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      schedule: the schedule ``S`` to multiply, any ``count -> value``.
      warmup_steps: warmup length ``W``.
      init_factor: the factor ``f_0`` at count 0.
      warmup_shape: shape of the warmup (``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"``,
        ``"exponential"``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.warmup_overlay(ow.linear_schedule(1.0, 0.0, 100), warmup_steps=10)
      >>> round(float(s(5)), 4), round(float(s(50)), 4)
      (0.475, 0.5)
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be callable (count -> value), got {type(schedule).__name__}")
    check_warmup_args(init_factor, 1.0, warmup_steps, warmup_shape, warmup_exponent,
                      names=("init_factor", "1.0", "warmup_steps", "warmup_shape", "warmup_exponent"))
    return factor_layer(as_phase_schedule(schedule), V.clamp_length(warmup_steps), V.clamp_value(init_factor),
                        warmup_shape, V.clamp_exponent(warmup_exponent))
