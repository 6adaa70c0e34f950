"""``join_schedules``: one schedule after another at given boundaries."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from optax_warmup import _numeric as N
from optax_warmup import _phases
from optax_warmup import _validate as V
from optax_warmup._phases import PhaseSchedule
from optax_warmup._warmup import as_phase_schedule

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[jax.typing.ArrayLike]) -> PhaseSchedule:
    r"""Runs ``schedules[i]`` on ``[boundaries[i-1], boundaries[i])``, each seeing ``count - boundaries[i-1]``.

    .. math::
      v(t) = S_i(t - b_{i-1}) \quad \text{for } b_{i-1} \le t < b_i \quad (b_{-1} = 0)

    Same contract as Optax's ``join_schedules``, with checks Optax lacks (``len(schedules) ==
    len(boundaries) + 1``, concrete boundaries non-negative and sorted) and traceable boundaries (traced ones are
    made non-decreasing with a running maximum). The pieces are merged into one phase list: pieces of this
    library add their segments, so a 32-piece join compiles to about the size of a 2-piece one; any other
    callable (an Optax schedule) becomes one segment, and when the count is a scalar only the active one is
    evaluated (``lax.switch``), where Optax evaluates every piece at every step.

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      schedules: the pieces ``S_0, ..., S_n``: any schedules (``count -> value``).
      boundaries: the counts ``b_0 <= ... <= b_{n-1}`` where each next piece starts (``n`` of them).

    Example:
      >>> import optax_warmup as ow
      >>> ramp, hold = ow.linear_schedule(0.0, 1.0, 10), ow.constant_schedule(0.5)
      >>> s = ow.join_schedules([ramp, hold], [10])
      >>> float(s(5)), float(s(10))
      (0.5, 0.5)
    """
    schedules = list(schedules)
    boundaries = list(boundaries)
    if not schedules:
        raise ValueError("schedules must hold at least one schedule, got an empty list")
    if len(schedules) != len(boundaries) + 1:
        raise ValueError(
            f"join_schedules needs len(schedules) == len(boundaries) + 1, got {len(schedules)} schedules and "
            f"{len(boundaries)} boundaries"
        )
    for i, s in enumerate(schedules):
        if not callable(s):
            raise TypeError(f"schedules[{i}] must be callable (count -> value), got {type(s).__name__}")
    for i, b in enumerate(boundaries):
        V.check_nonnegative(f"boundaries[{i}]", b)
        if i > 0:
            V.check_at_least(f"boundaries[{i}]", b, f"boundaries[{i - 1}]", boundaries[i - 1])
    pieces = [as_phase_schedule(s) for s in schedules]
    if not boundaries:
        return pieces[0]
    xp = V.xp_for(*boundaries)
    bounds = V.sanitize_length(xp, N.stack(xp, boundaries))
    bounds = jax.lax.cummax(bounds) if xp is jnp else bounds
    return _phases.join(pieces, [bounds[i] for i in range(len(boundaries))])
