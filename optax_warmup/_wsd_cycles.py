"""Warmup-stable-decay cycles with re-warmup (WSD-S): several WSD cycles as one phase list on the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from optax_warmup import _duration, _phases, _shapes, _warmup
from optax_warmup import _numeric as N
from optax_warmup import _validate as V
from optax_warmup._phases import Phase, PhaseSchedule

ArrayLike = jax.typing.ArrayLike

# "exponential" is an overlay over a whole schedule (see _warmup.py), not a phase a cycle can restart.
CYCLE_WARMUP_SHAPES = tuple(s for s in _shapes.WARMUP_SHAPES if s != "exponential")


def _number_list(name: str, values: Any) -> list:
    if isinstance(values, str | Mapping) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{name} must be a non-empty list of numbers, got {values!r}")
    for i, v in enumerate(values):
        V.check_positive(f"{name}[{i}]", v)
    return list(values)


def cycle_lengths_from(cycle_lengths: Any, boundaries: Any) -> list:
    """The cycle lengths, from their lengths or from the counts where each cycle ends (exactly one is given)."""
    if (cycle_lengths is None) == (boundaries is None):
        raise ValueError(
            "give exactly one of cycle_lengths (steps of each cycle) and boundaries (the count where each ends), "
            f"got cycle_lengths={cycle_lengths!r}, boundaries={boundaries!r}"
        )
    if cycle_lengths is not None:
        return _number_list("cycle_lengths", cycle_lengths)
    ends: Any = _number_list("boundaries", boundaries)
    for i in range(1, len(ends)):
        V.check_at_least(f"boundaries[{i}]", ends[i], f"boundaries[{i - 1}]", ends[i - 1], strict=True)
    if V.any_traced(*ends):  # made non-decreasing, as join_schedules does with traced boundaries
        ends = jax.lax.cummax(V.sanitize_length(jnp, N.stack(jnp, ends)))
    # (Concrete ends stay Python numbers: a float32 difference would round a fraction of it differently.)
    return [ends[0], *(ends[i] - ends[i - 1] for i in range(1, len(ends)))]


def warmup_length(name: str, spec: Any, cycle: Any) -> Any:
    """A warmup duration (steps, or a fraction / percentage of its cycle), clamped to the cycle."""
    if not isinstance(spec, str | Mapping):
        V.check_nonnegative(name, spec)
    steps = _duration.duration_steps(spec, cycle, name=name)
    xp = V.xp_for(steps, cycle)
    return xp.minimum(V.sanitize_length(xp, steps), cycle)


def split_cycles(lengths: list, warmup_steps: Any, rewarmup_steps: Any, decay_fraction: Any):
    """Warmup, stable and decay lengths of every cycle, as three arrays (NumPy when all are concrete).

    With traced cycle lengths this is array arithmetic done once for all cycles, so a sweep over the lengths of
    many cycles compiles to a program that barely grows with their number.
    """
    xp = V.xp_for(*lengths)
    total = V.sanitize_length(xp, N.stack(xp, lengths))
    warm: Any
    cool: Any
    if xp is jnp:
        first = warmup_length("warmup_steps", warmup_steps, total[:1])
        rest = warmup_length("rewarmup_steps", rewarmup_steps, total[1:])
        warm = jnp.concatenate([jnp.broadcast_to(first, (1,)), jnp.broadcast_to(rest, total[1:].shape)])
        cool = _duration.duration_steps({"fraction": decay_fraction}, total, name="decay_fraction")
    else:  # one cycle at a time: the duration rule on Python numbers, so 0.15 * 80 is 12 steps, not 13
        specs = [("warmup_steps", warmup_steps)] + [("rewarmup_steps", rewarmup_steps)] * (len(lengths) - 1)
        warm = [warmup_length(name, spec, n) for (name, spec), n in zip(specs, lengths, strict=True)]
        cool = [_duration.duration_steps({"fraction": decay_fraction}, n, name="decay_fraction") for n in lengths]
        xp = V.xp_for(*warm, *cool)
        warm, cool = N.stack(xp, warm), N.stack(xp, cool)
    cool = xp.minimum(cool, total - warm)
    return warm, total - warm - cool, cool


def _check_positive_levels(shape_name: str, shape: str, pairs) -> None:
    for name, value in pairs:
        v = V.concrete(name, value)
        if v is not None and v <= 0:
            raise ValueError(f"{shape_name}={shape!r} needs {name} > 0, got {value!r}")


def warmup_stable_decay_cycles_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike | str | Mapping,
    cycle_lengths: Sequence[ArrayLike] | None = None,
    end_value: ArrayLike = 0.0,
    decay_fraction: ArrayLike = 0.2,
    decay_shape: str = "1-sqrt",
    *,
    boundaries: Sequence[ArrayLike] | None = None,
    rewarmup_steps: ArrayLike | str | Mapping = 0,
    rewarmup_value: ArrayLike | None = None,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""Warmup-stable-decay cycles (WSD-S): each cycle warms up (again), holds the peak, then cools down.

    Cycle ``i`` lasts ``L_i`` steps (``cycle_lengths``, or the differences of ``boundaries``, the counts where the
    cycles end) and is three phases:

    .. math::
      w_i = \min(W_i, L_i), \quad d_i = \min(\lceil f L_i \rceil,\ L_i - w_i), \quad s_i = L_i - w_i - d_i

    a warmup of ``w_i`` steps from ``a_i`` to the peak ``P``, ``s_i`` steps at ``P``, and a decay of ``d_i`` steps
    from ``P`` to ``E`` along ``decay_shape``: ``E + (P - E) g(p)`` with ``g(p) = 1 - \sqrt{p}`` for the default
    ``"1-sqrt"`` (see ``warmup_stable_decay_schedule`` for the other shapes). ``W_0 = warmup_steps`` and
    ``a_0 = init_value``; later cycles re-warm over ``W_i = rewarmup_steps`` from ``a_i = rewarmup_value``, or,
    when it is ``None``, from where the previous cycle ended (``E``, or ``P`` if its decay had no steps left).
    After the last cycle the schedule holds where that cycle ended.

    A warmup longer than its cycle is clamped to the cycle, and the decay to what the warmup leaves (marin PR
    #3086), so no cycle ever overflows into the next. ``warmup_steps`` and ``rewarmup_steps`` are durations of
    ``optax_warmup._duration``: whole steps, or a fraction below 1 / a percentage of *their cycle*
    (``warmup_steps=0.01`` is 1% of the first cycle, as in Levanter's ``warmup``); like ``decay_fraction``, a
    fraction rounds up to whole steps.

    1-sqrt is the default cooldown because Hägele et al. (2024) find it beats linear and, over 10-20% of the run,
    matches a cosine schedule; ``decay_fraction=0.2`` is the upper end of that range. (The single-cycle
    ``warmup_stable_decay_schedule`` keeps its ``"linear"`` default.)

    The schedule is one phase list of ``3 K`` phases on the engine: every length and value may be traced, and the
    compiled program does not grow with the number of cycles.

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      init_value: value at count 0, ``a_0``.
      peak_value: ``P``, held during each stable phase.
      warmup_steps: ``W_0``, the first warmup (steps, or a fraction / percentage of the first cycle).
      cycle_lengths: ``[L_0, L_1, ...]`` (``> 0``), or ``None`` with ``boundaries``.
      end_value: ``E``, reached at the end of each decay.
      decay_fraction: ``f`` in ``[0, 1]``, the decay's share of each cycle.
      decay_shape: one of ``optax_warmup.WSD_DECAY_SHAPES``; default ``"1-sqrt"``.
      boundaries: ``[b_0, b_1, ...]``, the counts where the cycles end (strictly increasing), instead of
        ``cycle_lengths``.
      rewarmup_steps: ``W_i`` for every later cycle (0, the default: straight back to the peak, as in WSD-S and
        Levanter's default ``rewarmup=0``).
      rewarmup_value: where each re-warmup starts; ``None`` continues from the previous cycle's end.
      warmup_shape: ``"linear"``, ``"cosine"``, ``"polynomial"`` or ``"geometric"``.
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Returns:
      A ``PhaseSchedule``.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.warmup_stable_decay_cycles_schedule(
      ...     0.0, 1.0, warmup_steps=10, cycle_lengths=[100, 100], decay_fraction=0.2,
      ...     rewarmup_steps=5)
      >>> [round(float(s(t)), 4) for t in (5, 10, 80, 90, 100, 103, 105, 200)]
      [0.5, 1.0, 1.0, 0.2929, 0.0, 0.6, 1.0, 0.0]

    References:
      Hu et al., "MiniCPM" (2024), arXiv:2404.06395 (WSD); Wen et al., "Understanding Warmup-Stable-Decay Learning
      Rates: A River Valley Loss Landscape Perspective" (2024), arXiv:2410.05192 (WSD-S); Hägele et al., "Scaling
      Laws and Compute-Optimal Training Beyond Fixed Training Durations" (2024), arXiv:2405.18392 (1-sqrt);
      Levanter ``optim/config.py`` (PRs #811, #814); marin PR #3086.
    """
    V.check_finite("init_value", init_value)
    V.check_finite("peak_value", peak_value)
    V.check_finite("end_value", end_value)
    if rewarmup_value is not None:
        V.check_finite("rewarmup_value", rewarmup_value)
    fraction = V.concrete("decay_fraction", decay_fraction)
    if fraction is not None and not 0.0 <= fraction <= 1.0:
        raise ValueError(f"decay_fraction must be in [0, 1], got {decay_fraction!r}")
    V.check_choice("decay_shape", decay_shape, tuple(_shapes.WSD_DECAY_SHAPES))
    V.check_choice("warmup_shape", warmup_shape, CYCLE_WARMUP_SHAPES)
    V.check_nonnegative("warmup_exponent", warmup_exponent)
    if decay_shape == "exponential":
        _check_positive_levels("decay_shape", decay_shape, [("end_value", end_value), ("peak_value", peak_value)])
    if warmup_shape == "geometric":
        levels = [("init_value", init_value), ("peak_value", peak_value)]
        rewarm_start = ("rewarmup_value", rewarmup_value) if rewarmup_value is not None else ("end_value", end_value)
        _check_positive_levels("warmup_shape", warmup_shape, levels + [rewarm_start])
    lengths = cycle_lengths_from(cycle_lengths, boundaries)
    if fraction is None:
        decay_fraction = jnp.clip(jnp.nan_to_num(jnp.asarray(decay_fraction, V.float_dtype()), nan=0.0), 0.0, 1.0)

    ramp = (warmup_shape, _warmup.ramp_param(warmup_shape, warmup_exponent))
    decay = _shapes.WSD_DECAY_SHAPES[decay_shape]
    warm, stable, cool = split_cycles(lengths, warmup_steps, rewarmup_steps, decay_fraction)
    # A cycle whose decay got no steps ends at the peak: the next re-warmup (and the final hold) starts there.
    ends = V.xp_for(cool, end_value, peak_value).where(cool > 0, end_value, peak_value)
    phases: list[Phase] = []
    for i in range(len(lengths)):
        start = init_value if i == 0 else ends[i - 1] if rewarmup_value is None else rewarmup_value
        phases += [Phase(warm[i], start, peak_value, *ramp), Phase(stable[i], peak_value, peak_value),
                   Phase(cool[i], peak_value, ends[i], decay)]
    return _phases.phase_schedule(phases)
