"""Warmup shapes and the ways to put a warmup in front of (or over) a schedule.

Warmup shapes (``warmup_shape=`` on every ``warmup_*`` schedule), with ``I`` the init value, ``P`` the peak,
``W`` the warmup length and ``p = t / W``:

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

import jax
import jax.numpy as jnp

from optax_warmup import _phases, _shapes
from optax_warmup import _validate as V
from optax_warmup._phases import Phase, PhaseSchedule

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]


def check_warmup_args(
    init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent,
    names=("init_value", "peak_value", "warmup_steps", "warmup_shape", "warmup_exponent"),
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


def ramp_param(warmup_shape: str, warmup_exponent):
    """The phase parameter of a warmup shape: the exponent for ``"polynomial"``, 1 (plain half cosine) else."""
    return warmup_exponent if warmup_shape == "polynomial" else 1.0


def exponential_factor(count, warmup_steps) -> jax.Array:
    """``1 - exp(-t / tau)`` with ``tau = warmup_steps / 2``; 1 everywhere when ``warmup_steps == 0``."""
    c = V.as_count(count)
    w = V.sanitize_length(jnp, warmup_steps)
    tau = jnp.where(w > 0, w / 2.0, 1.0)
    return jnp.where(w > 0, -jnp.expm1(-c / tau), 1.0).astype(V.float_dtype())


def exponential_approach(init_value, base, count, warmup_steps) -> jax.Array:
    """The ``"exponential"`` warmup over a value: ``I + (base - I) (1 - exp(-t / tau))``, ``tau = W / 2``."""
    init = V.sanitize_value(jnp, init_value)
    return (init + (base - init) * exponential_factor(count, warmup_steps)).astype(V.float_dtype())


def warmup_then(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent, rest: Sequence[Phase]):
    """A warmup phase from ``init_value`` to ``peak_value`` followed by the phases ``rest``."""
    check_warmup_args(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent)
    if warmup_shape != "exponential":
        ramp = Phase(warmup_steps, init_value, peak_value, warmup_shape, ramp_param(warmup_shape, warmup_exponent))
        return _phases.phase_schedule([ramp, *rest])
    base = _phases.phase_schedule([Phase(warmup_steps, peak_value, peak_value), *rest])
    return exponential_overlay(base, init_value, warmup_steps)


def exponential_overlay(base: Schedule, init_value, warmup_steps) -> Schedule:
    def schedule(count):
        return exponential_approach(init_value, base(count), count, warmup_steps)

    return schedule


def warmup_schedule(
    init_value: jax.typing.ArrayLike,
    peak_value: jax.typing.ArrayLike,
    warmup_steps: jax.typing.ArrayLike,
    shape: str = "linear",
    exponent: jax.typing.ArrayLike = 2.0,
) -> Schedule:
    r"""A warmup that ramps from ``init_value`` to ``peak_value`` over ``warmup_steps``, then holds the peak.

    .. math::
      v(t) = \begin{cases} I + (P - I)\, f(t / W) & t < W \\ P & t \ge W \end{cases}

    with ``f`` the warmup shape (see the module docstring of ``optax_warmup._warmup``; ``"exponential"`` is the
    saturating ``I + (P - I)(1 - e^{-2t/W})``, which never quite reaches the peak).

    Args:
      init_value: value at count 0.
      peak_value: value held from ``warmup_steps`` on.
      warmup_steps: length of the ramp; 0 means the peak from count 0.
      shape: ``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"`` or ``"exponential"``.
      exponent: the power ``k`` of the ``"polynomial"`` shape ``(t / W)**k``.

    Returns:
      A schedule ``count -> value``. Every numeric argument may be a traced array.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.warmup_schedule(0.0, 1.0, 100, shape="cosine")
      >>> float(s(50)), float(s(100)), float(s(1000))
      (0.5, 1.0, 1.0)
    """
    check_warmup_args(init_value, peak_value, warmup_steps, shape, exponent,
                      names=("init_value", "peak_value", "warmup_steps", "shape", "exponent"))
    return warmup_then(init_value, peak_value, warmup_steps, shape, exponent, [])


def warmup_factor(
    warmup_steps: jax.typing.ArrayLike,
    shape: str = "linear",
    init_factor: jax.typing.ArrayLike = 0.0,
    exponent: jax.typing.ArrayLike = 2.0,
) -> Schedule:
    """The unit warmup ``count -> factor``: ``warmup_schedule(init_factor, 1.0, warmup_steps, shape, exponent)``.

    Multiply any rate by it; it is what ``scale_by_warmup`` and ``warmup_overlay`` apply.

    Example:
      >>> import optax_warmup as ow
      >>> float(ow.warmup_factor(4)(1))
      0.25
    """
    check_warmup_args(init_factor, 1.0, warmup_steps, shape, exponent,
                      names=("init_factor", "1.0", "warmup_steps", "shape", "exponent"))
    return warmup_schedule(init_factor, 1.0, warmup_steps, shape, exponent)


def with_warmup(
    schedule: Schedule,
    warmup_steps: jax.typing.ArrayLike,
    init_value: jax.typing.ArrayLike = 0.0,
    warmup_shape: str = "linear",
    *,
    warmup_exponent: jax.typing.ArrayLike = 2.0,
) -> Schedule:
    r"""Puts a warmup in front of any schedule, shifting the schedule by ``warmup_steps``.

    .. math::
      v(t) = \begin{cases} \mathrm{ramp}(I \to S(0))(t) & t < W \\ S(t - W) & t \ge W \end{cases}

    The ramp ends at ``schedule(0)``, so the result is continuous. For the multiplicative form that does not
    shift the schedule, see ``warmup_overlay``.

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
    V.check_nonnegative("warmup_steps", warmup_steps)
    if not callable(schedule):
        raise TypeError(f"schedule must be callable (count -> value), got {type(schedule).__name__}")
    # Checked here under this function's names (warmup_schedule's messages say shape=, exponent=).
    check_warmup_args(init_value, 1.0, warmup_steps, warmup_shape, warmup_exponent)
    target = schedule(0) if isinstance(schedule, PhaseSchedule) else None
    if target is not None:
        target = target if V.is_traced(target) else float(target)
        ramp = warmup_schedule(init_value, target, warmup_steps, warmup_shape, warmup_exponent)
        if isinstance(ramp, PhaseSchedule):
            w = V.sanitize_length(V.xp_for(warmup_steps), warmup_steps)
            return _phases.merge_phase_schedules([ramp, schedule], [w])

    def shifted(count):
        c = V.as_count(count)
        w = V.sanitize_length(jnp, warmup_steps)
        after = jnp.asarray(schedule(jnp.maximum(c - w, 0.0)), V.float_dtype())
        peak = jnp.asarray(schedule(jnp.zeros((), V.float_dtype())), V.float_dtype())
        if warmup_shape == "exponential":
            return exponential_approach(init_value, after, c, w)
        ramp = warmup_schedule(init_value, peak, w, warmup_shape, warmup_exponent)(c)
        return jnp.where(c < w, ramp, after)

    return shifted


def warmup_overlay(
    schedule: Schedule,
    warmup_steps: jax.typing.ArrayLike,
    init_factor: jax.typing.ArrayLike = 0.0,
    warmup_shape: str = "linear",
    *,
    warmup_exponent: jax.typing.ArrayLike = 2.0,
) -> Schedule:
    r"""Multiplies any schedule by a warmup factor, without shifting it: ``v(t) = f(t) S(t)``.

    ``f`` ramps from ``init_factor`` to 1 over ``warmup_steps`` (``warmup_factor``). This is how Ma & Yarats and
    ``pytorch_warmup`` apply a warmup: the main schedule keeps its own clock.

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
    factor = warmup_factor(warmup_steps, warmup_shape, init_factor, warmup_exponent)

    def overlaid(count):
        # A huge traced init_factor times a huge value would overflow to inf: clamp like every other value.
        return V.sanitize_value(jnp, factor(count) * jnp.asarray(schedule(count), V.float_dtype()))

    return overlaid
