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


_SELECT_MAX = 4


def _item(a):
    """Element 0 of a field: a Python number when the field is a NumPy array (so it folds), else a tracer."""
    return a[0].item() if isinstance(a, np.ndarray) else a[0]


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

    def _fields(self, c, after):
        """(origin, length, start, end, param, shape id) of the segment holding count ``c``.

        A field whose value is the same concrete number in every segment stays a Python constant. Up to
        ``_SELECT_MAX`` segments are picked with a chain of selects; more with one gather from a table.
        """
        n = len(self.shapes)
        fields = [self.origins, self.lengths, self.starts, self.ends, self.params, self._shape_ids]
        uniform = [isinstance(f, np.ndarray) and bool(np.all(f == f[0])) for f in fields]
        if n == 1:
            return [_item(f) for f in fields]
        if n <= _SELECT_MAX:
            out = []
            for f, same in zip(fields[:-1], uniform, strict=False):
                v = _item(f) if same else f[0]
                if not same:
                    for i, cond in enumerate(after, start=1):
                        v = jnp.where(cond, f[i], v)
                out.append(v)
            return [*out, None]  # the shape is picked by segment in __call__
        idx = jnp.clip(jnp.sum(jnp.asarray(self.begins) <= c[..., None], axis=-1) - 1, 0, n - 1)
        varying = [j for j, same in enumerate(uniform) if not same]
        xp = V.xp_for(*(fields[j] for j in varying))
        table = xp.stack([xp.asarray(fields[j], dtype=V.float_dtype()) for j in varying], axis=-1)
        row = jnp.take(jnp.asarray(table), idx, axis=0, mode="clip")
        out = [_item(f) for f in fields]
        for col, j in enumerate(varying):
            out[j] = row[..., col]
        return out

    def __call__(self, count) -> jax.Array:
        dtype = V.float_dtype()
        if len(self.shapes) == 1 and isinstance(self.lengths, np.ndarray) and self.lengths[0] == 0:
            # A constant: no arithmetic on the count at all.
            return jnp.broadcast_to(jnp.asarray(_item(self.ends), dtype), jnp.shape(count))
        c = V.as_count(count)
        n = len(self.shapes)
        after = [c >= self.begins[i] for i in range(1, n)] if 1 < n <= _SELECT_MAX else None
        origin, length, start, end, param, shape_id = self._fields(c, after)
        # Counts are clamped to >= 0 and no segment is selected before its origin, so t >= 0.
        t = _shapes._sub(c, origin)
        if isinstance(self.lengths, np.ndarray) and bool(np.all(self.lengths > 0)):
            p = jnp.minimum(t / length, 1.0)
        else:
            has_length = length > 0
            p = jnp.where(has_length, jnp.minimum(t / jnp.where(has_length, length, 1.0), 1.0), 1.0)
        by_shape = {name: _shapes.SHAPES[name](p, start, end, param) for name in self._distinct}
        if len(by_shape) == 1:
            value = by_shape[self.shapes[0]]
        elif n <= _SELECT_MAX:  # reuse the segment comparisons instead of selecting a shape id
            value = by_shape[self.shapes[0]]
            for i in range(1, n):
                if self.shapes[i] != self.shapes[i - 1]:
                    value = jnp.where(after[i - 1], by_shape[self.shapes[i]], value)
        else:
            value = None
            for i, name in enumerate(self._distinct):
                value = by_shape[name] if value is None else jnp.where(shape_id == i, by_shape[name], value)
        return jnp.broadcast_to(jnp.asarray(value, dtype), jnp.shape(c))

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
    if xp is np:
        # A zero-length phase is never selected unless it is the last one (whose end value is then held):
        # dropping it at construction keeps the compiled program small.
        phases = [ph for ph in phases[:-1] if float(ph.length) > 0] + [phases[-1]]
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
