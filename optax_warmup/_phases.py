"""The engine: a schedule as a list of phases, evaluated with traced lengths in a program of constant size.

A phase has a length (in steps), a start value, an end value and a shape (see ``_shapes.py``). The engine keeps
each phase as a *segment*: the count where it takes over (``begin``), the count where its progress is 0
(``origin``, equal to ``begin`` except for a piece cut short by ``join_schedules``), its length, values, shape and
shape parameter. At count ``c`` it picks the last segment whose ``begin <= c`` (one vector comparison, no loop
over phases), computes the progress ``p = clip((c - origin) / length, 0, 1)`` once, evaluates each *distinct*
shape once and selects. So a 32-phase schedule compiles to about the same program as a 2-phase one, every length
and value may be a traced array, and a zero-length phase is simply never selected.

After the last phase the schedule holds the last end value; negative counts give the value at count 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optax_warmup import _shapes
from optax_warmup import _validate as V


class Phase(NamedTuple):
    """One phase of a schedule: ``length`` steps from ``start`` to ``end`` along ``shape``.

    Attributes:
      length: number of steps (may be traced; negative or NaN is clamped to 0).
      start: value at the first step of the phase.
      end: value reached when the phase is over (held if this is the last phase).
      shape: a name from ``optax_warmup.SHAPES``.
      param: the shape's parameter (the exponent of ``"polynomial"``, ``"polynomial_decay"`` and ``"cosine"``).
    """

    length: Any
    start: Any
    end: Any
    shape: str = "linear"
    param: Any = 1.0


def _stack(xp, xs):
    dtype = V.float_dtype()
    if xp is np:
        return np.asarray([np.asarray(x, dtype=np.float64) for x in xs], dtype=dtype)
    return jnp.stack([jnp.asarray(x, dtype=dtype) for x in xs])


def _exclusive_cumsum(xp, lengths):
    return xp.concatenate([xp.zeros((1,), lengths.dtype), xp.cumsum(lengths)[:-1]])


class PhaseSchedule:
    """A schedule ``count -> value`` made of segments (see the module docstring). Build it with ``phase_schedule``.

    The segment arrays are NumPy arrays when every hyperparameter was concrete (they become constants of the
    compiled program) and JAX arrays (tracers) when some were traced.
    """

    def __init__(self, begins, origins, lengths, starts, ends, params, shapes: Sequence[str]):
        self.begins, self.origins, self.lengths = begins, origins, lengths
        self.starts, self.ends, self.params = starts, ends, params
        self.shapes = tuple(shapes)
        self._distinct = tuple(sorted(set(self.shapes)))
        self._shape_ids = np.asarray([self._distinct.index(s) for s in self.shapes], dtype=np.int32)

    def __len__(self) -> int:
        return len(self.shapes)

    def __call__(self, count) -> jax.Array:
        c = V.as_count(count)
        n = len(self.shapes)
        if n == 1:
            pick = lambda a: jnp.asarray(a[0])  # noqa: E731
            shape_id = 0
        else:
            idx = jnp.sum(jnp.asarray(self.begins) <= c[..., None], axis=-1) - 1
            idx = jnp.clip(idx, 0, n - 1)
            pick = lambda a: jnp.take(jnp.asarray(a), idx)  # noqa: E731
            shape_id = pick(self._shape_ids) if len(self._distinct) > 1 else 0
        length = pick(self.lengths)
        has_length = length > 0
        t = c - pick(self.origins)
        p = jnp.where(has_length, jnp.clip(t / jnp.where(has_length, length, 1.0), 0.0, 1.0), 1.0)
        start, end, param = pick(self.starts), pick(self.ends), pick(self.params)
        value = None
        for i, name in enumerate(self._distinct):
            v = _shapes.SHAPES[name](p, start, end, param)
            value = v if value is None else jnp.where(shape_id == i, v, value)
        return value.astype(V.float_dtype())

    @property
    def arrays(self):
        return (self.begins, self.origins, self.lengths, self.starts, self.ends, self.params)


def phase_schedule(phases: Sequence[Phase]) -> PhaseSchedule:
    """Builds a schedule from a list of phases, run one after the other from count 0.

    .. math::
      v(c) = \\mathrm{shape}_i\\big(\\tfrac{c - b_i}{L_i}\\big) \\text{ for } b_i \\le c < b_i + L_i,
      \\quad b_i = \\textstyle\\sum_{j<i} L_j

    Args:
      phases: ``Phase(length, start, end, shape="linear", param=1.0)`` tuples; every number may be traced.

    Returns:
      A schedule; after the last phase it holds the last ``end``.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.phase_schedule([ow.Phase(10, 0.0, 1.0), ow.Phase(90, 1.0, 0.1, "cosine")])
      >>> float(s(5)), float(s(10)), float(s(100))
      (0.5, 1.0, 0.1...)
    """
    phases = [Phase(*p) if not isinstance(p, Phase) else p for p in phases]
    if not phases:
        raise ValueError("phases must hold at least one Phase, got an empty list")
    numbers = []
    for i, ph in enumerate(phases):
        V.check_choice(f"phases[{i}].shape", ph.shape, tuple(_shapes.SHAPES))
        V.check_nonnegative(f"phases[{i}].length", ph.length)
        V.check_finite(f"phases[{i}].start", ph.start)
        V.check_finite(f"phases[{i}].end", ph.end)
        V.check_nonnegative(f"phases[{i}].param", ph.param)
        numbers += [ph.length, ph.start, ph.end, ph.param]
    xp = V.xp_for(*numbers)
    lengths = V.sanitize_length(xp, _stack(xp, [ph.length for ph in phases]))
    begins = _exclusive_cumsum(xp, lengths)
    return PhaseSchedule(
        begins,
        begins,
        lengths,
        V.sanitize_value(xp, _stack(xp, [ph.start for ph in phases])),
        V.sanitize_value(xp, _stack(xp, [ph.end for ph in phases])),
        V.sanitize_exponent(xp, _stack(xp, [ph.param for ph in phases])),
        [ph.shape for ph in phases],
    )


def merge_phase_schedules(pieces: Sequence[PhaseSchedule], boundaries) -> PhaseSchedule:
    """``join_schedules`` for phase schedules: one segment list, so the program does not grow per piece.

    Piece ``i`` applies on ``[b_{i-1}, b_i)`` and sees ``count - b_{i-1}``; its segments are shifted by
    ``b_{i-1}`` and their take-over counts clipped into its interval, so a piece cut short by the next boundary
    keeps its shape (its progress still runs over its own length) and a piece that ends early holds its end value.
    ``boundaries`` must already be sanitized (non-negative, non-decreasing).
    """
    arrays = [a for piece in pieces for a in piece.arrays]
    xp = V.xp_for(*arrays, *boundaries)
    cols: list[list] = [[] for _ in range(6)]
    for i, piece in enumerate(pieces):
        lo = boundaries[i - 1] if i > 0 else 0.0
        begins = piece.begins + lo
        begins = xp.maximum(begins, lo)
        if i < len(boundaries):
            begins = xp.minimum(begins, boundaries[i])
        for col, a in zip(cols, (begins, piece.origins + lo, *piece.arrays[2:]), strict=True):
            col.append(xp.asarray(a, dtype=V.float_dtype()))
    merged = [xp.concatenate(col) for col in cols]
    shapes = [s for piece in pieces for s in piece.shapes]
    return PhaseSchedule(*merged, shapes)
